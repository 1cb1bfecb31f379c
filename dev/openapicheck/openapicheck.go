// Package openapicheck lets tests check real HTTP answers against the
// repository's openapi.yaml (OpenAPI 3.0.3): the status must be documented for
// the operation and the body must validate against its schema.
//
// OpenAPI 3.0 schemas are not quite JSON Schema: `nullable: true` is turned
// into a "null" type before compiling with santhosh-tekuri/jsonschema (draft
// 4 semantics, formats asserted).
package openapicheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// FileName is the spec's name at the repository root.
const FileName = "openapi.yaml"

// ValidateResponse fails t (with Errorf: the test goes on) when status is not
// documented for method and path in openapi.yaml, when the content type is
// not the documented one, or when body does not validate against the schema.
// path may carry a query string; templated paths ({id}) match any segment.
func ValidateResponse(t testing.TB, method, path string, status int, contentType string, body []byte) {
	t.Helper()
	spec, err := Default()
	if err != nil {
		t.Errorf("openapicheck: %v", err)
		return
	}
	if err := spec.Check(method, path, status, contentType, body); err != nil {
		t.Errorf("openapicheck: %s %s -> %d: %v", method, path, status, err)
	}
}

// Spec is a loaded openapi.yaml with its response schemas compiled on demand.
type Spec struct {
	doc      map[string]any // the spec as JSON values, nullable already converted
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
}

const resourceURL = "file:///openapi.json"

var (
	defaultOnce sync.Once
	defaultSpec *Spec
	defaultErr  error
)

// Default loads FileName from the repository root (the nearest directory
// holding go.mod and FileName, walking up from the working directory), once
// per process.
func Default() (*Spec, error) {
	defaultOnce.Do(func() {
		var root string
		if root, defaultErr = RepoRoot(); defaultErr == nil {
			defaultSpec, defaultErr = Load(filepath.Join(root, FileName))
		}
	})
	return defaultSpec, defaultErr
}

// RepoRoot walks up from the working directory to the first directory that
// holds both go.mod and openapi.yaml (a nested module such as tools/ is
// skipped).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, FileName)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no directory with go.mod and %s above the working directory", FileName)
		}
		dir = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Load reads and prepares an OpenAPI 3.0 document.
func Load(file string) (*Spec, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// Parse prepares an OpenAPI 3.0 document given as YAML (or JSON).
func Parse(raw []byte) (*Spec, error) {
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	// YAML -> JSON -> jsonschema's JSON values (json.Number for numbers).
	j, err := json.Marshal(jsonCompatible(y))
	if err != nil {
		return nil, fmt.Errorf("convert to JSON: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("convert to JSON: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("document is not an object")
	}
	if ver, _ := doc["openapi"].(string); !strings.HasPrefix(ver, "3.0.") {
		return nil, fmt.Errorf("openapi version %q, want 3.0.x", ver)
	}
	if _, ok := doc["paths"].(map[string]any); !ok {
		return nil, errors.New("no paths")
	}
	convertNullable(doc)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.AssertFormat()
	if err := c.AddResource(resourceURL, doc); err != nil {
		return nil, err
	}
	return &Spec{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
}

// Check returns why a response does not match the spec (nil when it does).
func (s *Spec) Check(method, path string, status int, contentType string, body []byte) error {
	path, _, _ = strings.Cut(path, "?")
	tmpl, item, ok := s.pathItem(path)
	if !ok {
		return fmt.Errorf("path %s is not documented", path)
	}
	m := strings.ToLower(method)
	op, ok := item[m].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s is not documented", method, tmpl)
	}
	responses, _ := op["responses"].(map[string]any)
	code, resp, ok := s.response(responses, status)
	if !ok {
		return fmt.Errorf("status %d is not documented (documented: %s)", status, strings.Join(keys(responses), ", "))
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return nil // no body documented (a redirect): nothing to validate
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		return fmt.Errorf("content type %s is not documented (documented: %s)", mt, strings.Join(keys(content), ", "))
	}
	if _, ok := media["schema"]; !ok {
		return nil
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	ptr := "/paths/" + escape(tmpl) + "/" + m + "/responses/" + escape(code)
	if ref, ok := responses[code].(map[string]any)["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#") // a shared response in components
	}
	sch, err := s.schema(ptr + "/content/" + escape(mt) + "/schema")
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w (body %.200q)", err, body)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("body %.500s does not match the schema: %w", body, err)
	}
	return nil
}

// pathItem finds the path item for a concrete path, exact match first.
func (s *Spec) pathItem(path string) (string, map[string]any, bool) {
	paths := s.doc["paths"].(map[string]any)
	if item, ok := paths[path].(map[string]any); ok {
		return path, item, true
	}
	segs := strings.Split(path, "/")
	for tmpl, v := range paths {
		t := strings.Split(tmpl, "/")
		if len(t) != len(segs) {
			continue
		}
		match := true
		for i := range t {
			if t[i] != segs[i] && !(strings.HasPrefix(t[i], "{") && strings.HasSuffix(t[i], "}") && segs[i] != "") {
				match = false
				break
			}
		}
		if item, ok := v.(map[string]any); ok && match {
			return tmpl, item, true
		}
	}
	return "", nil, false
}

// response picks the documented response: exact code, then 4XX-style range,
// then default; a $ref to components/responses is followed.
func (s *Spec) response(responses map[string]any, status int) (string, map[string]any, bool) {
	code := strconv.Itoa(status)
	for _, k := range []string{code, code[:1] + "XX", "default"} {
		r, ok := responses[k].(map[string]any)
		if !ok {
			continue
		}
		if ref, ok := r["$ref"].(string); ok {
			if r, ok = s.resolve(ref); !ok {
				return "", nil, false
			}
		}
		return k, r, true
	}
	return "", nil, false
}

func (s *Spec) resolve(ref string) (map[string]any, bool) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = s.doc
	for _, tok := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		cur = m[tok]
	}
	r, ok := cur.(map[string]any)
	return r, ok
}

func (s *Spec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(resourceURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", ptr, err)
	}
	s.schemas[ptr] = sch
	return sch, nil
}

// escape is a JSON pointer token (RFC 6901), percent-encoded for the URL
// fragment where needed.
func escape(tok string) string {
	tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
	return strings.NewReplacer("{", "%7B", "}", "%7D", " ", "%20").Replace(tok)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// jsonCompatible turns yaml.v3's values into ones encoding/json can marshal
// (map keys such as an unquoted 200 become strings).
func jsonCompatible(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonCompatible(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonCompatible(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonCompatible(e)
		}
		return v
	}
	return v
}

// convertNullable rewrites OpenAPI 3.0's `nullable: true` into JSON Schema
// wherever a schema can sit: "type": T becomes ["T", "null"]; a schema without
// a type (a $ref, an allOf) becomes anyOf [{"type":"null"}, itself]. An enum
// must list null itself, as OpenAPI 3.0.3 requires.
func convertNullable(v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			convertNullable(e)
		}
		if n, ok := v["nullable"].(bool); ok {
			delete(v, "nullable")
			if !n {
				return
			}
			if t, ok := v["type"].(string); ok {
				v["type"] = []any{t, "null"}
				return
			}
			if _, ok := v["type"]; ok {
				return
			}
			inner := make(map[string]any, len(v))
			for k, e := range v {
				inner[k] = e
				delete(v, k)
			}
			v["anyOf"] = []any{map[string]any{"type": "null"}, inner}
		}
	case []any:
		for _, e := range v {
			convertNullable(e)
		}
	}
}
