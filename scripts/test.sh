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
ensure_test_packages
ensure_test_servers
export PATH="$PWD/bin:$PATH"

say "buf lint"
buf lint
say "checking that api/ matches proto/"
buf generate
buf build -o proto/descriptors.binpb
if [ -n "$(git status --porcelain -- api proto internal/gateway/apidoc)" ]; then
	git status --short -- api proto internal/gateway/apidoc >&2
	die "api/ is stale: run 'make generate' and commit the result"
fi
# --- web console (issue 20): OpenAPI lint, and web/dist (embedded by Go,
# committed so go build needs no Node) must be what its sources build.
ensure_console_tools
say "redocly lint of the OpenAPI document"
(cd web && npm run -s lint:openapi) || die "the OpenAPI document does not pass redocly lint"
say "checking that web/dist matches web/src"
(cd web && npm run -s build >/dev/null) || die "the console does not build: cd web && npm run build"
if [ -n "$(git status --porcelain -- web internal/gateway/apidoc)" ]; then
	git status --short -- web internal/gateway/apidoc >&2
	die "web/dist is stale: run 'cd web && npm run build' and commit the result"
fi
# The browser tests (internal/gateway) run with the rest, not skipped.
export ECOGRID_BROWSER_TESTS=1
# --- end of web console block

say "gofmt"
unformatted="$(gofmt -l cmd internal migrations)"
[ -z "$unformatted" ] || die "not gofmt-ed: $unformatted"
say "go vet"
go vet ./...
say "promtool: alert rules and their unit tests (deploy/prometheus)"
promtool check config deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/alerts.yml >/dev/null
# internal/devstack's test lints a real scrape of gridd's and cased's
# /metrics with `promtool check metrics`; here it may not skip that.
export ECOGRID_REQUIRE_PROMTOOL=1
promtool test rules deploy/prometheus/alerts_test.yml >/dev/null || promtool test rules deploy/prometheus/alerts_test.yml
say "fuzzing every target for ${FUZZTIME:-5s} (scripts/fuzz.sh)"
bash scripts/fuzz.sh
say "go test -race"
# gotestsum runs go test and prints each package, every failure with its
# output, and a closing count of tests.
exec gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg \
	--jsonfile "${TMPDIR:-/tmp}/ecogrid-test.json" -- -race -count=1 -timeout 20m ./...
