// Command migrateapp moves tenants to another SP-API application (the
// seed's "re-OAuth all tenants", gradually): a refresh token works only
// with the app that issued it, so a connection on the old app keeps polling
// with the old app's credentials until its seller consents again. The dry
// run (the default) lists the connections still on another app than -to;
// -apply marks them NEEDS_REAUTH with reauthReason app_migration, -batch at
// a time, at most -limit in all, so the frontend can ask each seller to
// reconnect (a reconnect moves the connection to the current app).
//
//	make migrate-app                    dry run to AMAZON_SPAPI_APP_SOURCE
//	make migrate-app ARGS="-apply -batch 100 -limit 1000"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func main() {
	opts := options{}
	dbURL := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	to := flag.String("to", envOr("AMAZON_SPAPI_APP_SOURCE", "keybuzz"), "the application to move to: external_test or keybuzz")
	flag.BoolVar(&opts.apply, "apply", false, "mark the connections NEEDS_REAUTH (app_migration); without it, only list them")
	flag.IntVar(&opts.batch, "batch", 100, "connections per statement")
	flag.IntVar(&opts.limit, "limit", 0, "at most this many connections in all (0: every one)")
	flag.Parse()
	opts.to = marketplace.AppSource(*to)
	if *dbURL == "" {
		fmt.Fprintln(os.Stderr, "migrateapp: DATABASE_URL or -database-url is required")
		os.Exit(2)
	}
	pool, err := pgxpool.New(context.Background(), *dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrateapp: open database:", err)
		os.Exit(1)
	}
	defer pool.Close()
	if _, err := run(context.Background(), postgres.New(pool), opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrateapp:", err)
		os.Exit(1)
	}
}

type options struct {
	to    marketplace.AppSource
	apply bool
	batch int
	limit int
}

// store is what the command needs of postgres.Store.
type store interface {
	OldAppConnections(ctx context.Context, target marketplace.AppSource, after string, limit int) ([]postgres.OldAppConnection, error)
	MarkAppMigration(ctx context.Context, target marketplace.AppSource, limit int) ([]postgres.OldAppConnection, error)
}

// run lists (dry run) or marks (apply) the connections on another app than
// opts.to, batch by batch, printing one line each, and returns how many.
func run(ctx context.Context, s store, opts options, out io.Writer) (int, error) {
	if !opts.to.Valid() {
		return 0, fmt.Errorf("-to %q: want external_test or keybuzz", opts.to)
	}
	if opts.batch <= 0 {
		return 0, fmt.Errorf("-batch %d: want a positive number", opts.batch)
	}
	verb := "would mark"
	if opts.apply {
		verb = "marked"
	}
	total, after := 0, ""
	for opts.limit <= 0 || total < opts.limit {
		n := opts.batch
		if opts.limit > 0 {
			n = min(n, opts.limit-total)
		}
		var rows []postgres.OldAppConnection
		var err error
		if opts.apply {
			rows, err = s.MarkAppMigration(ctx, opts.to, n)
		} else {
			rows, err = s.OldAppConnections(ctx, opts.to, after, n)
		}
		if err != nil {
			return total, err
		}
		for _, r := range rows {
			fmt.Fprintf(out, "%s tenant=%s connection=%s app=%s status=%s seller=%s\n", verb, r.TenantID, r.ConnectionID, r.AppSource, r.Status, r.SellingPartnerID)
			after = r.ConnectionID
		}
		total += len(rows)
		if len(rows) < n {
			break
		}
	}
	if opts.apply {
		fmt.Fprintf(out, "%d connection(s) marked NEEDS_REAUTH (app_migration) to move to %s\n", total, opts.to)
	} else {
		fmt.Fprintf(out, "dry run: %d connection(s) on another app than %s; run with -apply to mark them NEEDS_REAUTH (app_migration)\n", total, opts.to)
	}
	return total, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
