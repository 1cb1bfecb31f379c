package sesmail_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

func fixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/ses/received-s3.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeBareAndWrapped(t *testing.T) {
	bare := fixture(t)
	n, err := sesmail.Decode(bare)
	if err != nil {
		t.Fatal(err)
	}
	if n.Mail.MessageID != "d6iitobk75ur44p8kdnnp7g2n800" || n.Receipt.Action.ObjectKey != "raw/d6iitobk75ur44p8kdnnp7g2n800" ||
		n.Receipt.DMARCVerdict.Status != sesmail.Pass || len(n.Receipt.Recipients) != 1 || n.Mail.CommonHeaders.MessageID == "" {
		t.Fatalf("decoded %+v", n)
	}
	wrapped, err := smtpses.SNSBody(n, "sns-1", n.Receipt.Action.TopicArn, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := sesmail.Decode(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(n)
	b, _ := json.Marshal(n2)
	if string(a) != string(b) {
		t.Errorf("wrap/decode changed the notification:\n%s\n%s", a, b)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		body string
		want error
	}{
		{`not json`, sesmail.ErrMalformed},
		{`{"Type":"SubscriptionConfirmation","Message":"x"}`, sesmail.ErrNotReceived},
		{`{"Type":"Notification","Message":"{\"notificationType\":\"Bounce\"}"}`, sesmail.ErrNotReceived},
		{`{"Type":"Notification","Message":"garbage"}`, sesmail.ErrMalformed},
		{`{"notificationType":"Received","mail":{}}`, sesmail.ErrMalformed},
		{`{"notificationType":"Received","mail":{"messageId":"m"},"receipt":{"action":{"type":"S3"}}}`, sesmail.ErrMalformed},
		{`{"Service":"SES","Event":"AMAZON_SES_SETUP_NOTIFICATION"}`, sesmail.ErrNotReceived},
		{`{}`, sesmail.ErrMalformed},
	} {
		if _, err := sesmail.Decode(tc.body); !errors.Is(err, tc.want) {
			t.Errorf("Decode(%s) = %v, want %v", tc.body, err, tc.want)
		}
	}
}
