#!/usr/bin/env bash
# Fault injection: brings up a private stack (PostgreSQL cluster, embedded
# NATS, gridd and cased as killable subprocesses of freshly built
# binaries) and runs fieldsim under each fault in turn — gridd SIGKILLed
# every FAULTS_KILL_EVERY, cased SIGKILLed likewise, NATS stopped for
# FAULTS_NATS_OUTAGE, PostgreSQL shut down with -m immediate every
# FAULTS_PG_EVERY — requiring every reconciliation to be exact. The
# replicas-sigkill scenario runs two gridd and two cased on the one
# database and NATS (fieldsim round-robins its calls over the replicas that
# are up), SIGKILLs one gridd and one cased every FAULTS_KILL_EVERY (the
# first replicas, then the second ones, in turn) and restarts them, and
# also checks the background workers for double work: no event stored
# twice in JetStream (republished ones counted), no case escalated twice
# by the two overdue sweepers, no webhook delivery POSTed twice, none held
# back by a dead dispatcher. Then, on a second stack whose NATS is a 3-node
# JetStream cluster with R3 streams (in-process servers on loopback, each
# with its own storage), one node is shut down every FAULTS_NATS_KILL_EVERY
# for FAULTS_NATS_NODE_DOWN and started again: a follower of the
# VIOLATIONS stream (nats-node-kill), then its leader (nats-leader-kill).
#
#   scripts/faults.sh            full version: 5 min, 500 inspectors per scenario (about 60 min)
#   scripts/faults.sh short      20 s, 50 inspectors, gridd or cased killed every 10 s, PostgreSQL crashed every 10 s, NATS down 10 s,
#                                a NATS cluster node down 3 s every 5 s
#   FAULTS_SCENARIOS=replicas-sigkill scripts/faults.sh short    the replica scenario alone (about 4 min)
#   FAULTS_SCENARIOS=nats-node-kill,nats-leader-kill scripts/faults.sh short    the cluster scenarios alone (about 6 min)
#
# Any FAULTS_* variable can be set to override; FAULTS_SCENARIOS picks
# scenarios (comma-separated: baseline,gridd-sigkill,cased-sigkill,nats-outage,postgres-immediate,replicas-sigkill,nats-node-kill,nats-leader-kill);
# The baseline scenario runs the same workload without a fault, for comparison.
# DATABASE_MAX_CONNS and other server settings in the environment reach gridd and cased.
# FAULTS_BIN uses already built binaries instead of building them;
# FAULTS_DIR keeps the stack's data and logs (gridd.log, cased.log, gridd-2.log, cased-2.log, pg/server.log) for a look afterwards.
# Not part of `go test ./...`: the test has build tag "faults".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_go
ensure_postgis
if [ "${1:-}" = short ]; then
	: "${FAULTS_DURATION:=20s}" "${FAULTS_INSPECTORS:=50}" "${FAULTS_KILL_EVERY:=10s}" "${FAULTS_NATS_OUTAGE:=10s}" "${FAULTS_PG_EVERY:=10s}" "${FAULTS_THINK:=2s}" \
		"${FAULTS_NATS_KILL_EVERY:=5s}" "${FAULTS_NATS_NODE_DOWN:=3s}"
fi
export FAULTS_DURATION="${FAULTS_DURATION:-5m}" FAULTS_INSPECTORS="${FAULTS_INSPECTORS:-500}" \
	FAULTS_KILL_EVERY="${FAULTS_KILL_EVERY:-30s}" FAULTS_NATS_OUTAGE="${FAULTS_NATS_OUTAGE:-60s}" \
	FAULTS_PG_EVERY="${FAULTS_PG_EVERY:-60s}" FAULTS_SCENARIOS="${FAULTS_SCENARIOS:-}" FAULTS_DIR="${FAULTS_DIR:-}" FAULTS_BIN="${FAULTS_BIN:-}" FAULTS_THINK="${FAULTS_THINK:-}" \
	FAULTS_NATS_KILL_EVERY="${FAULTS_NATS_KILL_EVERY:-30s}" FAULTS_NATS_NODE_DOWN="${FAULTS_NATS_NODE_DOWN:-10s}"
say "fault scenarios: ${FAULTS_DURATION} x ${FAULTS_INSPECTORS} inspectors, kill every ${FAULTS_KILL_EVERY}, NATS down ${FAULTS_NATS_OUTAGE}, PostgreSQL crash every ${FAULTS_PG_EVERY}, a NATS cluster node down ${FAULTS_NATS_NODE_DOWN} every ${FAULTS_NATS_KILL_EVERY}"
exec go test -tags faults -count=1 -timeout 3h -v -run '^TestFaults$' ./internal/faults
