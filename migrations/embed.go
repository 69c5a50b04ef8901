// Package migrations holds ecogrid's schema as numbered plain-SQL goose
// migrations, embedded into every binary that can migrate.
//
// Numbering: 00001-00009 platform, 00010-00019 grid, 00020-00029 ledger,
// 00030-00039 people and auth, 00040-00049 field, 00050-00059 cases.
// Each bounded context owns its schema and only its own files.
package migrations

import "embed"

// FS is the embedded migration directory.
//
//go:embed *.sql
var FS embed.FS
