package migrations_test

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/migrations"
)

// Every object the migrations create, alter, drop or index is the
// connector's own, in keybuzz_amazon, and none is named like one of
// KeyBuzz's tables (tools/prisma/schema.prisma): a statement that reached
// KeyBuzz's table would fail on KeyBuzz's database or be undone by its next
// `prisma db push`, and a connector table named like KeyBuzz's is one
// unqualified reference away from it. The database test
// (TestMigrationsLeaveKeybuzzSchemaAlone) proves the same of what runs;
// this one holds the text, comments aside.
func TestMigrationsNameOnlyTheConnectorsObjects(t *testing.T) {
	prisma, err := os.ReadFile("../tools/prisma/schema.prisma")
	if err != nil {
		t.Fatal(err)
	}
	keybuzz := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^model (\w+)|@@map\("([^"]+)"\)`).FindAllStringSubmatch(string(prisma), -1) {
		keybuzz[strings.ToLower(m[1]+m[2])] = true
	}
	if len(keybuzz) < 30 {
		t.Fatalf("only %d KeyBuzz tables read from schema.prisma", len(keybuzz))
	}
	target := regexp.MustCompile(`(?i)\b(?:(?:CREATE|ALTER|DROP)\s+(?:UNIQUE\s+)?(?:TABLE|TYPE|INDEX|FUNCTION|SEQUENCE|VIEW|TRIGGER)(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|\bON|\bREFERENCES|\bINTO|\bUPDATE)\s+((?:[\w]+|"[^"]+")(?:\.(?:[\w]+|"[^"]+"))?)`)
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	checked := 0
	for _, f := range files {
		b, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		sql := regexp.MustCompile(`--[^\n]*`).ReplaceAllString(string(b), "")
		for _, m := range target.FindAllStringSubmatch(sql, -1) {
			name := m[1]
			head := strings.ToLower(strings.Fields(m[0])[0])
			if head == "create" && strings.Contains(strings.ToLower(m[0]), " index") {
				continue // an index's own name; its table is the ON that follows
			}
			if strings.EqualFold(name, "CONFLICT") || strings.EqualFold(name, "DELETE") || strings.EqualFold(name, "SET") {
				continue // ON CONFLICT, ON DELETE, UPDATE SET
			}
			checked++
			schema, object, ok := strings.Cut(name, ".")
			if !ok || strings.Trim(schema, `"`) != "keybuzz_amazon" {
				t.Errorf("%s: %q names %s, not an object of keybuzz_amazon", f, m[0], name)
				continue
			}
			if keybuzz[strings.ToLower(strings.Trim(object, `"`))] {
				t.Errorf("%s: %q: keybuzz_amazon.%s is named like KeyBuzz's own table", f, m[0], object)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d statements checked: the pattern no longer reads the migrations", checked)
	}
}
