package relaymail_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
)

// expected is a corpus mail's .json: what the mail must read as. Empty
// fields are not checked unless the mail is a relay mail (then "" means the
// field must be empty).
type expected struct {
	Name           string `json:"name"`
	Error          string `json:"error"` // "not_amazon", "malformed"
	Kind           string `json:"kind"`
	MarketplaceID  string `json:"marketplaceId"`
	BuyerName      string `json:"buyerName"`
	BuyerAlias     string `json:"buyerAlias"`
	BuyerKey       string `json:"buyerKey"`
	OrderID        string `json:"orderId"`
	ASIN           string `json:"asin"`
	Language       string `json:"language"`
	Topic          string `json:"topic"`
	Words          string `json:"words"`
	WordsContains  string `json:"wordsContains"`
	Marked         *bool  `json:"marked"`
	FromHTML       *bool  `json:"fromHTML"`
	NoticeReason   string `json:"noticeReason"`
	NoticeAlias    string `json:"noticeAlias"`
	MessageID      *string
	MessageIDField string `json:"messageId"`
	Attachments    []struct {
		Filename    string `json:"filename"`
		ContentType string `json:"contentType"`
		Size        int    `json:"size"`
		SHA256      string `json:"sha256"`
		Inline      bool   `json:"inline"`
	} `json:"attachments"`
}

// corpus lists testdata/mail: every .eml with its .json.
func corpus(t testing.TB) map[string]expected {
	t.Helper()
	files, err := filepath.Glob("../../testdata/mail/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus under testdata/mail: %v", err)
	}
	out := map[string]expected{}
	for _, f := range files {
		b, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".json")
		if err != nil {
			t.Fatalf("%s has no expectations: %v", f, err)
		}
		var e expected
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s.json: %v", f, err)
		}
		out[f] = e
	}
	return out
}

func TestCorpus(t *testing.T) {
	for file, want := range corpus(t) {
		t.Run(want.Name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := relaymail.Parse(raw, relaymail.Limits{})
			if want.Error == "malformed" {
				if !errors.Is(err, relaymail.ErrMalformed) {
					t.Fatalf("Parse = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r, err := relaymail.Understand(m)
			if want.Error == "not_amazon" {
				if !errors.Is(err, relaymail.ErrNotAmazon) {
					t.Fatalf("Understand = %+v, %v; want ErrNotAmazon", r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Understand: %v", err)
			}
			check := func(field, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			relay := want.Kind == string(relaymail.KindBuyerMessage) && want.BuyerAlias != ""
			check("kind", string(r.Kind), want.Kind)
			check("orderId", r.OrderID, want.OrderID)
			if relay || want.BuyerName != "" {
				check("buyerName", r.BuyerName, want.BuyerName)
			}
			if want.MarketplaceID != "" {
				check("marketplaceId", r.MarketplaceID, want.MarketplaceID)
			}
			if want.Kind == string(relaymail.KindOutgoingNotice) {
				if r.Notice == nil {
					t.Fatalf("an outgoing notice without its Notice: %+v", r)
				}
				check("notice reason", string(r.Notice.Reason), want.NoticeReason)
				check("notice alias", r.Notice.Alias, want.NoticeAlias)
				check("notice orderId", r.Notice.OrderID, want.OrderID)
			} else if r.Notice != nil {
				t.Errorf("Notice %+v on a %s mail", *r.Notice, r.Kind)
			}
			if want.Language != "" {
				check("language", r.Language, want.Language)
			}
			if want.Words != "" {
				check("words", r.Words, want.Words)
			}
			if want.WordsContains != "" && !strings.Contains(r.Words, want.WordsContains) {
				t.Errorf("words %q lack %q", r.Words, want.WordsContains)
			}
			if relay {
				check("marketplaceId", r.MarketplaceID, want.MarketplaceID)
				check("buyerAlias", r.BuyerAlias, want.BuyerAlias)
				check("buyerKey", r.BuyerKey, want.BuyerKey)
				check("asin", r.ASIN, want.ASIN)
				check("topic", r.Topic, want.Topic)
				check("messageId", m.MessageID, want.MessageIDField)
				if want.Marked != nil && r.Marked != *want.Marked {
					t.Errorf("marked = %v, want %v", r.Marked, *want.Marked)
				}
				if want.FromHTML != nil && m.FromHTML != *want.FromHTML {
					t.Errorf("fromHTML = %v, want %v", m.FromHTML, *want.FromHTML)
				}
				for _, boiler := range []string{"commMgrTok", "Begin message", "End message", "Was this email helpful", "Copyright"} {
					if strings.Contains(r.Words, boiler) {
						t.Errorf("words keep Amazon's boilerplate %q: %q", boiler, r.Words)
					}
				}
				if len(m.Attachments) != len(want.Attachments) {
					t.Fatalf("attachments = %d, want %d", len(m.Attachments), len(want.Attachments))
				}
				for i, a := range want.Attachments {
					g := m.Attachments[i]
					check("attachment filename", g.Filename, a.Filename)
					check("attachment type", g.ContentType, a.ContentType)
					check("attachment sha256", g.SHA256(), a.SHA256)
					if len(g.Data) != a.Size || g.Inline != a.Inline {
						t.Errorf("attachment %s: size %d inline %v, want %d %v", a.Filename, len(g.Data), g.Inline, a.Size, a.Inline)
					}
				}
			}
		})
	}
}

func TestCorpusCoversTheDocumentedShapes(t *testing.T) {
	var langs, charsets, encodings = map[string]bool{}, map[string]bool{}, map[string]bool{}
	var kinds, reasons = map[string]bool{}, map[string]bool{}
	for file := range corpus(t) {
		b, _ := os.ReadFile(strings.TrimSuffix(file, ".eml") + ".json")
		var e struct{ Language, Charset, TransferEncoding, Kind, NoticeReason string }
		_ = json.Unmarshal(b, &e)
		langs[e.Language], charsets[e.Charset], encodings[e.TransferEncoding], kinds[e.Kind] = true, true, true, true
		reasons[e.NoticeReason] = true
	}
	for _, r := range []relaymail.NoticeReason{relaymail.NoticeBuyerOptedOut, relaymail.NoticeContentRefused, relaymail.NoticeSenderNotApproved, relaymail.NoticeDeliveryFailed} {
		if !reasons[string(r)] {
			t.Errorf("no corpus notice with reason %s", r)
		}
	}
	for _, l := range []string{"en", "fr", "de", "it", "es", "nl", "sv", "pl", "tr", "ja"} {
		if !langs[l] {
			t.Errorf("no corpus mail in %s", l)
		}
	}
	for _, c := range []string{"utf-8", "iso-8859-1", "iso-8859-15", "windows-1252", "shift_jis", "iso-2022-jp"} {
		if !charsets[c] {
			t.Errorf("no corpus mail in charset %s", c)
		}
	}
	for _, c := range []string{"quoted-printable", "base64"} {
		if !encodings[c] {
			t.Errorf("no corpus mail in %s", c)
		}
	}
	for _, k := range []relaymail.Kind{relaymail.KindBuyerMessage, relaymail.KindCancellation, relaymail.KindReturn, relaymail.KindAtoZ, relaymail.KindOutgoingNotice} {
		if !kinds[string(k)] {
			t.Errorf("no corpus mail of kind %s", k)
		}
	}
}
