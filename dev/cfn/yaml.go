// Package cfn reads a CloudFormation (and SAM) template the way
// CloudFormation does, for tests that check a deployment's promises:
// short-form tags into long form, the template's sections into Go values,
// SAM's Globals merged into each function, the HTTP API's routes, the few
// intrinsics a test needs evaluated, and every name the template refers to.
//
// It is a reader, not a deployer: it evaluates only what its callers ask and
// reports anything else as an error rather than guessing.
package cfn

import (
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// ToJSON turns a CloudFormation YAML document into JSON, rewriting the
// short-form intrinsic tags (!Ref, !Sub, !GetAtt, ...) into their long form
// ({"Ref": ...}, {"Fn::Sub": ...}, {"Fn::GetAtt": [...]}), as CloudFormation
// itself reads them. Unknown tags, YAML merge keys and duplicate keys are
// errors.
func ToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	v, err := value(doc.Content[0])
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// shortForms are the short-form tags CloudFormation knows, by tag name;
// each maps to its long-form key.
var shortForms = map[string]string{
	"Ref": "Ref", "Condition": "Condition",
	"Base64": "Fn::Base64", "Cidr": "Fn::Cidr", "FindInMap": "Fn::FindInMap",
	"GetAtt": "Fn::GetAtt", "GetAZs": "Fn::GetAZs", "ImportValue": "Fn::ImportValue",
	"Join": "Fn::Join", "Select": "Fn::Select", "Split": "Fn::Split", "Sub": "Fn::Sub",
	"Transform": "Fn::Transform", "And": "Fn::And", "Equals": "Fn::Equals",
	"If": "Fn::If", "Not": "Fn::Not", "Or": "Fn::Or",
	"Length": "Fn::Length", "ToJsonString": "Fn::ToJsonString",
}

func value(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return value(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return intrinsic(n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not CloudFormation", k.Line)
			}
			v, err := value(val)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := value(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		if n.Tag == "!!timestamp" {
			return n.Value, nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

func intrinsic(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	key, ok := shortForms[name]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown CloudFormation tag %s", n.Line, n.Tag)
	}
	var arg any
	if n.Kind == yaml.ScalarNode {
		arg = n.Value // the argument of a scalar short form is always a string
		if name == "GetAtt" {
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q wants Resource.Attribute", n.Line, n.Value)
			}
			arg = []any{res, attr}
		}
	} else {
		untagged := *n
		untagged.Tag = ""
		v, err := value(&untagged)
		if err != nil {
			return nil, err
		}
		arg = v
	}
	return map[string]any{key: arg}, nil
}
