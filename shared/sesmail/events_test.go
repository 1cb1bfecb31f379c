package sesmail_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

func eventFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/ses/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeEvent(t *testing.T) {
	const id = "0102019a1b2c3d4e-5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c-000000"
	tests := []struct {
		file, eventType string
		check           func(sesmail.Event) bool
	}{
		{"event-send.json", sesmail.EventSend, func(e sesmail.Event) bool {
			return e.Send != nil && e.Mail.Tag("ses:configuration-set") == "keybuzz-amazon-replies"
		}},
		{"event-delivery.json", sesmail.EventDelivery, func(e sesmail.Event) bool {
			return e.Delivery != nil && e.Delivery.SMTPResponse == "250 2.6.0 Message received" &&
				e.At().Equal(time.Date(2026, 12, 7, 10, 0, 0, 900e6, time.UTC))
		}},
		{"event-bounce.json", sesmail.EventBounce, func(e sesmail.Event) bool {
			return e.Bounce != nil && e.Bounce.BounceType == "Permanent" && len(e.Bounce.BouncedRecipients) == 1 &&
				e.Bounce.BouncedRecipients[0].DiagnosticCode == "smtp; 550 5.1.1 user unknown"
		}},
	}
	for _, tc := range tests {
		bare := eventFixture(t, tc.file)
		wrapped := ""
		for i, body := range []string{bare, wrapped} {
			if i == 1 {
				e, _ := sesmail.DecodeEvent(bare)
				var err error
				if body, err = sesout.SNSBody(e, "sns-1", "arn:aws:sns:eu-west-1:000000000000:ses-events", time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
			}
			e, err := sesmail.DecodeEvent(body)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if e.EventType != tc.eventType || e.Mail.MessageID != id || e.Mail.Tag("keybuzz-reply") != "cmreply0000000000000001" ||
				e.Mail.Tag("keybuzz-tenant") != "t1" || !tc.check(e) {
				t.Fatalf("%s (wrapped %v): decoded %+v", tc.file, i == 1, e)
			}
		}
	}
}

func TestDecodeEventRefuses(t *testing.T) {
	received := eventFixture(t, "received-s3.json")
	sub, _ := json.Marshal(map[string]string{"Type": "SubscriptionConfirmation", "Message": "x"})
	for name, tc := range map[string]struct {
		body string
		want error
	}{
		"not json":          {"{", sesmail.ErrMalformed},
		"no eventType":      {`{"mail":{"messageId":"x"}}`, sesmail.ErrMalformed},
		"no message id":     {`{"eventType":"Send","mail":{}}`, sesmail.ErrMalformed},
		"receipt":           {received, sesmail.ErrNotEvent},
		"subscription conf": {string(sub), sesmail.ErrNotEvent},
	} {
		if _, err := sesmail.DecodeEvent(tc.body); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
