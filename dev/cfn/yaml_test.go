package cfn

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestToJSONShortFormTags(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"Ref", `a: !Ref Param`, `{"a":{"Ref":"Param"}}`},
		{"Sub string", `a: !Sub "arn:${AWS::Partition}:x"`, `{"a":{"Fn::Sub":"arn:${AWS::Partition}:x"}}`},
		{"Sub list", "a: !Sub\n  - ${A}-${B}\n  - B: !Ref Other", `{"a":{"Fn::Sub":["${A}-${B}",{"B":{"Ref":"Other"}}]}}`},
		{"GetAtt dotted", `a: !GetAtt Queue.Arn`, `{"a":{"Fn::GetAtt":["Queue","Arn"]}}`},
		{"GetAtt nested attribute", `a: !GetAtt Db.Endpoint.Address`, `{"a":{"Fn::GetAtt":["Db","Endpoint.Address"]}}`},
		{"GetAtt list", `a: !GetAtt [Queue, QueueName]`, `{"a":{"Fn::GetAtt":["Queue","QueueName"]}}`},
		{"If with NoValue", `a: !If [Cond, !Ref X, !Ref AWS::NoValue]`, `{"a":{"Fn::If":["Cond",{"Ref":"X"},{"Ref":"AWS::NoValue"}]}}`},
		{"Equals Not", `c: !Not [!Equals [!Ref P, ""]]`, `{"c":{"Fn::Not":[{"Fn::Equals":[{"Ref":"P"},""]}]}}`},
		{"Select GetAZs", `a: !Select [0, !GetAZs ""]`, `{"a":{"Fn::Select":[0,{"Fn::GetAZs":""}]}}`},
		{"Join Split", `a: !Join [",", !Split ["|", "x|y"]]`, `{"a":{"Fn::Join":[",",{"Fn::Split":["|","x|y"]}]}}`},
		{"FindInMap", `a: !FindInMap [M, !Ref K, Seconds]`, `{"a":{"Fn::FindInMap":["M",{"Ref":"K"},"Seconds"]}}`},
		{"ImportValue Base64", "a:\n  - !ImportValue Exp\n  - !Base64\n      Fn::Sub: x${Y}", `{"a":[{"Fn::ImportValue":"Exp"},{"Fn::Base64":{"Fn::Sub":"x${Y}"}}]}`},
		{"Condition And Or", `c: !And [!Condition A, !Or [!Condition B, !Condition C]]`, `{"c":{"Fn::And":[{"Condition":"A"},{"Fn::Or":[{"Condition":"B"},{"Condition":"C"}]}]}}`},
		{"Cidr", `a: !Cidr [!Ref Block, 6, 5]`, `{"a":{"Fn::Cidr":[{"Ref":"Block"},6,5]}}`},
		{"Ref of a number-looking name stays a string", `a: !Ref 123`, `{"a":{"Ref":"123"}}`},
		{"plain scalars", "n: 120\nb: true\ns: \"2.0\"\nd: \"2010-09-09\"", `{"b":true,"d":"2010-09-09","n":120,"s":"2.0"}`},
		{"unquoted date stays a string", "d: 2010-09-09", `{"d":"2010-09-09"}`},
		{"anchor", "a: &x [1]\nb: *x", `{"a":[1],"b":[1]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToJSON([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, []byte(tc.want))
		})
	}
}

func TestToJSONRejects(t *testing.T) {
	cases := []struct{ name, yaml, wantErr string }{
		{"misspelt tag", "a: !Sbu x", "unknown CloudFormation tag !Sbu"},
		{"GetAtt without attribute", "a: !GetAtt NoDot", "wants Resource.Attribute"},
		{"duplicate key", "a: 1\na: 2", `duplicate key "a"`},
		{"merge key", "x: &x {b: 1}\ny:\n  <<: *x", "merge keys"},
		{"empty document", "", "empty document"},
		{"not YAML", "a: [1", "yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ToJSON([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ToJSON(%q) = %v, want an error containing %q", tc.yaml, err, tc.wantErr)
			}
		})
	}
}

func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// expr reads one YAML value (short forms allowed) into its long form.
func expr(t *testing.T, src string) any {
	t.Helper()
	b, err := ToJSON([]byte("v: " + src))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m["v"]
}

func mustParse(t *testing.T, src string) *Template {
	t.Helper()
	tp, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tp
}
