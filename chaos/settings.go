package main

import (
	"flag"
	"io"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// Settings size one soak. The short setting (defaults) runs inside
// `make test`; the long one is RELIABILITY.md's long command (more than
// 600 real kills across polltenant, inboundmail, ordernotify, the reply
// sender and the SES-events consumer).
type Settings struct {
	Name         string  `json:"name"`
	Tenants      int     `json:"tenants"`      // sandbox sellers, each connected as one tenant through the Connect flow
	Cycles       int     `json:"cycles"`       // poll cycles with faults
	SettleCycles int     `json:"settleCycles"` // at most this many clean cycles afterwards, until every tenant is caught up
	Workers      int     `json:"workers"`      // polltenant "containers" consuming the queue
	Batch        int32   `json:"batch"`        // SQS records per invocation
	PageSize     int     `json:"pageSize"`     // searchOrders maxResultsPerPage (small, so a sync has several pages)
	Seed         int64   `json:"seed"`         // randomness of the injection (0: from the time)
	CrashRate    float64 `json:"crashRate"`    // share of invocations killed at a random point
	CrashWindow  time.Duration
	DupRate      float64 `json:"dupRate"`      // share of receives made visible again at once (concurrent duplicate)
	NoDeleteRate float64 `json:"noDeleteRate"` // share of handled batches not deleted (redelivered after the visibility timeout)
	FaultRate    float64 `json:"faultRate"`    // per tenant and cycle: an SP-API fault (429/500/503/slow/drop)
	ExpireRate   float64 `json:"expireRate"`   // per tenant and cycle: its access tokens expire
	RevokeRate   float64 `json:"revokeRate"`   // per tenant and cycle: the seller revokes the app
	ActivityRate float64 `json:"activityRate"` // per tenant and cycle: new buyer activity
	// RevokeTenants: the last n tenants revoke the app before the second cycle.
	RevokeTenants int     `json:"revokeTenants,omitempty"`
	LWAFaultRate  float64 `json:"lwaFaultRate"` // per tenant and cycle: LWA token endpoint fault (500/503/slow/drop)
	EmptyRate     float64 `json:"emptyRate"`    // per tenant and cycle: its Vault secret is deleted
	Rotation      bool    `json:"rotation"`     // refresh-token rotation on for every seller
	RotateEvery   int     `json:"rotateEvery"`  // the app's client secret rotated during every n-th cycle (0: never)
	SealEvery     int     `json:"sealEvery"`    // Vault sealed during every n-th cycle (0: never)
	VaultEvery    int     `json:"vaultEvery"`   // Vault restarted during every n-th cycle (0: never)
	PGEvery       int     `json:"pgEvery"`      // PostgreSQL restarted during every n-th cycle (0: never)
	Visibility    int32   `json:"visibilitySeconds"`
	// Real kills: the polltenant bootstrap under aws-lambda-rie, SIGKILLed
	// Kills times at chosen points, frozen (SIGSTOP) Freezes times while
	// another container takes over; KillTenants tenants on a sandbox of
	// their own on real time.
	Kills       int `json:"kills"`
	Freezes     int `json:"freezes"`
	KillTenants int `json:"killTenants"`
	// The push and mail channels: ORDER_CHANGE notifications (delivery
	// faults of the sandbox), buyer mails through the SES stand-in (S3 and
	// SNS faults), malformed and oversized mails, forged notifications.
	Channels        bool                   `json:"channels"`
	MailRate        float64                `json:"mailRate"`        // per tenant and cycle: a buyer mail
	MailFaultRate   float64                `json:"mailFaultRate"`   // share of mails with an S3 object missing or late, or an SNS duplicate
	HostileMailRate float64                `json:"hostileMailRate"` // per tenant and cycle: a malformed or oversized mail
	PushFaults      sandbox.DeliveryFaults `json:"pushFaults"`
	// MailKills: real kills (SIGKILL) of the inboundmail bootstrap under
	// aws-lambda-rie, inside its ingestion transaction and before the ack.
	MailKills int `json:"mailKills"`
	// NotifyKills: real kills (SIGKILL) of the ordernotify bootstrap under
	// aws-lambda-rie, inside its ingestion transaction and before the ack.
	NotifyKills int `json:"notifyKills"`
	// ReplyKills: real kills (SIGKILL) of the replysender bootstrap under
	// aws-lambda-rie, after the claim, after SES accepted and before the
	// ack; SES's throttling, 5xx and a lost answer besides.
	ReplyKills int `json:"replyKills"`
	// SESEventKills: real kills (SIGKILL) of the sesevents bootstrap under
	// aws-lambda-rie, inside its transaction and before the ack (after the
	// reply kills, on their replies' events).
	SESEventKills int `json:"sesEventKills"`
	// Load run (0: none): API requests after connecting, and Vault's delay meanwhile.
	LoadRequests    int           `json:"loadRequests"`
	DrainTimeout    time.Duration `json:"drainTimeout"` // a cycle fails when its queue is not drained by then
	LoadConcurrency int           `json:"loadConcurrency"`
	LoadVaultDelay  time.Duration `json:"loadVaultDelay"`
	// Outputs.
	MarkdownPath string    `json:"-"` // RELIABILITY.md: the block of this setting is replaced
	JSONPath     string    `json:"-"`
	Out          io.Writer `json:"-"` // progress and the table (also scanned for secrets)
}

// Short is the setting of `make chaos` and of chaos_test.go.
func Short() Settings {
	return Settings{
		Name: "short", Tenants: 200, Cycles: 4, SettleCycles: 4, Workers: 4, Batch: 5, PageSize: 20,
		CrashRate: 0.25, CrashWindow: 80 * time.Millisecond, DupRate: 0.05, NoDeleteRate: 0.05,
		FaultRate: 0.15, ExpireRate: 0.05, RevokeRate: 0.01, ActivityRate: 0.5,
		LWAFaultRate: 0.05, EmptyRate: 0.005, Rotation: true, RotateEvery: 2, SealEvery: 3,
		VaultEvery: 2, PGEvery: 3, Visibility: 2, DrainTimeout: 10 * time.Minute,
		Kills: 20, Freezes: 1, KillTenants: 12,
		Channels: true, MailKills: 10, NotifyKills: 6, ReplyKills: 6, SESEventKills: 4, MailRate: 0.3, MailFaultRate: 0.15, HostileMailRate: 0.02,
		PushFaults: sandbox.DeliveryFaults{DropEvery: 7, DuplicateEvery: 5, DelayEvery: 11, Delay: 1500 * time.Millisecond, ReorderEvery: 6},
	}
}

func (s *Settings) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.Name, "name", s.Name, "name of the setting (the block of RELIABILITY.md it writes)")
	fs.IntVar(&s.Tenants, "tenants", s.Tenants, "tenants (sandbox sellers) connected through the Connect flow")
	fs.IntVar(&s.Cycles, "cycles", s.Cycles, "poll cycles with fault injection")
	fs.IntVar(&s.SettleCycles, "settle", s.SettleCycles, "clean cycles at most afterwards")
	fs.IntVar(&s.Workers, "workers", s.Workers, "polltenant containers")
	fs.IntVar(&s.PageSize, "page-size", s.PageSize, "searchOrders maxResultsPerPage")
	fs.Int64Var(&s.Seed, "seed", s.Seed, "random seed (0: time)")
	fs.Float64Var(&s.CrashRate, "crash-rate", s.CrashRate, "share of invocations killed")
	fs.DurationVar(&s.CrashWindow, "crash-window", s.CrashWindow, "a kill lands uniformly within this time of the invocation's start")
	fs.Float64Var(&s.FaultRate, "fault-rate", s.FaultRate, "per tenant and cycle: SP-API fault")
	fs.Float64Var(&s.ExpireRate, "expire-rate", s.ExpireRate, "per tenant and cycle: access tokens expire")
	fs.Float64Var(&s.RevokeRate, "revoke-rate", s.RevokeRate, "per tenant and cycle: refresh token revoked")
	fs.Float64Var(&s.ActivityRate, "activity-rate", s.ActivityRate, "per tenant and cycle: new buyer activity")
	fs.Float64Var(&s.LWAFaultRate, "lwa-fault-rate", s.LWAFaultRate, "per tenant and cycle: LWA token endpoint fault")
	fs.Float64Var(&s.EmptyRate, "empty-rate", s.EmptyRate, "per tenant and cycle: its Vault secret is deleted")
	fs.BoolVar(&s.Rotation, "rotation", s.Rotation, "refresh-token rotation on")
	fs.IntVar(&s.RotateEvery, "rotate-every", s.RotateEvery, "rotate the app's client secret during every n-th cycle (0: never)")
	fs.IntVar(&s.SealEvery, "seal-every", s.SealEvery, "seal Vault during every n-th cycle (0: never)")
	fs.IntVar(&s.VaultEvery, "vault-every", s.VaultEvery, "restart Vault during every n-th cycle (0: never)")
	fs.IntVar(&s.PGEvery, "pg-every", s.PGEvery, "restart PostgreSQL during every n-th cycle (0: never)")
	fs.IntVar(&s.LoadRequests, "load-requests", s.LoadRequests, "API load run: requests (0: none)")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", s.DrainTimeout, "a cycle fails when its queue is not drained by then")
	fs.IntVar(&s.LoadConcurrency, "load-concurrency", 16, "API load run: requests in flight")
	fs.DurationVar(&s.LoadVaultDelay, "load-vault-delay", 20*time.Millisecond, "API load run: Vault answers this much later")
	fs.IntVar(&s.Kills, "kills", s.Kills, "real kills (SIGKILL) of the polltenant bootstrap under aws-lambda-rie")
	fs.IntVar(&s.Freezes, "freezes", s.Freezes, "real freezes (SIGSTOP past the timeout, another container takes over)")
	fs.IntVar(&s.KillTenants, "kill-tenants", s.KillTenants, "tenants of the real-kill phase")
	fs.BoolVar(&s.Channels, "channels", s.Channels, "the push and mail channels under chaos")
	fs.IntVar(&s.MailKills, "mail-kills", s.MailKills, "real kills (SIGKILL) of the inboundmail bootstrap under aws-lambda-rie")
	fs.IntVar(&s.NotifyKills, "notify-kills", s.NotifyKills, "real kills (SIGKILL) of the ordernotify bootstrap under aws-lambda-rie")
	fs.IntVar(&s.ReplyKills, "reply-kills", s.ReplyKills, "real kills (SIGKILL) of the replysender bootstrap under aws-lambda-rie")
	fs.IntVar(&s.SESEventKills, "ses-event-kills", s.SESEventKills, "real kills (SIGKILL) of the sesevents bootstrap under aws-lambda-rie")
	fs.StringVar(&s.MarkdownPath, "md", s.MarkdownPath, "RELIABILITY.md to update (this setting's block)")
	fs.StringVar(&s.JSONPath, "json", s.JSONPath, "results JSON to write")
}
