package reply

import (
	"errors"
	"testing"
)

func TestBodyHash(t *testing.T) {
	a, b := BodyHash("r1", "Merci"), BodyHash("r2", "Merci")
	if a == b {
		t.Fatal("two replies with the same text hash alike")
	}
	if a != BodyHash("r1", "Merci") {
		t.Fatal("not deterministic")
	}
	if BodyHash("r1", "Merci") == BodyHash("r1M", "erci") {
		t.Fatal("id and text run together")
	}
	if len(a) != 64 {
		t.Fatalf("len %d", len(a))
	}
}

func TestSenderFor(t *testing.T) {
	addrs := map[string]string{"FR": "amazon.t.fr.x@in", "GB": "amazon.t.gb.y@in", "DE": ""}
	tests := []struct {
		alias, want string
		err         error
	}{
		{"buyer+1@marketplace.amazon.fr", "amazon.t.fr.x@in", nil},
		{"Buyer@Marketplace.Amazon.CO.UK", "amazon.t.gb.y@in", nil},
		{"buyer@marketplace.amazon.de", "", ErrNoSenderAddress},
		{"buyer@marketplace.amazon.es", "", ErrNoSenderAddress},
		{"buyer@example.com", "", ErrNotRelayAlias},
		{"buyer@marketplace.amazon.zz", "", ErrNotRelayAlias},
		{"nobody", "", ErrNotRelayAlias},
	}
	for _, tc := range tests {
		got, err := SenderFor(tc.alias, addrs)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("SenderFor(%q) = %q, %v; want %q, %v", tc.alias, got, err, tc.want, tc.err)
		}
	}
}

func TestSendError(t *testing.T) {
	base := errors.New("boom")
	err := error(&SendError{Permanent: true, Code: "MessageRejected", Reason: "refused", Err: base})
	if !IsPermanent(err) || !errors.Is(err, base) {
		t.Fatal("permanent SendError not seen")
	}
	if IsPermanent(&SendError{Code: "ThrottlingException"}) || IsPermanent(base) {
		t.Fatal("transient seen as permanent")
	}
}

func TestJobBody(t *testing.T) {
	j := Job{ReplyID: "c1", TenantID: "t"}
	got, err := DecodeJob(EncodeJob(j))
	if err != nil || got != j {
		t.Fatalf("round trip %v %v", got, err)
	}
	for _, bad := range []string{"", "{}", `{"tenantId":"t"}`, `{"replyId":"c","x":1}`, `{"replyId":"c"} {}`, "null", "[]"} {
		if _, err := DecodeJob(bad); !errors.Is(err, ErrMalformedJob) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Question":       "Re: Question",
		"RE: Question":   "Re: Question",
		"re:Question":    "Re: Question",
		"  ":             "Re:",
		"Réponse rapide": "Re: Réponse rapide",
	} {
		if got := Subject(in); got != want {
			t.Errorf("Subject(%q) = %q, want %q", in, got, want)
		}
	}
}
