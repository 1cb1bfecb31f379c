package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
)

// Database and role the stack creates for the connector.
const (
	dbName = "keybuzz"
	dbRole = "keybuzz"
)

// postgresBinDir finds Debian's server binaries (initdb and postgres are not
// on PATH there), preferring the newest installed major version.
func postgresBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found (run `make setup`, or set DATABASE_URL to use an existing server)")
}

// pgCredential is the user that runs initdb and postgres: they refuse to run
// as root, so as root we drop to the `postgres` system user.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres system user (run `make setup`): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(root string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
}

// startPostgres runs a private cluster under dir (initialised on first use)
// listening on 127.0.0.1:port, and returns its DATABASE_URL once the keybuzz
// role and database exist.
func (s *Stack) startPostgres(ctx context.Context, dir string, port int) (string, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return "", err
	}
	cred, err := pgCredential()
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := initCluster(ctx, bin, dir, data, cred); err != nil {
			return "", err
		}
	} else if err := chownTree(data, cred); err != nil {
		return "", fmt.Errorf("chown %s: %w", data, err)
	}

	args := []string{"-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", data,
		"-c", "max_connections=200", "-c", "logging_collector=off"}
	if s.profile.FastDisk {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = data
	// SIGINT is PostgreSQL's "fast shutdown"; SIGTERM would wait for clients.
	p, _, err := s.startService(ctx, "postgres", cmd, syscall.SIGINT, "")
	if err != nil {
		return "", err
	}

	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	var conn *pgx.Conn
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err = pgx.Connect(cctx, admin)
		cancel()
		if err == nil {
			break
		}
		if p.exited() {
			return "", fmt.Errorf("postgres exited during start-up; last output:\n%s", p.tail())
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("postgres not ready: %w (last error: %v); last output:\n%s", context.Cause(ctx), err, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer conn.Close(context.Background())
	// The role is a superuser with CREATEDB: tests create a database each.
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+dbRole+`') THEN
    CREATE ROLE `+dbRole+` LOGIN SUPERUSER CREATEDB;
  END IF;
END $$`); err != nil {
		return "", fmt.Errorf("create role %s: %w", dbRole, err)
	}
	// The connector's server-side limits are its role's (docs/deploy.md: the
	// deployment sets them on the connector's own role, never through a
	// migration), so that a frozen or killed Lambda never holds locks long.
	if _, err := conn.Exec(ctx, `ALTER ROLE `+dbRole+` SET idle_in_transaction_session_timeout = '15s';
ALTER ROLE `+dbRole+` SET lock_timeout = '5s';
ALTER ROLE `+dbRole+` SET statement_timeout = '20s'`); err != nil {
		return "", fmt.Errorf("role %s limits: %w", dbRole, err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, dbName).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+dbName+` OWNER `+dbRole); err != nil {
			return "", fmt.Errorf("create database %s: %w", dbName, err)
		}
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", dbRole, port, dbName), nil
}

// initCluster creates the data directory. initdb takes seconds, so a fresh
// cluster is kept as a template in the cache and copied (a fraction of a
// second) for every later stack.
func initCluster(ctx context.Context, bin, dir, data string, cred *syscall.Credential) error {
	os.RemoveAll(data)
	initArgs := []string{"-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"}
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(bin + "\x00" + strings.Join(initArgs, " ")))
	template := filepath.Join(cache, "pg-template-"+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(filepath.Join(template, "PG_VERSION")); err == nil {
		if out, err := exec.CommandContext(ctx, "cp", "-a", template, data).CombinedOutput(); err != nil {
			return fmt.Errorf("copy cluster template: %w\n%s", err, out)
		}
		return chownTree(data, cred)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := chownTree(data, cred); err != nil {
		return fmt.Errorf("chown %s: %w", data, err)
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), append([]string{"-D", data}, initArgs...)...)
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Save the template (initdb itself cannot write there: as root the
	// cache is under /root, closed to the postgres user).
	tmp := template + ".tmp-" + devrand.Hex(4)
	if err := os.MkdirAll(cache, 0o755); err == nil {
		if err := exec.CommandContext(ctx, "cp", "-a", data, tmp).Run(); err == nil {
			if os.Rename(tmp, template) != nil {
				os.RemoveAll(tmp) // another stack saved it first
			}
		} else {
			os.RemoveAll(tmp)
		}
	}
	return nil
}

// WithDatabase is the URL of database name on the server of the PostgreSQL
// URL base (user, host and options kept); base itself when it is no URL.
func WithDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

// resetWave2Database drops and recreates the stack's own database when it
// still has the layout of the connector's wave 2 (its tables and enum
// labels in KeyBuzz's public, recorded in public."_KeybuzzMigration"),
// which Prisma cannot push KeyBuzz's schema over (an enum label in use by
// an index). Only the private cluster's database is ever reset; it reports
// whether it was.
func resetWave2Database(ctx context.Context, databaseURL string) (bool, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	var old bool
	err = conn.QueryRow(ctx, `SELECT to_regclass('public."_KeybuzzMigration"') IS NOT NULL`).Scan(&old)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil || !old {
		return false, err
	}
	admin, err := pgx.Connect(ctx, WithDatabase(databaseURL, "postgres"))
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, `DROP DATABASE `+dbName+` WITH (FORCE)`); err != nil {
		return false, fmt.Errorf("drop the wave-2 database: %w", err)
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+dbName+` OWNER `+dbRole); err != nil {
		return false, fmt.Errorf("recreate the database: %w", err)
	}
	return true, nil
}
