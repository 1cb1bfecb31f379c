package poll_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// newQueue creates a queue of its own on the SQS emulator.
func newQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	client := sqs.New(sqs.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(testenv.ID("poll")),
		Attributes: map[string]string{"VisibilityTimeout": "60"},
	})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() { client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}) })
	return client, url
}

// drain receives every message of the queue and counts them by connection.
func drain(t *testing.T, client *sqs.Client, url string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return seen
		}
		for _, m := range out.Messages {
			msg, err := pollqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("body %q: %v", aws.ToString(m.Body), err)
			}
			seen[msg.ConnectionID]++
		}
	}
}

// dueStore is a store on a fresh database, on a manual clock at t0, with n
// CONNECTED connections due at t0.
func dueStore(t *testing.T, n int) (*postgres.Store, *sandbox.ManualClock) {
	t.Helper()
	pool, _ := testenv.Pool(t)
	clock := sandbox.NewManualClock(t0)
	if _, err := pool.Exec(context.Background(), `
SELECT keybuzz_dev.connection('tenant-' || g, 'CONNECTED', 'eu', 'A13V1IB3VIYZZH', connected_at => $1, next_poll_at => $1)
FROM generate_series(1, $2) g`, t0, n); err != nil {
		t.Fatal(err)
	}
	return postgres.New(pool, postgres.WithClock(clock.Now)), clock
}

// Two overlapping fan-outs over 1,000 due connections enqueue each exactly once.
func TestFanoutEnqueuesEachConnectionOnce(t *testing.T) {
	t.Parallel()
	store, clock := dueStore(t, 1000)
	client, url := newQueue(t)

	var wg sync.WaitGroup
	results := make([]poll.FanoutResult, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := poll.NewFanout(store, pollsender.NewSender(client, url, pollsender.WithParallel(8)), poll.WithFanoutConfig(poll.FanoutConfig{Chunk: 100}), poll.WithClock(clock.Now), poll.WithLogger(quiet()))
			res, err := f.Run(context.Background())
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	claimed := results[0].Claimed + results[1].Claimed
	sent := results[0].Sent + results[1].Sent
	if claimed != 1000 || sent != 1000 || results[0].Failed+results[1].Failed != 0 {
		t.Fatalf("results %+v, want 1000 claimed and sent in total", results)
	}
	seen := drain(t, client, url)
	if len(seen) != 1000 {
		t.Fatalf("%d distinct connections enqueued, want 1000", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("connection %s enqueued %d times", id, n)
		}
	}
	// A third run finds nothing due: all are claimed.
	f := poll.NewFanout(store, pollsender.NewSender(client, url, pollsender.WithParallel(8)), poll.WithClock(clock.Now), poll.WithLogger(quiet()))
	if res, err := f.Run(context.Background()); err != nil || res.Claimed != 0 {
		t.Fatalf("third run: %+v %v", res, err)
	}
}

// A queue that refuses messages: the claims are released for the next run.
func TestFanoutReleasesUnsentClaims(t *testing.T) {
	t.Parallel()
	store, clock := dueStore(t, 25)
	client, url := newQueue(t)

	bad := pollsender.NewSender(client, url+"-missing", pollsender.WithParallel(4))
	res, _ := poll.NewFanout(store, bad, poll.WithClock(clock.Now), poll.WithLogger(quiet())).Run(context.Background())
	if res.Claimed != 25 || res.Sent != 0 || res.Failed != 25 {
		t.Fatalf("refused: %+v", res)
	}
	res, err := poll.NewFanout(store, pollsender.NewSender(client, url, pollsender.WithParallel(4)), poll.WithClock(clock.Now), poll.WithLogger(quiet())).Run(context.Background())
	if err != nil || res.Claimed != 25 || res.Sent != 25 {
		t.Fatalf("next run: %+v %v", res, err)
	}
	if seen := drain(t, client, url); len(seen) != 25 {
		t.Fatalf("%d enqueued", len(seen))
	}
}
