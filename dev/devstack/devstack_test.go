package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
)

// services are the variables `make test` provides; the test fails (not
// skips) in CI when one is missing.
var services = []string{"DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN", "AWS_ENDPOINT_URL_SQS", "POLL_QUEUE_URL", "AMAZON_SANDBOX_URL"}

// TestRunningStack checks the services this test process was started with
// (`make test` runs inside `stack run --profile test`).
func TestRunningStack(t *testing.T) {
	env := map[string]string{}
	var missing []string
	for _, k := range append(services, "POLL_DLQ_URL") {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		// A test that needs a service fails when it is missing, never skips.
		t.Fatalf("not inside the local stack, missing %v: run `make test`", missing)
	}
	checkServices(t, env)
}

// TestEphemeralStack starts its own test-profile stack and checks it, then
// checks that Close leaves nothing behind. Set DEVSTACK_SELFTEST=1.
func TestEphemeralStack(t *testing.T) {
	if os.Getenv("DEVSTACK_SELFTEST") != "1" {
		t.Skip("set DEVSTACK_SELFTEST=1 to start an ephemeral stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	st, err := Start(ctx, Test(), Options{IgnoreEnv: true, Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stack ready in %s", time.Since(start))
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	env := map[string]string{}
	for _, kv := range st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	checkServices(t, env)

	fileEnv, err := ReadEnvFile(st.EnvPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(fileEnv, "\n") != strings.Join(st.Env(), "\n") {
		t.Errorf("env file differs from Env():\n%v\n%v", fileEnv, st.Env())
	}
	if fi, err := os.Stat(st.EnvPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode: %v %v", fi.Mode(), err)
	}

	closed = true
	if err := st.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := os.Stat(st.StateDir()); !os.IsNotExist(err) {
		t.Errorf("state dir %s still exists after Close", st.StateDir())
	}
	for _, k := range []string{"VAULT_ADDR", "AMAZON_SANDBOX_URL", "AWS_ENDPOINT_URL_SQS"} {
		c := &http.Client{Timeout: time.Second}
		if resp, err := c.Get(env[k]); err == nil {
			resp.Body.Close()
			t.Errorf("%s %s still answers after Close", k, env[k])
		}
	}
	if conn, err := pgx.Connect(ctx, env["DATABASE_URL"]); err == nil {
		conn.Close(ctx)
		t.Errorf("postgres still answers after Close")
	}
}

func checkServices(t *testing.T, env map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("postgres", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, env["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var createdb bool
		if err := conn.QueryRow(ctx, `SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user`).Scan(&createdb); err != nil {
			t.Fatal(err)
		}
		if !createdb {
			t.Error("role cannot create databases (tests create one each)")
		}
	})

	t.Run("vault kv v2", func(t *testing.T) {
		cfg := vault.DefaultConfig()
		cfg.Address = env["VAULT_ADDR"]
		c, err := vault.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(env["VAULT_TOKEN"])
		kv := c.KVv2(KVMount)
		path := "devstack-test/" + devrand.Hex(4)
		if _, err := kv.Put(ctx, path, map[string]any{"v": "1"}); err != nil {
			t.Fatal(err)
		}
		defer kv.DeleteMetadata(ctx, path)
		got, err := kv.Get(ctx, path)
		if err != nil || got.Data["v"] != "1" {
			t.Fatalf("get: %v %v", got, err)
		}
		app, err := kv.Get(ctx, AppSecretPath)
		if err != nil {
			t.Fatalf("seeded app credentials: %v", err)
		}
		for _, f := range []string{"client_id", "client_secret", "redirect_uri", "application_id", "region"} {
			if s, _ := app.Data[f].(string); s == "" {
				t.Errorf("seeded app credentials lack %s", f)
			}
		}
	})

	t.Run("sqs", func(t *testing.T) {
		c := sqsClient(env["AWS_ENDPOINT_URL_SQS"])
		url, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(PollQueueName)})
		if err != nil {
			t.Fatal(err)
		}
		if *url.QueueUrl != env["POLL_QUEUE_URL"] {
			t.Errorf("GetQueueUrl = %s, POLL_QUEUE_URL = %s", *url.QueueUrl, env["POLL_QUEUE_URL"])
		}
		attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		var redrive struct {
			DeadLetterTargetArn string
			MaxReceiveCount     json.Number
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil || !strings.HasSuffix(redrive.DeadLetterTargetArn, ":"+PollDLQName) {
			t.Errorf("RedrivePolicy = %q (%v)", attrs.Attributes["RedrivePolicy"], err)
		}
		if _, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(env["POLL_DLQ_URL"])}); err != nil {
			t.Errorf("DLQ: %v", err)
		}

		// A private queue keeps this test away from consumers of the poll queue.
		q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("devstack-test-" + devrand.Hex(4))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
		batch, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []types.SendMessageBatchRequestEntry{
			{Id: aws.String("a"), MessageBody: aws.String(`{"n":1}`)},
			{Id: aws.String("b"), MessageBody: aws.String(`{"n":2}`)},
		}})
		if err != nil || len(batch.Successful) != 2 {
			t.Fatalf("SendMessageBatch: %v %+v", err, batch)
		}
		got := 0
		for got < 2 && ctx.Err() == nil {
			out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			got += len(out.Messages)
		}
		if got != 2 {
			t.Errorf("received %d messages, want 2", got)
		}
	})

	t.Run("amazon sandbox", func(t *testing.T) {
		resp, err := http.Get(env["AMAZON_SANDBOX_URL"] + "/_sandbox/sellers")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %s", resp.Status)
		}
	})
}
