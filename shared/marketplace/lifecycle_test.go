package marketplace

import (
	"testing"
	"time"
)

func TestEffectiveReauthReason(t *testing.T) {
	now := time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d int) *time.Time { v := now.Add(-time.Duration(d) * 24 * time.Hour); return &v }
	for _, tc := range []struct {
		name string
		c    Connection
		want ReauthReason
	}{
		{"fresh", Connection{Status: StatusConnected, AuthorizedAt: ago(10)}, ""},
		{"31 days left", Connection{Status: StatusConnected, AuthorizedAt: ago(334)}, ""},
		{"30 days left", Connection{Status: StatusConnected, AuthorizedAt: ago(335)}, ReauthRenewalDue},
		{"expired, not yet marked", Connection{Status: StatusConnected, AuthorizedAt: ago(400)}, ReauthRenewalDue},
		{"stored reason wins", Connection{Status: StatusNeedsReauth, ReauthReason: ReauthAppMigration, AuthorizedAt: ago(335)}, ReauthAppMigration},
		{"pending", Connection{Status: StatusPending}, ""},
		{"disabled, old consent", Connection{Status: StatusDisabled, AuthorizedAt: ago(340)}, ""},
		{"no consent time", Connection{Status: StatusConnected}, ""},
	} {
		if got := EffectiveReauthReason(tc.c, now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
