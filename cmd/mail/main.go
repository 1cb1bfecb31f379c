// Command mail delivers a real .eml file to a tenant's inbound address
// through the local SMTP receiver that plays SES (`make mail FILE=… TENANT=…`):
// the mail then takes the path a relayed buyer message takes on AWS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func main() {
	file := flag.String("file", "", "the .eml file to deliver")
	tenant := flag.String("tenant", "", "the tenant whose inbound address receives it")
	country := flag.String("country", "", "which of the tenant's addresses (FR, DE…); default the primary marketplace's")
	from := flag.String("from", "bounce@amazonses.com", "envelope sender (MAIL FROM)")
	flag.Parse()
	if err := run(*file, *tenant, *country, *from); err != nil {
		fmt.Fprintln(os.Stderr, "mail:", err)
		os.Exit(1)
	}
}

func run(file, tenant, country, from string) error {
	if file == "" || tenant == "" {
		return errors.New("usage: mail -file <path.eml> -tenant <id> [-country XX]")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	addr := os.Getenv("INBOUND_SMTP_ADDR")
	if addr == "" {
		return errors.New("INBOUND_SMTP_ADDR is not set: run through `make mail` (it reads .local/dev.env of `make dev`)")
	}
	ctx := context.Background()
	pool, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := postgres.New(pool)
	addrs, err := store.InboundAddresses(ctx, tenant)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("tenant %s has no inbound address: connect it first (the addresses come with CONNECTED)", tenant)
	}
	if country == "" {
		if c, ok, err := store.ConnectionByTenant(ctx, tenant); err == nil && ok {
			if mp, err := amazon.LookupMarketplace(c.MarketplaceID); err == nil {
				country = mp.CountryCode
			}
		}
	}
	to := addrs[0].EmailAddress
	for _, a := range addrs {
		if strings.EqualFold(a.Country, country) {
			to = a.EmailAddress
		}
	}
	if err := smtpses.Send(addr, from, []string{to}, raw); err != nil {
		return fmt.Errorf("SMTP to %s at %s: %w", to, addr, err)
	}
	fmt.Printf("delivered %s (%d bytes) to %s through %s\n", file, len(raw), to, addr)
	return nil
}
