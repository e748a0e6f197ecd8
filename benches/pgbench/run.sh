#!/usr/bin/env bash
# The raw server ceiling for the PostgreSQL event store benchmarks: pgbench -M prepared on the events table
# shape of migrations/postgres (every migration, in order), in a scratch database that is dropped afterwards.
#   benches/pgbench/run.sh [seconds per run, default 10]
# Connects like psql (PGHOST, PGUSER, ...; default: postgres@127.0.0.1:5432). Prints rows/s per script.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-10}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=pgbench_composable_$$
psql -q -d postgres -c "CREATE DATABASE $db"
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for migration in ../../migrations/postgres/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$migration"
done
psql -q -v ON_ERROR_STOP=1 -d "$db" -f setup.sql
for run in "single 1 1" "single 8 2" "unnest100 1 1" "unnest100 8 2" "unnest1000 1 1" "unnest1000 8 2"; do
    set -- $run
    rows=1; [ "$1" = unnest100 ] && rows=100; [ "$1" = unnest1000 ] && rows=1000
    tps=$(pgbench -n -M prepared -c "$2" -j "$3" -T "$secs" -f "$1.sql" "$db" 2>/dev/null \
        | awk '/^tps/ {print $3; exit}')
    printf '%-11s clients=%s  tps=%10.1f  rows/s=%12.0f\n' "$1" "$2" "$tps" "$(echo "$tps * $rows" | bc)"
done
