package openapicheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// This file checks REQUESTS against Amazon's SP-API models (Swagger 2.0,
// testdata/amazon-models): what a client sends must be an operation of a
// model, with only the parameters the model declares, each of the declared
// type, format, enum, item count, range, length and pattern, the required
// ones present and a body that validates against its schema. Everything is
// read from the model files; the rules a model states only in prose are
// Rules (amazonrules.go), written by hand and listed.

// Model is one Swagger 2.0 model loaded for request checks.
type Model struct {
	// Name is the file's base name (orders_2026-01-01.json).
	Name     string
	doc      map[string]any
	ops      []*Operation
	compiler *jsonschema.Compiler
	loc      string

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
}

// Operation is one (method, path) of a model.
type Operation struct {
	ID     string // operationId
	Method string // GET, POST…
	Path   string // the template: /orders/2026-01-01/orders/{orderId}
	model  *Model
	params []param
}

// param is a declared parameter with $ref resolved; ptr is its JSON
// pointer in the model (for a body's schema).
type param struct {
	spec map[string]any
	ptr  string
}

func (p param) name() string { return str(p.spec, "name") }
func (p param) in() string   { return str(p.spec, "in") }

// LoadModel reads a Swagger 2.0 model.
func LoadModel(file string) (*Model, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m, err := ParseModel(filepath.Base(file), raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

// ErrNotSwagger is returned by ParseModel for a JSON file that is not a
// Swagger 2.0 document (a notification's JSON schema, say).
var ErrNotSwagger = errors.New("not a Swagger 2.0 model")

// ParseModel prepares a Swagger 2.0 model given as JSON.
func ParseModel(name string, raw []byte) (*Model, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok || doc["swagger"] != "2.0" {
		return nil, ErrNotSwagger
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		return nil, errors.New("no paths")
	}
	m := &Model{Name: name, doc: doc, loc: "file:///amazon-models/" + name, schemas: map[string]*jsonschema.Schema{}}
	m.compiler = jsonschema.NewCompiler()
	m.compiler.DefaultDraft(jsonschema.Draft4)
	m.compiler.AssertFormat()
	if err := m.compiler.AddResource(m.loc, doc); err != nil {
		return nil, err
	}
	for tmpl, item := range paths {
		item, _ := item.(map[string]any)
		var shared []any
		if ps, ok := item["parameters"].([]any); ok {
			shared = ps
		}
		for method, op := range item {
			op, ok := op.(map[string]any)
			if !ok || method == "parameters" || strings.HasPrefix(method, "x-") {
				continue
			}
			o := &Operation{ID: str(op, "operationId"), Method: strings.ToUpper(method), Path: tmpl, model: m}
			base := "/paths/" + escape(tmpl)
			declared := map[string]bool{}
			own, _ := op["parameters"].([]any)
			for i, p := range own {
				pp, err := resolveParam(doc, p, base+"/"+method+"/parameters/"+strconv.Itoa(i))
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", o.Method, tmpl, err)
				}
				declared[pp.in()+" "+pp.name()] = true
				o.params = append(o.params, pp)
			}
			for i, p := range shared { // path-level, unless the operation overrides them
				pp, err := resolveParam(doc, p, base+"/parameters/"+strconv.Itoa(i))
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", o.Method, tmpl, err)
				}
				if !declared[pp.in()+" "+pp.name()] {
					o.params = append(o.params, pp)
				}
			}
			m.ops = append(m.ops, o)
		}
	}
	sort.Slice(m.ops, func(i, j int) bool { return m.ops[i].Path+m.ops[i].Method < m.ops[j].Path+m.ops[j].Method })
	return m, nil
}

func resolveParam(doc map[string]any, p any, ptr string) (param, error) {
	spec, ok := p.(map[string]any)
	if !ok {
		return param{}, fmt.Errorf("parameter %s is not an object", ptr)
	}
	if ref, ok := spec["$ref"].(string); ok {
		r, ok := resolvePointer(doc, ref)
		if !ok {
			return param{}, fmt.Errorf("unresolved %s", ref)
		}
		spec, ptr = r, strings.TrimPrefix(ref, "#")
	}
	if str(spec, "name") == "" || str(spec, "in") == "" {
		return param{}, fmt.Errorf("parameter %s has no name or in", ptr)
	}
	return param{spec: spec, ptr: ptr}, nil
}

func resolvePointer(doc map[string]any, ref string) (map[string]any, bool) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	r, ok := cur.(map[string]any)
	return r, ok
}

// Operations lists the model's operations, by path then method.
func (m *Model) Operations() []*Operation { return slices.Clone(m.ops) }

// match returns the operation serving method and path, and the path
// parameters' values; ok false when no path of the model has that shape.
// found reports that the path exists (for a method not documented).
func (m *Model) match(method, path string) (op *Operation, values map[string]string, found bool) {
	segs := strings.Split(path, "/")
	for _, o := range m.ops {
		t := strings.Split(o.Path, "/")
		if len(t) != len(segs) {
			continue
		}
		vals := map[string]string{}
		ok := true
		for i := range t {
			if strings.HasPrefix(t[i], "{") && strings.HasSuffix(t[i], "}") {
				v, err := url.PathUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
					break
				}
				vals[t[i][1:len(t[i])-1]] = v
			} else if t[i] != segs[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		found = true
		if o.Method == method {
			return o, vals, true
		}
	}
	return nil, nil, found
}

// check returns every way the request breaks the operation's declared
// parameters (nil when none). body is the request body (nil for none).
func (o *Operation) check(pathValues map[string]string, q url.Values, h http.Header, body []byte) []string {
	var out []string
	known := map[string]bool{}
	for _, p := range o.params {
		name := p.name()
		switch p.in() {
		case "query":
			known[name] = true
			vals, present := q[name]
			if !present {
				if b, _ := p.spec["required"].(bool); b {
					out = append(out, fmt.Sprintf("query parameter %s is required", name))
				}
				continue
			}
			out = append(out, checkValues("query parameter "+name, p.spec, vals)...)
		case "path":
			out = append(out, checkValues("path parameter "+name, p.spec, []string{pathValues[name]})...)
		case "header":
			vals := h.Values(name)
			if len(vals) == 0 {
				if b, _ := p.spec["required"].(bool); b {
					out = append(out, fmt.Sprintf("header %s is required", name))
				}
				continue
			}
			out = append(out, checkValues("header "+name, p.spec, vals)...)
		case "body":
			if len(bytes.TrimSpace(body)) == 0 {
				if b, _ := p.spec["required"].(bool); b {
					out = append(out, "a JSON body is required")
				}
				continue
			}
			sch, err := o.model.schema(p.ptr + "/schema")
			if err != nil {
				out = append(out, err.Error())
				continue
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if err != nil {
				out = append(out, fmt.Sprintf("body is not JSON: %v", err))
				continue
			}
			if err := sch.Validate(v); err != nil {
				out = append(out, fmt.Sprintf("body does not match %s: %v", str(p.spec, "name"), err))
			}
		case "formData":
			out = append(out, "formData parameters are not supported by this checker")
		}
	}
	for name := range q {
		if !known[name] {
			out = append(out, fmt.Sprintf("query parameter %s is not declared by %s", name, o.ID))
		}
	}
	sort.Strings(out)
	return out
}

// checkValues checks the raw values of one parameter occurrence against its
// declaration: an array is split per collectionFormat (csv by default) and
// counted against minItems, maxItems and uniqueItems; every scalar is
// checked against type, format, enum, minimum/maximum (exclusive ones too),
// minLength/maxLength and pattern.
func checkValues(what string, spec map[string]any, raw []string) []string {
	var out []string
	if str(spec, "type") != "array" {
		if len(raw) > 1 {
			return []string{fmt.Sprintf("%s is given %d times", what, len(raw))}
		}
		if e := checkScalar(what, spec, raw[0]); e != "" {
			out = append(out, e)
		}
		return out
	}
	format := str(spec, "collectionFormat")
	if format == "" {
		format = "csv"
	}
	var items []string
	if format == "multi" {
		items = raw
	} else {
		if len(raw) > 1 {
			return []string{fmt.Sprintf("%s is given %d times; the model's collectionFormat %s wants one value", what, len(raw), format)}
		}
		sep := map[string]string{"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}[format]
		if sep == "" {
			return []string{fmt.Sprintf("%s: collectionFormat %s is not supported", what, format)}
		}
		if raw[0] != "" {
			items = strings.Split(raw[0], sep)
		}
	}
	if n, ok := num(spec, "maxItems"); ok && float64(len(items)) > n {
		out = append(out, fmt.Sprintf("%s has %d items, the model allows at most %v", what, len(items), n))
	}
	if n, ok := num(spec, "minItems"); ok && float64(len(items)) < n {
		out = append(out, fmt.Sprintf("%s has %d items, the model wants at least %v", what, len(items), n))
	}
	if u, _ := spec["uniqueItems"].(bool); u {
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it] {
				out = append(out, fmt.Sprintf("%s repeats %q; the model wants unique items", what, it))
			}
			seen[it] = true
		}
	}
	itemSpec, _ := spec["items"].(map[string]any)
	for _, it := range items {
		if e := checkScalar(what+" item", itemSpec, it); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func checkScalar(what string, spec map[string]any, v string) string {
	if spec == nil {
		return ""
	}
	var n float64
	isNum := false
	switch typ := str(spec, "type"); typ {
	case "integer":
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Sprintf("%s %q is not an integer", what, v)
		}
		n, isNum = float64(i), true
	case "number":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Sprintf("%s %q is not a number", what, v)
		}
		n, isNum = f, true
	case "boolean":
		if v != "true" && v != "false" {
			return fmt.Sprintf("%s %q is not a boolean", what, v)
		}
	case "string", "":
		switch f := str(spec, "format"); f {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Sprintf("%s %q is not a date-time (RFC 3339, as the model's format says)", what, v)
			}
		case "date":
			if _, err := time.Parse("2006-01-02", v); err != nil {
				return fmt.Sprintf("%s %q is not a date", what, v)
			}
		}
	default:
		return fmt.Sprintf("%s: type %s is not supported", what, typ)
	}
	if enum, ok := spec["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == v
		}
		if !found {
			return fmt.Sprintf("%s %q is not one of the model's values %v", what, v, enum)
		}
	}
	if isNum {
		excl := func(k string) bool { b, _ := spec[k].(bool); return b }
		if m, ok := num(spec, "minimum"); ok && (n < m || (excl("exclusiveMinimum") && n == m)) {
			return fmt.Sprintf("%s %v is below the model's minimum %v", what, v, m)
		}
		if m, ok := num(spec, "maximum"); ok && (n > m || (excl("exclusiveMaximum") && n == m)) {
			return fmt.Sprintf("%s %v is above the model's maximum %v", what, v, m)
		}
	}
	if m, ok := num(spec, "maxLength"); ok && float64(utf8.RuneCountInString(v)) > m {
		return fmt.Sprintf("%s is longer than the model's maxLength %v", what, m)
	}
	if m, ok := num(spec, "minLength"); ok && float64(utf8.RuneCountInString(v)) < m {
		return fmt.Sprintf("%s is shorter than the model's minLength %v", what, m)
	}
	if p := str(spec, "pattern"); p != "" {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Sprintf("%s: the model's pattern %q does not compile: %v", what, p, err)
		}
		if !re.MatchString(v) {
			return fmt.Sprintf("%s %q does not match the model's pattern %s", what, v, p)
		}
	}
	return ""
}

func (m *Model) schema(ptr string) (*jsonschema.Schema, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.schemas[ptr]; ok {
		return s, nil
	}
	s, err := m.compiler.Compile(m.loc + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile %s#%s: %w", m.Name, ptr, err)
	}
	m.schemas[ptr] = s
	return s, nil
}

// Rule is a rule of an operation that its model states only in prose (a
// parameter's description), so it is written here by hand. Check gets the
// request's query; it returns why the request breaks the rule, or nil.
type Rule struct {
	Operation string // operationId
	Text      string // the rule, as the model words it
	Check     func(q url.Values) error
}

// Contract is a set of models and the hand-written rules of their
// operations. It checks requests and counts them; safe for concurrent use.
type Contract struct {
	models []*Model
	rules  map[string][]Rule

	mu      sync.Mutex
	checked map[string]int // by operationId
}

// NewContract returns a contract of the models and rules.
func NewContract(models []*Model, rules []Rule) *Contract {
	c := &Contract{models: models, rules: map[string][]Rule{}, checked: map[string]int{}}
	for _, r := range rules {
		c.rules[r.Operation] = append(c.rules[r.Operation], r)
	}
	return c
}

// LoadContract loads every Swagger 2.0 model in dir (other JSON files, such
// as a notification's schema, are skipped) with the hand-written rules.
func LoadContract(dir string, rules []Rule) (*Contract, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var models []*Model
	for _, f := range files {
		m, err := LoadModel(f)
		if errors.Is(err, ErrNotSwagger) {
			continue
		}
		if err != nil {
			return nil, err
		}
		models = append(models, m)
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("no Swagger 2.0 model in %s", dir)
	}
	return NewContract(models, rules), nil
}

// Models lists the contract's models.
func (c *Contract) Models() []*Model { return slices.Clone(c.models) }

// Rules lists the hand-written rules of an operation.
func (c *Contract) Rules(operationID string) []Rule { return slices.Clone(c.rules[operationID]) }

// Violation is a request outside the contract.
type Violation struct {
	Operation string // operationId; "" when no operation matched
	Method    string
	Path      string   // without the query string
	Problems  []string // what is wrong, one sentence each
}

func (v *Violation) Error() string {
	op := v.Operation
	if op == "" {
		op = "no operation"
	}
	return fmt.Sprintf("%s %s (%s): %s", v.Method, v.Path, op, strings.Join(v.Problems, "; "))
}

// Check checks one request; it returns the operation's id, and a
// *Violation when the request is outside the contract. The body is read
// and put back.
func (c *Contract) Check(r *http.Request) (string, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		body = b
	}
	return c.CheckParts(r.Method, r.URL, r.Header, body)
}

// CheckParts is Check on a request's parts.
func (c *Contract) CheckParts(method string, u *url.URL, h http.Header, body []byte) (string, error) {
	v := &Violation{Method: method, Path: u.EscapedPath()}
	found := false
	var op *Operation
	var vals map[string]string
	for _, m := range c.models {
		o, pv, f := m.match(method, u.EscapedPath())
		found = found || f
		if o != nil {
			op, vals = o, pv
			break
		}
	}
	c.mu.Lock()
	if op != nil {
		c.checked[op.ID]++
	} else {
		c.checked[""]++
	}
	c.mu.Unlock()
	if op == nil {
		if found {
			v.Problems = []string{"the path is in a model but not with this method"}
		} else {
			v.Problems = []string{"no model has this path"}
		}
		return "", v
	}
	v.Operation = op.ID
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		v.Problems = []string{fmt.Sprintf("query string: %v", err)}
		return op.ID, v
	}
	v.Problems = op.check(vals, q, h, body)
	for _, r := range c.rules[op.ID] {
		if err := r.Check(q); err != nil {
			v.Problems = append(v.Problems, err.Error())
		}
	}
	if len(v.Problems) > 0 {
		return op.ID, v
	}
	return op.ID, nil
}

// Checked counts the requests checked so far, by operationId ("" for
// requests no operation matched).
func (c *Contract) Checked() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.checked))
	for k, v := range c.checked {
		out[k] = v
	}
	return out
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func num(m map[string]any, k string) (float64, bool) {
	switch v := m[k].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// Example is a response body a model gives as an example of an operation:
// under a response's "examples" (by media type, or the body itself as some
// SP-API models write it) or each x-amzn-api-sandbox static and dynamic
// entry's "response".
type Example struct {
	Operation string // operationId
	Status    int
	Source    string // "examples" or "x-amzn-api-sandbox static #2"
	Body      []byte // JSON
}

// Examples lists the model's example responses, by operation, status and
// source.
func (m *Model) Examples() ([]Example, error) {
	var out []Example
	for _, o := range m.ops {
		op, ok := resolvePointer(m.doc, "#/paths/"+jsonPointerToken(o.Path)+"/"+strings.ToLower(o.Method))
		if !ok {
			return nil, fmt.Errorf("%s: operation vanished", o.ID)
		}
		responses, _ := op["responses"].(map[string]any)
		codes := make([]string, 0, len(responses))
		for c := range responses {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, code := range codes {
			status, err := strconv.Atoi(code)
			if err != nil {
				continue // "default"
			}
			r, _ := responses[code].(map[string]any)
			add := func(src string, v any) error {
				b, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("%s %d %s: %w", o.ID, status, src, err)
				}
				out = append(out, Example{Operation: o.ID, Status: status, Source: src, Body: b})
				return nil
			}
			if ex, ok := r["examples"].(map[string]any); ok {
				body := any(ex)
				if j, ok := ex["application/json"]; ok {
					body = j
				}
				if err := add("examples", body); err != nil {
					return nil, err
				}
			}
			sb, _ := r["x-amzn-api-sandbox"].(map[string]any)
			for _, kind := range []string{"static", "dynamic"} {
				entries, _ := sb[kind].([]any)
				for i, e := range entries {
					e, _ := e.(map[string]any)
					if resp, ok := e["response"]; ok {
						if err := add(fmt.Sprintf("x-amzn-api-sandbox %s #%d", kind, i+1), resp); err != nil {
							return nil, err
						}
					}
				}
			}
		}
	}
	return out, nil
}

// jsonPointerToken escapes one JSON pointer token (RFC 6901), unencoded.
func jsonPointerToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// SandboxRequest is a request a model's x-amzn-api-sandbox entry answers:
// its operation, the status of the answer and the request's URL (path and
// query, arrays comma-separated as the model's csv says).
type SandboxRequest struct {
	Operation string
	Method    string
	Status    int
	URL       *url.URL
	Body      []byte // the body parameter's value, as JSON; nil for none
}

// SandboxRequests lists the requests of the model's x-amzn-api-sandbox
// static entries.
func (m *Model) SandboxRequests() ([]SandboxRequest, error) {
	var out []SandboxRequest
	for _, o := range m.ops {
		op, _ := resolvePointer(m.doc, "#/paths/"+jsonPointerToken(o.Path)+"/"+strings.ToLower(o.Method))
		responses, _ := op["responses"].(map[string]any)
		for code, r := range responses {
			status, err := strconv.Atoi(code)
			if err != nil {
				continue
			}
			r, _ := r.(map[string]any)
			sb, _ := r["x-amzn-api-sandbox"].(map[string]any)
			entries, _ := sb["static"].([]any)
			for _, e := range entries {
				e, _ := e.(map[string]any)
				req, _ := e["request"].(map[string]any)
				params, _ := req["parameters"].(map[string]any)
				path := o.Path
				q := url.Values{}
				var body []byte
				for _, p := range o.params {
					v, ok := params[p.name()].(map[string]any)
					if !ok {
						continue
					}
					if p.in() == "body" {
						if body, err = json.Marshal(v["value"]); err != nil {
							return nil, fmt.Errorf("%s: body: %w", o.ID, err)
						}
						continue
					}
					var s string
					switch val := v["value"].(type) {
					case []any:
						parts := make([]string, len(val))
						for i, x := range val {
							parts[i] = fmt.Sprint(x)
						}
						s = strings.Join(parts, ",")
					default:
						s = fmt.Sprint(val)
					}
					switch p.in() {
					case "path":
						path = strings.ReplaceAll(path, "{"+p.name()+"}", url.PathEscape(s))
					case "query":
						q.Set(p.name(), s)
					}
				}
				u := &url.URL{Path: path, RawQuery: q.Encode()}
				if esc, err := url.PathUnescape(path); err == nil {
					u.Path, u.RawPath = esc, path
				}
				out = append(out, SandboxRequest{Operation: o.ID, Method: o.Method, Status: status, URL: u, Body: body})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operation != out[j].Operation {
			return out[i].Operation < out[j].Operation
		}
		return out[i].Status < out[j].Status
	})
	return out, nil
}
