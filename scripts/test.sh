#!/usr/bin/env bash
# The test suite: what CI runs, and what a developer runs before a commit.
# Installs PostGIS when missing (as root on Debian), then checks that the
# generated code is fresh, lints, vets and runs every test with the race
# detector against the real PostgreSQL/PostGIS (DATABASE_URL, default the
# local server) and real in-process NATS servers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_go
ensure_postgis
ensure_postgres_running
ensure_tools
export PATH="$PWD/bin:$PATH"

say "buf lint"
buf lint
say "checking that api/ matches proto/"
buf generate
if [ -n "$(git status --porcelain -- api)" ]; then
	git status --short -- api >&2
	die "api/ is stale: run 'make generate' and commit the result"
fi
say "gofmt"
unformatted="$(gofmt -l cmd internal migrations)"
[ -z "$unformatted" ] || die "not gofmt-ed: $unformatted"
say "go vet"
go vet ./...
log="${TMPDIR:-/tmp}/ecogrid-test.log"
say "go test -race (full log: $log)"
set +e
go test -race -count=1 -timeout 20m -v ./... >"$log" 2>&1
status=$?
set -e
# Package results and every failure, not the whole verbose log.
grep -E '^(ok|FAIL|panic:|--- FAIL)|^\s+--- FAIL|_test\.go:[0-9]+:' "$log" | grep -v 'no test files' || true
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
	tail -40 "$log"
	failed=1
fi
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
