package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// scanner finds any of a set of secret values inside texts, in every form a
// secret takes on its way out: the exact text, URL-encoded (query and path
// escaping, upper- and lower-case hex), JSON-escaped (Go's escaping and the
// \u00XX escaping of every non-alphanumeric byte other encoders use) and
// base64 (standard and URL alphabets, padded or not, at each of the three
// byte alignments a secret can have inside a longer encoded text).
//
// Each form is a needle; needles are indexed by a fixed-length prefix, so a
// text is scanned once whatever the number of secrets.
type scanner struct {
	keyLen int
	byKey  map[string][]needle
	n      int // secrets indexed
}

type needle struct {
	text   string // what is searched for
	secret string // the secret it encodes
	form   string // exact, url, json, json-unicode, base64
}

// Forms are the encodings the scanner searches for, by name.
var forms = []string{"exact", "url", "json", "json-unicode", "base64"}

func newScanner(secrets []string) *scanner {
	s := &scanner{keyLen: 12, byKey: map[string][]needle{}}
	seen := map[string]bool{}
	for _, v := range secrets {
		if len(v) < s.keyLen || seen[v] {
			continue
		}
		seen[v] = true
		s.n++
		have := map[string]bool{}
		for _, nd := range encodings(v) {
			if len(nd.text) < s.keyLen || have[nd.text] {
				continue
			}
			have[nd.text] = true
			k := nd.text[:s.keyLen]
			s.byKey[k] = append(s.byKey[k], nd)
		}
	}
	return s
}

// encodings returns every needle of secret v.
func encodings(v string) []needle {
	out := []needle{{v, v, "exact"}}
	add := func(form, text string) { out = append(out, needle{text, v, form}) }
	for _, e := range []string{url.QueryEscape(v), url.PathEscape(v), strings.ReplaceAll(url.QueryEscape(v), "+", "%20")} {
		add("url", e)
		add("url", lowerHexEscapes(e, '%'))
	}
	if b, err := json.Marshal(v); err == nil {
		add("json", string(b[1:len(b)-1]))
	}
	var u, U strings.Builder
	for _, r := range v {
		switch {
		case r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
			u.WriteRune(r)
			U.WriteRune(r)
		case r < 0x10000:
			fmt.Fprintf(&u, `\u%04x`, r)
			fmt.Fprintf(&U, `\u%04X`, r)
		default:
			u.WriteRune(r)
			U.WriteRune(r)
		}
	}
	add("json-unicode", u.String())
	add("json-unicode", U.String())
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for shift := 0; shift < 3; shift++ {
			add("base64", base64Core(enc, []byte(v), shift))
		}
	}
	return out
}

// base64Core is the part of the base64 text of v that does not depend on
// its neighbours when v starts shift bytes after a 3-byte boundary of the
// encoded stream: the characters whose 6 bits all come from v.
func base64Core(enc *base64.Encoding, v []byte, shift int) string {
	buf := append(make([]byte, shift), v...)
	s := enc.EncodeToString(buf)
	from := (8*shift + 5) / 6
	to := 8 * len(buf) / 6
	return s[from:to]
}

func lowerHexEscapes(s string, mark byte) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == mark {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// finding is one secret found, in one form.
type finding struct{ secret, form string }

// find returns every occurrence of a secret in text, in whichever form.
func (s *scanner) find(text string) []finding {
	var found []finding
	for i := 0; i+s.keyLen <= len(text); i++ {
		cands, ok := s.byKey[text[i:i+s.keyLen]]
		if !ok {
			continue
		}
		for _, c := range cands {
			if strings.HasPrefix(text[i:], c.text) {
				found = append(found, finding{c.secret, c.form})
				break
			}
		}
	}
	return found
}

// findJSON is find over a JSON document's text and, when that finds
// nothing, over every key and string value once decoded (a secret escaped
// twice, as in a JSON string stored in jsonb).
func (s *scanner) findJSON(text string) []finding {
	if f := s.find(text); len(f) > 0 {
		return f
	}
	var v any
	if json.Unmarshal([]byte(text), &v) != nil {
		return nil
	}
	var found []finding
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			found = append(found, s.findJSON(x)...)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				found = append(found, s.find(k)...)
				walk(e)
			}
		}
	}
	walk(v)
	return found
}

// scanReport counts what one scanner looked at and found, by form.
type scanReport struct {
	Scanned int            `json:"scanned"` // bytes, values, messages or objects
	Found   int            `json:"found"`
	ByForm  map[string]int `json:"byForm,omitempty"`
	Where   []string       `json:"where,omitempty"` // the first places, with 5-character prefixes only
}

func (r *scanReport) add(where string, fs []finding) {
	for _, f := range fs {
		r.Found++
		if r.ByForm == nil {
			r.ByForm = map[string]int{}
		}
		r.ByForm[f.form]++
		if len(r.Where) < 10 {
			r.Where = append(r.Where, fmt.Sprintf("%s: a secret (%d chars, starts %.5s…) in %s form", where, len(f.secret), f.secret, f.form))
		}
	}
}

// scanText scans one text (the logs).
func scanText(sc *scanner, where, text string) scanReport {
	r := scanReport{Scanned: len(text)}
	r.add(where, sc.find(text))
	return r
}

// scanDatabase scans every text, json and array value of every table of the
// public schema.
func scanDatabase(ctx context.Context, db *pgxpool.Pool, sc *scanner) (scanReport, error) {
	var r scanReport
	rows, err := db.Query(ctx, `
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY', 'character', 'USER-DEFINED', 'bytea')`)
	if err != nil {
		return r, err
	}
	type col struct{ table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column, &c.typ); err != nil {
			return r, err
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	for _, c := range cols {
		q := fmt.Sprintf(`SELECT %q::text FROM %q WHERE %q IS NOT NULL`, c.column, c.table, c.column)
		if c.typ == "ARRAY" { // each element as itself, not inside the array literal's quoting
			q = fmt.Sprintf(`SELECT e::text FROM %q, unnest(%q) AS e WHERE e IS NOT NULL`, c.table, c.column)
		}
		rows, err := db.Query(ctx, q)
		if err != nil {
			return r, fmt.Errorf("scan %s.%s: %w", c.table, c.column, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return r, err
			}
			r.Scanned++
			if c.typ == "json" || c.typ == "jsonb" {
				r.add(c.table+"."+c.column, sc.findJSON(s))
			} else {
				r.add(c.table+"."+c.column, sc.find(s))
			}
		}
		if err := rows.Err(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// payloads keeps every queue message body the soak saw (received from a
// queue or its dead-letter queue) for the payload scanner.
type payloads struct {
	mu     sync.Mutex
	bodies map[string]string // queue \x00 message id -> body
}

func (p *payloads) keep(queue, id, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bodies == nil {
		p.bodies = map[string]string{}
	}
	p.bodies[queue+"\x00"+id] = body
}

// body returns the body kept for message id of queue.
func (p *payloads) body(queue, id string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.bodies[queue+"\x00"+id]
	return b, ok
}

// idsWithBody returns the ids of the messages of queue with that body.
func (p *payloads) idsWithBody(queue, body string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for k, b := range p.bodies {
		if b == body && strings.HasPrefix(k, queue+"\x00") {
			ids = append(ids, k[len(queue)+1:])
		}
	}
	return ids
}

// scanQueues scans every message body kept.
func scanQueues(p *payloads, sc *scanner) scanReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r scanReport
	for k, body := range p.bodies {
		r.Scanned++
		r.add("queue "+k[:strings.IndexByte(k, 0)], sc.find(body))
	}
	return r
}

// scanBuckets scans every object of the buckets named, or with none named,
// of every bucket of the S3 endpoint (the inbound mail bucket and anything
// else stored there).
func scanBuckets(ctx context.Context, c *s3.Client, sc *scanner, only ...string) (scanReport, error) {
	var r scanReport
	names := only
	if len(names) == 0 {
		bs, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return r, fmt.Errorf("list buckets: %w", err)
		}
		for _, b := range bs.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
	}
	for _, name := range names {
		b := struct{ Name *string }{aws.String(name)}
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b.Name})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return r, fmt.Errorf("list %s: %w", aws.ToString(b.Name), err)
			}
			for _, o := range page.Contents {
				obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b.Name, Key: o.Key})
				if err != nil {
					return r, fmt.Errorf("get s3://%s/%s: %w", aws.ToString(b.Name), aws.ToString(o.Key), err)
				}
				body, err := io.ReadAll(obj.Body)
				obj.Body.Close()
				if err != nil {
					return r, err
				}
				r.Scanned++
				r.add("s3://"+aws.ToString(b.Name)+"/"+aws.ToString(o.Key), sc.find(string(body)))
			}
		}
	}
	return r, nil
}
