package cfn

import (
	"fmt"
	"strings"
	"testing"
)

const evalTemplate = `
Parameters:
  Minutes:
    Type: Number
    Default: 5
  Stage:
    Type: String
  NoDefault:
    Type: String
Conditions:
  IsOne: !Equals [!Ref Minutes, "1"]
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Mappings:
  Retention:
    prod: {Days: 30}
    dev: {Days: 3}
`

func TestEval(t *testing.T) {
	tp := mustParse(t, evalTemplate)
	cases := []struct {
		name    string
		expr    string
		params  map[string]string
		want    string
		wantErr string
	}{
		{"literal", `42`, nil, "42", ""},
		{"Ref default", `!Ref Minutes`, nil, "5", ""},
		{"Ref given", `!Ref Minutes`, map[string]string{"Minutes": "1"}, "1", ""},
		{"Ref without value", `!Ref NoDefault`, nil, "", "no value for NoDefault"},
		{"Ref to a resource", `!Ref Queue`, nil, "", "no value for Queue"},
		{"Equals true", `!Equals [!Ref Stage, prod]`, map[string]string{"Stage": "prod"}, "true", ""},
		{"Equals false", `!Equals [!Ref Stage, prod]`, map[string]string{"Stage": "dev"}, "false", ""},
		{"Condition through Not", `!Condition NotProd`, map[string]string{"Stage": "dev"}, "true", ""},
		{"If then", `!If [IsOne, "1 minute", !Sub "${Minutes} minutes"]`, map[string]string{"Minutes": "1"}, "1 minute", ""},
		{"If else", `!If [IsOne, "1 minute", !Sub "${Minutes} minutes"]`, nil, "5 minutes", ""},
		{"If unknown condition", `!If [Nope, a, b]`, nil, "", "no condition Nope"},
		{"Sub of two", `!Sub "rate(${Minutes}) ${Stage}"`, map[string]string{"Stage": "dev"}, "rate(5) dev", ""},
		{"Sub escape kept", `!Sub "${!Literal}-${Minutes}"`, nil, "${!Literal}-5", ""},
		{"Sub missing", `!Sub "x-${NoDefault}"`, nil, "", "no value for NoDefault"},
		{"Sub with variables", `!Sub ["${A}", {A: x}]`, nil, "", "Fn::Sub with variables"},
		{"FindInMap", `!FindInMap [Retention, !Ref Stage, Days]`, map[string]string{"Stage": "prod"}, "30", ""},
		{"FindInMap missing key", `!FindInMap [Retention, test, Days]`, nil, "", "has no value"},
		{"Equals one argument", `!Equals [a]`, nil, "", "wants 2 arguments"},
		{"If two arguments", `!If [IsOne, a]`, nil, "", "wants 3 arguments"},
		{"not evaluated", `!Join ["", [a, b]]`, nil, "", "Fn::Join is not evaluated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tp.Eval(expr(t, tc.expr), tc.params)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Eval(%s) = %v, %v; want an error containing %q", tc.expr, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Eval(%s): %v", tc.expr, err)
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("Eval(%s) = %v, want %s", tc.expr, got, tc.want)
			}
		})
	}
}

func TestCheckReferences(t *testing.T) {
	const base = `
Parameters:
  Stage: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Mappings:
  M: {prod: {Days: 1}}
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties:
`
	cases := []struct {
		name    string
		props   string // under Fn's Properties
		wantErr string // "" = no problem
	}{
		{"all known", `
      A: !Ref Stage
      B: !Ref AWS::Region
      C: !GetAtt Queue.Arn
      D: !GetAtt FnRole.Arn
      E: !Sub "${Stage}-${Queue.QueueName}-${AWS::AccountId}-${!Escaped}"
      F: !Sub ["${X}-${Stage}", {X: !Ref Queue}]
      G: !If [IsProd, a, b]
      H: !FindInMap [M, !Ref Stage, Days]`, ""},
		{"Ref typo", `
      A: !Ref Stagee`, "!Ref Stagee names nothing"},
		{"GetAtt typo", `
      A: !GetAtt Queu.Arn`, "!GetAtt [Queu Arn] names no resource"},
		{"generated role of a non-function", `
      A: !GetAtt QueueRole.Arn`, "names no resource"},
		{"Sub variable typo", `
      A: !Sub "${Stag}"`, "!Sub ${Stag} names nothing"},
		{"Sub attribute typo", `
      A: !Sub "${Queu.Arn}"`, "!Sub ${Queu.Arn} names nothing"},
		{"condition typo", `
      A: !If [IsProdd, a, b]`, "condition IsProdd is not declared"},
		{"mapping typo", `
      A: !FindInMap [N, a, b]`, "mapping N is not declared"},
		{"where it is", `
      List: [ok, !Ref Nope]`, ".Resources.Fn.Properties.List[1]: !Ref Nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mustParse(t, base+tc.props).CheckReferences()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CheckReferences() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
