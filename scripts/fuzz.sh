#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go file) for FUZZTIME
# each (default 5s; 10m for a soak). Seed corpora live in each package's
# testdata/fuzz and also run as plain tests in `go test`. A crash leaves
# its input in testdata/fuzz/FuzzXxx for a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5s}"
status=0
while IFS= read -r line; do
	file="${line%%:*}"
	name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")"
	pkg="./$(dirname "$file")"
	printf 'fuzz %s %s (%s)\n' "$pkg" "$name" "$FUZZTIME"
	log="${TMPDIR:-/tmp}/fuzz-${name}.log"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
		# Go's fuzzer can end a short run with "context deadline exceeded"
		# while a worker is busy; that is not a finding. A real one always
		# writes its failing input.
		if ! grep -q 'Failing input written\|panic:' "$log" && grep -q 'context deadline exceeded' "$log"; then
			echo "  (fuzzer stopped at its deadline; no failing input)"
			continue
		fi
		cat "$log"
		status=1
	fi
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' cmd internal | sort)
exit "$status"
