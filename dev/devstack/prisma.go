package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// PrismaDir holds KeyBuzz's schema as its backend publishes it
// (schema.prisma), the pinned Prisma 7 packages (package.json and
// package-lock.json), the configuration and the schema engine shim that
// lets the CLI run offline (schema-engine.mjs). See tools/prisma/README.md.
const PrismaDir = "tools/prisma"

// prismaVersion is the version pinned in tools/prisma/package.json.
const prismaVersion = "7.10.1"

var prismaInstall sync.Mutex

// EnsurePrisma installs tools/prisma's pinned packages with `npm ci
// --ignore-scripts` (no engine download: the client is Rust-free and the
// schema engine is the WebAssembly build the prisma package ships) unless
// they are installed from the current lockfile.
func EnsurePrisma(ctx context.Context, repo string, progress func(string)) error {
	prismaInstall.Lock()
	defer prismaInstall.Unlock()
	dir := filepath.Join(repo, PrismaDir)
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not on PATH (Node 20+ is needed for Prisma)")
	}
	var installed struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "prisma", "package.json"))
	if err == nil && json.Unmarshal(b, &installed) == nil && installed.Version == prismaVersion {
		lock, err1 := os.Stat(filepath.Join(dir, "package-lock.json"))
		inst, err2 := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
		if err1 == nil && err2 == nil && !inst.ModTime().Before(lock.ModTime()) {
			progress("prisma " + installed.Version + ": already installed")
			return nil
		}
	}
	return runIn(ctx, repo, progress, "npm", "ci", "--prefix", PrismaDir, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
}

// Prisma runs the pinned Prisma CLI in tools/prisma against databaseURL
// (`prisma db push`, `prisma migrate diff …`) and returns its standard
// output. The schema engine is schema-engine.mjs (PRISMA_SCHEMA_ENGINE_BINARY).
func Prisma(ctx context.Context, repo, databaseURL string, args ...string) (string, error) {
	dir := filepath.Join(repo, PrismaDir)
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, "node_modules", "prisma", "build", "index.js")}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+databaseURL,
		"PRISMA_SCHEMA_ENGINE_BINARY="+filepath.Join(dir, "schema-engine.mjs"),
		"PRISMA_HIDE_UPDATE_MESSAGE=1",
		"CHECKPOINT_DISABLE=1",
		"NO_COLOR=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("prisma %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// PushKeybuzzSchema builds KeyBuzz's `public` schema in databaseURL the way
// KeyBuzz's backend does, with `prisma db push` of tools/prisma/schema.prisma
// (a no-op when it is already there). It installs tools/prisma first when
// needed.
func PushKeybuzzSchema(ctx context.Context, repo, databaseURL string) error {
	if err := EnsurePrisma(ctx, repo, func(string) {}); err != nil {
		return err
	}
	// --accept-data-loss: a development database made before the connector
	// kept its state in its own schema has the connector's old tables in
	// public; KeyBuzz's push drops them, as it would.
	_, err := Prisma(ctx, repo, databaseURL, "db", "push", "--config", "prisma.config.mjs", "--accept-data-loss")
	return err
}

// KeybuzzDrift is Prisma's drift check of `public`: the migration that would
// bring the database to KeyBuzz's schema (`prisma migrate diff
// --from-config-datasource --to-schema schema.prisma --script`), empty when
// `public` is exactly what KeyBuzz's schema makes.
func KeybuzzDrift(ctx context.Context, repo, databaseURL string) (string, error) {
	out, err := Prisma(ctx, repo, databaseURL, "migrate", "diff", "--config", "prisma.config.mjs",
		"--from-config-datasource", "--to-schema", "schema.prisma", "--script")
	if err != nil {
		return "", err
	}
	// An empty diff prints Prisma's "This is an empty migration." comment.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if t := strings.TrimSpace(l); t != "" && t != "-- This is an empty migration." {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// KeybuzzSchemaHash identifies KeyBuzz's schema and the Prisma that builds
// it, for caches of databases built from them.
func KeybuzzSchemaHash(repo string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"schema.prisma", "package-lock.json", "schema-engine.mjs", "prisma.config.mjs"} {
		b, err := os.ReadFile(filepath.Join(repo, PrismaDir, f))
		if err != nil {
			return "", err
		}
		h.Write([]byte(f))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// TenantSignupSQL (the fixtures of development and test databases) plays KeyBuzz's sign-up in development and test databases
// (never in the connector's migrations): KeyBuzz creates a "Tenant" row when
// a tenant signs up, and its Ticket and inbound_* tables reference it, so a
// ticket for a tenant id that only a test or the local page made up would
// fail its foreign key. A trigger in the schema keybuzz_dev creates the
// tenant (slug and name its id) the first time a row names it. It also
// defines keybuzz_dev.connection, the tests' way to set up a connection.
const TenantSignupSQL = `
CREATE SCHEMA IF NOT EXISTS keybuzz_dev;
CREATE OR REPLACE FUNCTION keybuzz_dev.sign_up_tenant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO public."Tenant" ("id", "slug", "name", "updatedAt")
    VALUES (NEW."tenantId", NEW."tenantId", NEW."tenantId", now() AT TIME ZONE 'UTC')
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER keybuzz_dev_sign_up BEFORE INSERT ON public."Ticket"
    FOR EACH ROW EXECUTE FUNCTION keybuzz_dev.sign_up_tenant();
CREATE OR REPLACE TRIGGER keybuzz_dev_sign_up BEFORE INSERT ON public."inbound_connections"
    FOR EACH ROW EXECUTE FUNCTION keybuzz_dev.sign_up_tenant();
CREATE OR REPLACE TRIGGER keybuzz_dev_sign_up BEFORE INSERT ON public."inbound_addresses"
    FOR EACH ROW EXECUTE FUNCTION keybuzz_dev.sign_up_tenant();

-- A connection as tests set one up: KeyBuzz's row and the connector's, with
-- the connector's status mapped as shared/postgres writes it
-- (NEEDS_REAUTH: KeyBuzz's ERROR with the reason "revoked"; the wave-1
-- DISCONNECTED: DISABLED). Returns the connection's id.
CREATE OR REPLACE FUNCTION keybuzz_dev.connection(
    tenant text, status text DEFAULT 'CONNECTED', region text DEFAULT 'EU', marketplace_id text DEFAULT NULL,
    seller text DEFAULT NULL, vault_path text DEFAULT NULL, connected_at timestamptz DEFAULT NULL,
    next_poll_at timestamptz DEFAULT now(), app_source text DEFAULT 'external_test', authorized_at timestamptz DEFAULT NULL,
    display_name text DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    id text := keybuzz_amazon.cuid();
BEGIN
    INSERT INTO public."MarketplaceConnection" ("id", "tenantId", "type", "status", "displayName", "region", "marketplaceId", "vaultPath",
        "createdAt", "updatedAt")
    VALUES (id, tenant, 'AMAZON',
            (CASE status WHEN 'NEEDS_REAUTH' THEN 'ERROR' WHEN 'DISCONNECTED' THEN 'DISABLED' ELSE status END)::"MarketplaceConnectionStatus",
            display_name, upper(region), marketplace_id, vault_path, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');
    INSERT INTO keybuzz_amazon."Connection" ("connectionId", "tenantId", "sellingPartnerId", "sellerRegion", "appSource",
        "connectedAt", "authorizedAt", "reauthReason", "pollable", "nextPollAt")
    VALUES (id, tenant, seller, upper(region), app_source, connected_at, authorized_at,
            CASE WHEN status = 'NEEDS_REAUTH' THEN 'revoked' END, status = 'CONNECTED', next_poll_at);
    RETURN id;
END $$;
`

// KeybuzzDatabase makes databaseURL KeyBuzz's database as a local stack or
// a test has it: `public` built by Prisma from KeyBuzz's schema, then, with
// signUp, KeyBuzz's sign-up played for any tenant id (TenantSignupSQL).
func KeybuzzDatabase(ctx context.Context, repo, databaseURL string, signUp bool) error {
	if err := PushKeybuzzSchema(ctx, repo, databaseURL); err != nil {
		return err
	}
	if !signUp {
		return nil
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, TenantSignupSQL); err != nil {
		return fmt.Errorf("tenant sign-up fixture: %w", err)
	}
	return nil
}

// GenerateKeybuzzClient generates KeyBuzz's Prisma client from
// tools/prisma/schema.prisma (`prisma generate`, into tools/prisma's
// node_modules) unless the current schema's client is there; concurrent
// callers (test binaries) wait for one another on a file lock.
func GenerateKeybuzzClient(ctx context.Context, repo string) error {
	if err := EnsurePrisma(ctx, repo, func(string) {}); err != nil {
		return err
	}
	dir := filepath.Join(repo, PrismaDir)
	lock, err := os.OpenFile(filepath.Join(dir, "node_modules", ".keybuzz-generate.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("generate lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("generate lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	h, err := KeybuzzSchemaHash(repo)
	if err != nil {
		return err
	}
	marker := filepath.Join(dir, "node_modules", ".prisma", "client", ".keybuzz-schema")
	if b, err := os.ReadFile(marker); err == nil && string(b) == h {
		return nil
	}
	// generate reads no database; the URL only satisfies the configuration.
	if _, err := Prisma(ctx, repo, "postgres://generate.invalid/none", "generate", "--config", "prisma.config.mjs"); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(h), 0o644)
}

// KeybuzzClient runs tools/prisma/keybuzz-client.mjs (KeyBuzz's generated
// Prisma client through @prisma/adapter-pg) with command on databaseURL,
// stdin as its input, and returns its output (a JSON line).
func KeybuzzClient(ctx context.Context, repo, databaseURL, command string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "node", filepath.Join(repo, PrismaDir, "keybuzz-client.mjs"), command)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("keybuzz-client %s: %w: %s", command, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
