#!/usr/bin/env bash
# Brings the whole ecogrid stack up on this machine: installs PostgreSQL and
# PostGIS when missing (as root on Debian), builds the binaries and runs
# `gridctl dev`, which starts a private PostgreSQL cluster and an embedded
# NATS (or uses DATABASE_URL / NATS_URL), migrates, loads the demo county,
# and serves gridd and cased until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_go
if [ -z "${DATABASE_URL:-}" ]; then
	ensure_postgis
fi
go build -o bin/ ./cmd/...
exec ./bin/gridctl dev "$@"
