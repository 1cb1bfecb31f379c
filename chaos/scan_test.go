package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
)

// The secret planted: an LWA refresh token's shape, with the '|' that
// URL and JSON encoders escape.
const planted = "Atzr|IwEBIPlanted-0123456789_abcdefXYZ+/="

// plantings are the forms a secret takes on its way out, each produced by
// the encoder that would produce it (not by the scanner's own code), inside
// surrounding text.
func plantings(t *testing.T) map[string]string {
	t.Helper()
	js, err := json.Marshal(map[string]string{"refresh_token": planted})
	if err != nil {
		t.Fatal(err)
	}
	var unicode strings.Builder // what an encoder escaping every symbol writes (Atzr\u007c…)
	for _, r := range planted {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			unicode.WriteRune(r)
		} else {
			fmt.Fprintf(&unicode, `\u%04x`, r)
		}
	}
	out := map[string]string{
		"exact":               `level=INFO msg="token" value=` + planted + ` tenant=t1`,
		"url query":           "https://api.amazon.com/auth/o2/token?" + url.Values{"grant_type": {"refresh_token"}, "refresh_token": {planted}}.Encode(),
		"url path":            "/callback/" + url.PathEscape(planted) + "/x",
		"url lower-case hex":  "refresh_token=" + regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(url.QueryEscape(planted), strings.ToLower),
		"json":                string(js),
		"json unicode escape": `{"refresh_token":"` + unicode.String() + `"}`,
		"json unicode upper":  `{"refresh_token":"` + regexp.MustCompile(`\\u[0-9a-f]{4}`).ReplaceAllStringFunc(unicode.String(), func(e string) string { return `\u` + strings.ToUpper(e[2:]) }) + `"}`,
	}
	for shift := range 3 {
		text := []byte(strings.Repeat("x", shift) + `{"refresh_token":"` + planted + `"}`)
		out[fmt.Sprintf("base64 std, shift %d", shift)] = "Authorization: Basic " + base64.StdEncoding.EncodeToString(text)
		out[fmt.Sprintf("base64 raw url, shift %d", shift)] = "payload=" + base64.RawURLEncoding.EncodeToString(text) + "&x=1"
	}
	return out
}

func TestScannerFindsEveryForm(t *testing.T) {
	sc := newScanner([]string{planted, "short", "Atza|fedcba9876543210"})
	if sc.n != 2 {
		t.Fatalf("%d secrets indexed, want 2 (short values are skipped)", sc.n)
	}
	for name, text := range plantings(t) {
		got := sc.find(text)
		if len(got) == 0 || got[0].secret != planted {
			t.Errorf("%s: %q not found in %q (got %v)", name, planted, text, got)
		}
	}
	// A near miss is not a finding.
	near := strings.Replace(planted, "Planted", "Plantex", 1)
	for name, text := range map[string]string{"exact": near, "url": url.QueryEscape(near), "base64": base64.StdEncoding.EncodeToString([]byte(near))} {
		if got := sc.find(text); len(got) != 0 {
			t.Errorf("%s near miss found: %v", name, got)
		}
	}
	if got := sc.find(`{"x":"Atza|fedcba987654321"}`); len(got) != 0 {
		t.Errorf("a prefix of a secret found: %v", got)
	}
}

// Each scanner, on the service it scans, finds the secret planted there in
// every form.
func TestScannersFindPlantedSecrets(t *testing.T) {
	ctx := context.Background()
	sc := newScanner([]string{planted})
	forms := plantings(t)
	want := len(forms)

	t.Run("logs", func(t *testing.T) {
		var logs bytes.Buffer
		for _, text := range forms {
			logs.WriteString(text + "\n")
		}
		if r := scanText(sc, "logs", logs.String()); r.Found != want {
			t.Fatalf("found %d of %d planted: %+v", r.Found, want, r)
		}
	})

	t.Run("database", func(t *testing.T) {
		pool, _ := testenv.Pool(t)
		if _, err := pool.Exec(ctx, `CREATE TABLE "Planted" ("id" serial PRIMARY KEY, "note" text, "raw" jsonb, "tags" text[])`); err != nil {
			t.Fatal(err)
		}
		for name, text := range forms {
			raw, _ := json.Marshal(map[string]string{"form": name, "text": text})
			if _, err := pool.Exec(ctx, `INSERT INTO "Planted" ("note", "raw", "tags") VALUES ($1, NULL, NULL), (NULL, $2, NULL), (NULL, NULL, $3)`,
				text, raw, []string{"a", text}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := scanDatabase(ctx, pool, sc)
		if err != nil {
			t.Fatal(err)
		}
		// Each form in a text, a jsonb (where the JSON form is escaped once
		// more, still found) and an array column.
		if r.Found != 3*want {
			t.Fatalf("found %d, want %d: %+v", r.Found, 3*want, r)
		}
	})

	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	creds := credentials.NewStaticCredentialsProvider(devstack.AccessKeyID, devstack.AccessKeyID, "")

	t.Run("sqs", func(t *testing.T) {
		c := sqs.New(sqs.Options{Region: devstack.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
		q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID("planted"))})
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range forms {
			if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(text)}); err != nil {
				t.Fatal(err)
			}
		}
		var p payloads
		for got := 0; got < want; {
			r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) == 0 {
				t.Fatalf("received %d of %d messages", got, want)
			}
			for _, m := range r.Messages {
				p.keep("planted", aws.ToString(m.MessageId), aws.ToString(m.Body))
				got++
			}
		}
		if r := scanQueues(&p, sc); r.Found != want || r.Scanned != want {
			t.Fatalf("found %d in %d messages, want %d: %+v", r.Found, r.Scanned, want, r)
		}
	})

	t.Run("s3", func(t *testing.T) {
		s3Endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
		if s3Endpoint == "" {
			s3Endpoint = endpoint
		}
		c := s3.New(s3.Options{Region: devstack.Region, BaseEndpoint: aws.String(s3Endpoint), UsePathStyle: true, Credentials: creds})
		bucket := testenv.ID("planted")
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		i := 0
		for _, text := range forms {
			i++
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("mail/%d.eml", i)),
				Body: strings.NewReader("From: buyer@example.com\r\n\r\n" + text)}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := scanBuckets(ctx, c, sc, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if r.Found != want || r.Scanned != want {
			t.Fatalf("found %d in %d objects, want %d: %+v", r.Found, r.Scanned, want, r)
		}
	})
}
