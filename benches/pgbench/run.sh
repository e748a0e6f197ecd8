#!/usr/bin/env bash
# The raw server ceiling for the PostgreSQL event store benchmarks: pgbench -M prepared on the events table
# shape of migrations/postgres (every migration, in order), in a scratch database that is dropped afterwards.
#   benches/pgbench/run.sh [seconds per run, default 10]
# The rows and the runs come from the environment (defaults: the criterion workload's rows, all six runs):
#   PGBENCH_PAYLOAD   the payload in hex, without \x (default: the 20-byte bincode ItemAdded of
#                     benches/benches/workload)
#   PGBENCH_METADATA  1: correlation id, causation id, actor and extra set, as the criterion workload (default);
#                     0: all four NULL, as benches/peers/compare's events
#   PGBENCH_RUNS      comma-separated "script clients" pairs (default:
#                     "single 1,single 8,unnest100 1,unnest100 8,unnest1000 1,unnest1000 8")
# Connects like psql (PGHOST, PGPORT, PGUSER, ...; default: postgres@127.0.0.1:5432). Prints rows/s per run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-10}
payload=${PGBENCH_PAYLOAD:-0000000c534b552d30303030303030310306ce0f}
metadata=${PGBENCH_METADATA:-1}
runs=${PGBENCH_RUNS:-single 1,single 8,unnest100 1,unnest100 8,unnest1000 1,unnest1000 8}
case $payload in *[!0-9a-fA-F]*) echo "PGBENCH_PAYLOAD must be hex digits, not '$payload'" >&2; exit 2 ;; esac
case $metadata in 0 | 1) ;; *) echo "PGBENCH_METADATA must be 0 or 1, not '$metadata'" >&2; exit 2 ;; esac
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=pgbench_composable_$$
psql -q -d postgres -c "CREATE DATABASE $db"
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for migration in ../../migrations/postgres/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$migration"
done
psql -q -v ON_ERROR_STOP=1 -d "$db" -f setup.sql
IFS=, read -ra pairs <<<"$runs"
for pair in "${pairs[@]}"; do
    read -r script clients <<<"$pair"
    case $script in
        single) rows=1 ;;
        unnest100) rows=100 ;;
        unnest1000) rows=1000 ;;
        *) echo "unknown script '$script' in PGBENCH_RUNS (single, unnest100 or unnest1000)" >&2; exit 2 ;;
    esac
    threads=$((clients > 1 ? 2 : 1))
    out=$(pgbench -n -M prepared -c "$clients" -j "$threads" -T "$secs" -D "payload=\\x$payload" \
        -D "metadata=$metadata" -f "$script.sql" "$db" 2>&1) || { echo "$out" >&2; exit 1; }
    tps=$(awk '/^tps/ {print $3; exit}' <<<"$out")
    printf '%-11s clients=%s  tps=%10.1f  rows/s=%12.0f\n' "$script" "$clients" "$tps" "$(echo "$tps * $rows" | bc)"
done
