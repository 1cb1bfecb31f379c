package migrations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// The database contract with the rest of KeyBuzz: the seed's three models
// and KeyBuzz's ticket and inbound mail models, transcribed once into
// testdata/contract/models.json (its README says from where), held against
// what the database's catalog says after the migrations.

type contract struct {
	Enums  map[string]contractEnum `json:"enums"`
	Models []contractModel         `json:"models"`
}

type contractEnum struct {
	Labels    []string `json:"labels"`    // Prisma's values
	Additions []string `json:"additions"` // the connector's, which KeyBuzz's schema must carry
}

type contractModel struct {
	Model   string           `json:"model"`
	Table   string           `json:"table"`
	Columns []contractColumn `json:"columns"`
	Uniques [][]string       `json:"uniques"`
}

type contractColumn struct {
	Name      string `json:"name"`
	Type      string `json:"type"` // String, DateTime, Json, Int, Boolean or an enum
	DB        string `json:"db"`   // a native type: VarChar(255)
	Optional  bool   `json:"optional"`
	ID        bool   `json:"id"`
	DBDefault bool   `json:"dbDefault"`
}

func loadContract(t *testing.T) contract {
	t.Helper()
	b, err := os.ReadFile("../testdata/contract/models.json")
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("models.json: %v", err)
	}
	if len(c.Models) == 0 {
		t.Fatal("models.json names no model")
	}
	return c
}

// pgType is the catalog's format_type of a Prisma scalar as Prisma's
// PostgreSQL migrations create it.
func pgType(c contractColumn) string {
	switch {
	case c.DB == "VarChar(255)":
		return "character varying(255)"
	case c.DB != "":
		return "unsupported native type " + c.DB
	}
	switch c.Type {
	case "String":
		return "text"
	case "DateTime":
		return "timestamp(3) without time zone"
	case "Json":
		return "jsonb"
	case "Int":
		return "integer"
	case "Boolean":
		return "boolean"
	}
	return ""
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type dbColumn struct {
	format, typname, typtype string
	notNull, hasDefault      bool
}

// checkSchema lists every way the database departs from the contract: a
// table, column, enum label or unique missing (a rename is a missing column),
// a column of another type, a contract column whose optionality differs, a
// column of the connector's that KeyBuzz's writes would have to set (NOT
// NULL without a default), a default KeyBuzz relies on missing, an enum
// label neither Prisma's nor a declared addition.
func checkSchema(ctx context.Context, q querier, c contract) ([]string, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, m := range c.Models {
		var exists bool
		if err := q.QueryRow(ctx, `SELECT to_regclass(quote_ident($1)) IS NOT NULL`, m.Table).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			bad("%s: table %q missing", m.Model, m.Table)
			continue
		}
		cols, err := tableColumns(ctx, q, m.Table)
		if err != nil {
			return nil, err
		}
		known := map[string]bool{}
		for _, want := range m.Columns {
			known[want.Name] = true
			got, ok := cols[want.Name]
			where := m.Table + "." + want.Name
			if !ok {
				bad("%s: missing (renamed or dropped)", where)
				continue
			}
			if _, isEnum := c.Enums[want.Type]; isEnum {
				if got.typtype != "e" || got.typname != want.Type {
					bad("%s: type %s, want enum %q", where, got.format, want.Type)
				}
			} else if pt := pgType(want); got.format != pt {
				bad("%s: type %s, want %s (Prisma %s)", where, got.format, pt, want.Type)
			}
			switch {
			case want.Optional && got.notNull:
				bad("%s: required (NOT NULL), the model has it optional", where)
			case !want.Optional && !got.notNull:
				bad("%s: nullable, the model requires it", where)
			}
			if want.DBDefault && !got.hasDefault {
				bad("%s: no default, the model's @default is the database's", where)
			}
		}
		for name, got := range cols {
			if !known[name] && got.notNull && !got.hasDefault {
				bad("%s.%s: the connector's column is required (NOT NULL, no default): KeyBuzz's writes would fail", m.Table, name)
			}
		}
		uniques, primary, err := tableUniques(ctx, q, m.Table)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(primary, []string{"id"}) {
			bad("%s: primary key %v, want (id)", m.Table, primary)
		}
		for _, u := range m.Uniques {
			if !slices.ContainsFunc(uniques, func(g []string) bool { return slices.Equal(g, u) }) {
				bad("%s: unique (%s) missing", m.Table, strings.Join(u, ", "))
			}
		}
	}
	for name, e := range c.Enums {
		rows, err := q.Query(ctx, `SELECT e."enumlabel"::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
			WHERE t.typname = $1 AND t.typnamespace = current_schema()::regnamespace ORDER BY e.enumsortorder`, name)
		if err != nil {
			return nil, err
		}
		labels, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if len(labels) == 0 {
			bad("enum %q missing", name)
			continue
		}
		for _, l := range e.Labels {
			if !slices.Contains(labels, l) {
				bad("enum %s: label %s missing", name, l)
			}
		}
		for _, l := range labels {
			if !slices.Contains(e.Labels, l) && !slices.Contains(e.Additions, l) {
				bad("enum %s: label %s is neither Prisma's nor a declared addition", name, l)
			}
		}
	}
	slices.Sort(problems)
	return problems, nil
}

func tableColumns(ctx context.Context, q querier, table string) (map[string]dbColumn, error) {
	rows, err := q.Query(ctx, `
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, t.typtype::text, a.attnotnull, a.atthasdef
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]dbColumn{}
	for rows.Next() {
		var name string
		var c dbColumn
		if err := rows.Scan(&name, &c.format, &c.typname, &c.typtype, &c.notNull, &c.hasDefault); err != nil {
			return nil, err
		}
		cols[name] = c
	}
	return cols, rows.Err()
}

// tableUniques returns the column lists of the table's unique indexes (not
// partial, not on expressions) and of its primary key.
func tableUniques(ctx context.Context, q querier, table string) ([][]string, []string, error) {
	rows, err := q.Query(ctx, `
SELECT i.indisprimary, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary`, table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var uniques [][]string
	var primary []string
	for rows.Next() {
		var isPrimary bool
		var cols []string
		if err := rows.Scan(&isPrimary, &cols); err != nil {
			return nil, nil, err
		}
		uniques = append(uniques, cols)
		if isPrimary {
			primary = cols
		}
	}
	return uniques, primary, rows.Err()
}

// TestMigrationLanguagesMatchMarketplaces: the languages 0004 gives the
// messages stored before it are shared/amazon's, marketplace for marketplace.
func TestMigrationLanguagesMatchMarketplaces(t *testing.T) {
	b, err := os.ReadFile("0004_keybuzz_contract.sql")
	if err != nil {
		t.Fatal(err)
	}
	pairs := regexp.MustCompile(`WHEN '([A-Z0-9]+)' THEN '([a-z]{2})'`).FindAllStringSubmatch(string(b), -1)
	if len(pairs) < 20 {
		t.Fatalf("only %d marketplaces in the migration's language table", len(pairs))
	}
	for _, p := range pairs {
		if got := amazon.LanguageOf(p[1]); got != p[2] {
			t.Errorf("marketplace %s: the migration says %q, shared/amazon %q", p[1], p[2], got)
		}
	}
}
