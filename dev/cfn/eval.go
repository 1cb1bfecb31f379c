package cfn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Eval evaluates the intrinsics tests need (Ref to parameters, Condition,
// Fn::If, Fn::Equals, Fn::Not, Fn::Sub of parameters, Fn::FindInMap) with
// the given parameter values, else the parameters' defaults. Any other
// intrinsic, and a parameter without a value, is an error; a value that is
// not an intrinsic is returned as is.
func (tp *Template) Eval(v any, params map[string]string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v, nil
	}
	for fn, arg := range m {
		args := AsList(arg)
		if n, ok := arity[fn]; ok && len(args) < n {
			return nil, fmt.Errorf("%s wants %d arguments, has %v", fn, n, arg)
		}
		switch fn {
		case "Ref":
			name := fmt.Sprint(arg)
			if p, ok := params[name]; ok {
				return p, nil
			}
			if p, ok := tp.Parameters[name]; ok && p.Default != nil {
				return fmt.Sprint(p.Default), nil
			}
			return nil, fmt.Errorf("no value for %s", name)
		case "Condition":
			return tp.Eval(tp.Conditions[fmt.Sprint(arg)], params)
		case "Fn::Equals":
			a, err := tp.Eval(args[0], params)
			if err != nil {
				return nil, err
			}
			b, err := tp.Eval(args[1], params)
			if err != nil {
				return nil, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			b, err := tp.Eval(args[0], params)
			if err != nil {
				return nil, err
			}
			return b != true, nil
		case "Fn::If":
			cond, ok := tp.Conditions[fmt.Sprint(args[0])]
			if !ok {
				return nil, fmt.Errorf("no condition %v", args[0])
			}
			b, err := tp.Eval(cond, params)
			if err != nil {
				return nil, err
			}
			if b == true {
				return tp.Eval(args[1], params)
			}
			return tp.Eval(args[2], params)
		case "Fn::Sub":
			s, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Sub with variables is not evaluated here")
			}
			var err error
			out := subVariable.ReplaceAllStringFunc(s, func(x string) string {
				r, e := tp.Eval(map[string]any{"Ref": x[2 : len(x)-1]}, params)
				if e != nil {
					err = e
				}
				return fmt.Sprint(r)
			})
			return out, err
		case "Fn::FindInMap":
			var keys [3]string
			for i := range keys {
				k, err := tp.Eval(args[i], params)
				if err != nil {
					return nil, err
				}
				keys[i] = fmt.Sprint(k)
			}
			val, ok := tp.Mappings[keys[0]][keys[1]][keys[2]]
			if !ok {
				return nil, fmt.Errorf("mapping %v has no value", keys)
			}
			return val, nil
		}
		return nil, fmt.Errorf("%s is not evaluated here", fn)
	}
	return nil, nil
}

// arity is how many arguments Eval reads of each list-taking intrinsic.
var arity = map[string]int{"Fn::Equals": 2, "Fn::Not": 1, "Fn::If": 3, "Fn::FindInMap": 3}

// subVariable is a ${Name} or ${Resource.Attribute} of Fn::Sub (not the
// ${!Literal} escape).
var subVariable = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// CheckReferences makes sure every Ref, GetAtt, Sub variable, condition and
// mapping the template names exists: a schema cannot see a typo in a name.
// SAM's generated <Function>Role counts as a resource of each function.
func (tp *Template) CheckReferences() error {
	var raw any
	if err := json.Unmarshal(tp.raw, &raw); err != nil {
		return err
	}
	var problems []string
	known := func(name string) bool {
		if strings.HasPrefix(name, "AWS::") {
			return true
		}
		if _, ok := tp.Parameters[name]; ok {
			return true
		}
		_, ok := tp.Resources[name]
		return ok
	}
	resourceOrGenerated := func(name string) bool {
		if _, ok := tp.Resources[name]; ok {
			return true
		}
		fn, ok := strings.CutSuffix(name, "Role")
		return ok && tp.Resources[fn].Type == "AWS::Serverless::Function"
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", where, i), c)
			}
		case map[string]any:
			if len(v) == 1 {
				for fn, arg := range v {
					args := AsList(arg)
					switch fn {
					case "Ref":
						if !known(fmt.Sprint(arg)) {
							problems = append(problems, fmt.Sprintf("%s: !Ref %v names nothing", where, arg))
						}
					case "Fn::GetAtt":
						if len(args) != 2 || !resourceOrGenerated(fmt.Sprint(args[0])) {
							problems = append(problems, fmt.Sprintf("%s: !GetAtt %v names no resource", where, arg))
						}
					case "Fn::Sub":
						s, _ := args[0].(string)
						vars := map[string]any{}
						if len(args) > 1 {
							vars, _ = args[1].(map[string]any)
						}
						for _, m := range subVariable.FindAllStringSubmatch(s, -1) {
							name, _, dotted := strings.Cut(m[1], ".")
							if _, ok := vars[name]; ok {
								continue
							}
							if dotted && !resourceOrGenerated(name) || !dotted && !known(name) {
								problems = append(problems, fmt.Sprintf("%s: !Sub ${%s} names nothing", where, m[1]))
							}
						}
					case "Fn::If", "Condition":
						if _, ok := tp.Conditions[fmt.Sprint(args[0])]; !ok {
							problems = append(problems, fmt.Sprintf("%s: condition %v is not declared", where, args[0]))
						}
					case "Fn::FindInMap":
						if _, ok := tp.Mappings[fmt.Sprint(args[0])]; !ok {
							problems = append(problems, fmt.Sprintf("%s: mapping %v is not declared", where, args[0]))
						}
					}
				}
			}
			for k, c := range v {
				walk(where+"."+k, c)
			}
		}
	}
	walk("", raw)
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("unresolved names in the template:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}
