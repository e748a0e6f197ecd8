#!/usr/bin/env bash
# The PostgreSQL append statements against a bare INSERT of the same row, on the server alone (docs/performance.md,
# "The locked append path after migration 0004"): pgbench -M prepared, one client, interleaved rounds, in a scratch
# database with every migration, dropped afterwards. Each call appends one 48-byte event to a new stream; the
# locked ones carry a new tag and the condition "no event with this tag yet" (the tags read `username=...`: pgbench
# takes a colon for a variable).
#   benches/pgbench/locked.sh [seconds per run, default 4] [rounds, default 3] [clients, default 1]
# Connects like psql (PGHOST, PGUSER, ...; default: postgres@127.0.0.1:5432). Prints calls/s per script and round.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-4}; rounds=${2:-3}; clients=${3:-1}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=pgbench_locked_$$
psql -q -d postgres -c "CREATE DATABASE $db"
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for migration in ../../migrations/postgres/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$migration"
done
for round in $(seq 1 "$rounds"); do
    for script in insert append_at append append_one append_locked; do
        tps=$(pgbench -n -M prepared -c "$clients" -j "$clients" -T "$secs" -f "locked/$script.sql" "$db" 2>/dev/null \
            | awk '/^tps/ {print $3; exit}')
        printf 'round %s  %-14s clients=%s  calls/s=%10.1f\n' "$round" "$script" "$clients" "$tps"
    done
done
