// Package migrations holds the database schema as ordered SQL files.
//
// Files are named NNNN_description.sql and applied in lexical order by
// shared/migrate (the `cmd/migrate` command, `make migrate`). Tables keep the
// seed's Prisma names: quoted PascalCase tables, camelCase columns, text ids.
package migrations

import "embed"

// FS holds every *.sql migration.
//
//go:embed *.sql
var FS embed.FS
