// Package wirereply builds replysender's flow for its function and the
// local server. It is apart from package wire because the reply sender
// links the MIME writer and the SESv2 client, which no other function may.
package wirereply

import (
	"log/slog"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replysender"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
)

// ReplySender is replysender's flow: SES through ses (sessender.NewClient)
// in the configuration set SES_CONFIGURATION_SET, at SES_MAX_SEND_RATE.
func ReplySender(cfg config.Config, store *postgres.Store, ses sessender.API, log *slog.Logger) *replysender.Sender {
	burst := max(1, int(cfg.SESMaxSendRate))
	return replysender.NewSender(store, sessender.New(ses, cfg.SESConfigurationSet),
		replysender.SenderConfig{Rate: cfg.SESMaxSendRate, Burst: burst, Log: log})
}
