package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// owners maps a schema to the one package under internal/ that may name
// it in SQL (the context's package and its sub-packages). Schemas a
// migration creates and that are missing here are owned by the package
// of the same name. Packages that own no schema (gridd, cased, devstack,
// faults, fieldsim …) name none: they go through the owners' Go API.
var owners = map[string]string{
	"grid": "grid", "people": "people", "auth": "auth", "field": "field",
	"cases": "cases", "ledger": "ledger", "outbox": "outbox",
	// contexts being added beside this test own their same-named schema
	"waters": "waters", "zones": "zones", "monitoring": "monitoring",
	"departments": "departments", "audit": "audit", "accounts": "accounts",
	"gis": "gis",
}

// knownViolations are the crossings that exist today and are being removed
// by the helpers reshaping those packages (issue 12). Each entry is
// "<file>: <schema>.<table>". The lead empties this list at merge; a new
// entry needs a reason, not a shrug.
var knownViolations = map[string]bool{
	// people reads grid's nodes instead of asking grid (grid.Store).
	"internal/people/nodes.go: grid.nodes": true,
	// auth joins people's assignments to build the caller's scope.
	"internal/auth/session.go: people.assignments": true,
	// cases' reconciler reads gridd's outbox; outbox/reconcile.go will serve it.
	"internal/cases/background.go: outbox.events": true,
	// the dev stack and fault harness count nodes directly.
	"internal/devstack/demo.go: grid.nodes": true,
	"internal/faults/stack.go: grid.nodes":  true,
}

// outsideReaders check PostgreSQL from the outside by design and are
// exempt: fieldsim reconciles every acknowledgement a client got against
// the tables themselves, and must not trust the Go API it is checking.
// The gis package's tests seed the tables behind the GIS views (its views
// are a published cross-context projection, defined in a migration).
var outsideReaders = map[string]bool{"fieldsim": true, "gis": true}

// fileExtensions after a schema-like name are file names (ledger.key,
// auth.pem), not tables.
var fileExtensions = map[string]bool{"key": true, "pub": true, "pem": true, "json": true, "geojson": true, "sql": true, "go": true, "txt": true, "csv": true, "log": true}

var createSchema = regexp.MustCompile(`(?i)CREATE SCHEMA(?: IF NOT EXISTS)? ([a-z_][a-z0-9_]*)`)

// schemas is every schema the migrations create plus those of owners.
func schemas(t *testing.T, root string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(owners))
	for s, o := range owners {
		out[s] = o
	}
	files, err := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations under %s: %v", root, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range createSchema.FindAllStringSubmatch(string(b), -1) {
			s := strings.ToLower(m[1])
			if _, ok := out[s]; !ok {
				out[s] = s
			}
		}
	}
	return out
}

// A reference is schema.table where a SQL identifier may start: not after
// a letter, digit, '_', '.', or '/' (so ecogrid.v1.cases.x or a path is
// not one).
func referenceRegexp(schemas map[string]string) *regexp.Regexp {
	names := make([]string, 0, len(schemas))
	for s := range schemas {
		names = append(names, regexp.QuoteMeta(s))
	}
	sort.Strings(names)
	return regexp.MustCompile(`(?:^|[^A-Za-z0-9_./])(` + strings.Join(names, "|") + `)\.([a-z_][a-z0-9_]*)`)
}

// TestPackagesNameOnlyTheirOwnSchemas scans the string literals of every
// non-test Go file under internal/ and cmd/ for schema.table references
// and fails on any that names a schema the package does not own.
func TestPackagesNameOnlyTheirOwnSchemas(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	owned := schemas(t, root)
	ref := referenceRegexp(owned)
	seen := map[string]bool{}
	var bad []string
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			pkg := contextOf(rel)
			if outsideReaders[pkg] || testSupport(rel) {
				return nil
			}
			for _, r := range references(t, path, ref) {
				if owned[r.schema] == pkg || fileExtensions[r.table] {
					continue
				}
				key := rel + ": " + r.schema + "." + r.table
				seen[key] = true
				if !knownViolations[key] {
					bad = append(bad, key+" (line "+strconv.Itoa(r.line)+"; "+r.schema+" belongs to internal/"+owned[r.schema]+")")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("%s: use the owner's Go API, not its tables", b)
	}
	var fixed []string
	for k := range knownViolations {
		if !seen[k] {
			fixed = append(fixed, k)
		}
	}
	sort.Strings(fixed)
	for _, k := range fixed {
		t.Errorf("known violation %q is gone: remove it from knownViolations", k)
	}
}

// contextOf is the package a file counts for: the first directory under
// internal/ (internal/field/photo is field), or cmd/<binary>.
func contextOf(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) >= 3 && parts[0] == "internal" {
		return parts[1]
	}
	if len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return rel
}

// testSupport is a package that exists only for tests (dbtest, natstest,
// peopletest): exempt like _test.go files, it builds fixtures directly.
func testSupport(rel string) bool {
	for _, dir := range strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/") {
		if strings.HasSuffix(dir, "test") && dir != "archtest" {
			return true
		}
	}
	return false
}

type reference struct {
	schema, table string
	line          int
}

func references(t *testing.T, path string, ref *regexp.Regexp) []reference {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	var out []reference
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		for _, m := range ref.FindAllStringSubmatch(s, -1) {
			out = append(out, reference{schema: m[1], table: m[2], line: fset.Position(lit.Pos()).Line})
		}
		return true
	})
	return out
}

// The scanner itself: it sees SQL references and not look-alikes.
func TestReferenceScanner(t *testing.T) {
	ref := referenceRegexp(map[string]string{"grid": "grid", "cases": "cases", "outbox": "outbox"})
	for s, want := range map[string]string{
		"SELECT id FROM grid.nodes WHERE x": "grid.nodes",
		"JOIN outbox.events e ON":           "outbox.events",
		"(cases.inbox)":                     "cases.inbox",
		"ecogrid.v1.cases.130123.opened":    "",
		"/ecogrid.v1.GridService/Locate":    "",
		"internal/grid.go":                  "",
		"see grid.Store":                    "",
		"mygrid.nodes":                      "",
	} {
		got := ""
		if m := ref.FindStringSubmatch(s); m != nil {
			got = m[1] + "." + m[2]
		}
		if got != want {
			t.Errorf("%q: found %q, want %q", s, got, want)
		}
	}
}
