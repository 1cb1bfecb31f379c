// Package migrate applies the SQL files of package migrations, in order, once
// each, recording what ran in keybuzz_amazon."_Migration". It touches only
// the connector's schema, keybuzz_amazon (created when missing); KeyBuzz's
// `public` is Prisma's.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/migrations"
)

// lockKey serialises concurrent runs (two deploys, two test binaries).
const lockKey = 0x6b62_616d_7a6e // "kbamzn"

// Apply connects to databaseURL and applies every pending migration.
func Apply(ctx context.Context, databaseURL string) ([]string, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return ApplyConn(ctx, conn, migrations.FS)
}

// ApplyConn applies the pending *.sql files of files on conn, each in its own
// transaction, and returns the names it applied.
func ApplyConn(ctx context.Context, conn *pgx.Conn, files fs.FS) ([]string, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: list: %w", err)
	}
	sort.Strings(names)

	// The connector role's server-side limits (docs/deploy.md) are for the
	// Lambdas' short statements; a schema change may wait for locks and run
	// longer.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0`); err != nil {
		return nil, fmt.Errorf("migrate: session limits: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey) //nolint:errcheck

	// The schema is created only when missing: a deployment may create it
	// beforehand for the connector's role (which then needs no CREATE on
	// the database).
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'keybuzz_amazon')`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: look up schema: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA keybuzz_amazon`); err != nil {
			return nil, fmt.Errorf("migrate: create schema keybuzz_amazon: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS keybuzz_amazon."_Migration" (
		"name" text PRIMARY KEY, "appliedAt" timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: bookkeeping table: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT "name" FROM keybuzz_amazon."_Migration"`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied: %w", err)
	}
	applied := make(map[string]bool, len(done))
	for _, n := range done {
		applied[n] = true
	}

	var ran []string
	for _, name := range names {
		if applied[name] {
			continue
		}
		sql, err := fs.ReadFile(files, name)
		if err != nil {
			return ran, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO keybuzz_amazon."_Migration" ("name") VALUES ($1)`, name)
			return err
		})
		if err != nil {
			return ran, fmt.Errorf("migrate: apply %s: %w", strings.TrimSuffix(name, ".sql"), err)
		}
		ran = append(ran, name)
	}
	return ran, nil
}
