#!/usr/bin/env bash
# Retention on PostgreSQL (docs/performance.md, "Retention (PostgreSQL)"): how fast events_retention_remove (migration
# 0006) removes events in bounded transactions from a 1M-event table, against the ceiling of a bare DELETE of the
# same batches with the append-only trigger disabled; and what the stricter APPEND_AT check (the stream's last
# version instead of the primary key alone) costs a plain append, with pgbench, interleaved rounds.
#   benches/pgbench/retention.sh [streams, default 999] [events per stream, default 1000] [pgbench seconds, default 4] [rounds, default 3]
# A scratch database with every migration, dropped afterwards. Each stream has a snapshot at 90% of its events;
# each third of the streams loses the events up to its snapshot one way: the function with batches of 10,000
# events, the function with batches of 1,000, the bare DELETE with batches of 10,000. Every batch is one
# transaction. Connects like psql (PGHOST, PGUSER, ...; default: postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")"
streams=${1:-999}; per_stream=${2:-1000}; secs=${3:-4}; rounds=${4:-3}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=pgbench_retention_$$
work=$(mktemp -d)
psql -q -d postgres -c "CREATE DATABASE $db"
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; rm -rf "$work"' EXIT
for migration in ../../migrations/postgres/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$migration"
done
cut=$((per_stream * 9 / 10))
third=$((streams / 3))

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (start)"
start=$(date +%s.%N)
psql -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload, actor)
SELECT 'order-' || s, v, (s::bigint * $per_stream + v), gen_random_uuid(), 'OrderPlaced.v1', 'bincode',
       '\x070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707'::bytea,
       'writer-' || (s % 8)
FROM generate_series(1, $streams) AS s, generate_series(1, $per_stream) AS v;
INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at)
SELECT 'order-' || s, $cut, 1, 'bincode', '\x00', now() FROM generate_series(1, $streams) AS s;
-- The batches, built beforehand so that a timed statement only fetches its arrays: the events up to each stream's
-- snapshot, in stream and version order; thirds 0 and 2 in batches of 10,000 events, third 1 in batches of 1,000.
CREATE TABLE batches AS
SELECT t.third, t.batch, array_agg(t.stream_id ORDER BY t.s, t.version) AS streams,
       array_agg(t.version::bigint ORDER BY t.s, t.version) AS versions, array_agg(false) AS replay_free
FROM (SELECT (s - 1) / $third AS third, s, 'order-' || s AS stream_id, v AS version,
             (((s - 1) % $third) * $cut + (v - 1)) / (CASE (s - 1) / $third WHEN 1 THEN 1000 ELSE 10000 END) AS batch
      FROM generate_series(1, $third * 3) AS s, generate_series(1, $cut) AS v) AS t
GROUP BY t.third, t.batch;
ALTER TABLE batches ADD PRIMARY KEY (third, batch);
VACUUM ANALYZE;
SQL
printf 'filled %s events in %.1f s; table: %s\n' "$((streams * per_stream))" "$(echo "$(date +%s.%N) - $start" | bc)" \
    "$(psql -tA -d "$db" -c "SELECT pg_size_pretty(pg_total_relation_size('events'))")"

# One statement (one transaction) per batch, its arrays read from `batches`. $1: third, $2: batch size, $3: function,
# delete (the bare statement, with the function's join settings) or select (reading the arrays only).
third_events=$((third * cut))
batches() {
    local third=$1 size=$2 how=$3
    local n=$(( (third_events + size - 1) / size ))
    [ "$how" = delete ] && echo "SET enable_hashjoin = off; SET enable_mergejoin = off;"
    for i in $(seq 0 $((n - 1))); do
        case $how in
            function) echo "SELECT removed FROM batches b, events_retention_remove('00000000-0000-0000-0000-00000000000$third', 'bench', 'bench', NULL, b.streams, b.versions, b.replay_free) WHERE b.third = $third AND b.batch = $i;" ;;
            delete) echo "DELETE FROM events e USING batches b, unnest(b.streams, b.versions) AS q(stream_id, version) WHERE b.third = $third AND b.batch = $i AND e.stream_id = q.stream_id AND e.version = q.version;" ;;
            select) echo "SELECT cardinality(b.streams) + cardinality(b.versions) FROM batches b WHERE b.third = $third AND b.batch = $i;" ;;
        esac
    done
}
run() {
    local label=$1 file=$2 before after
    before=$(date +%s.%N)
    psql -q -v ON_ERROR_STOP=1 -d "$db" -f "$file" >/dev/null
    after=$(date +%s.%N)
    printf '%-40s %8d events  %6.2f s  %9.0f events/s\n' "$label" "$third_events" "$(echo "$after - $before" | bc)" \
        "$(echo "$third_events / ($after - $before)" | bc -l)"
}
batches 0 10000 function >"$work/f10k.sql"; batches 0 10000 select >"$work/s10k.sql"
batches 1 1000 function >"$work/f1k.sql"; batches 1 1000 select >"$work/s1k.sql"
batches 2 10000 delete >"$work/d10k.sql"
run "reading the batches only (10,000)" "$work/s10k.sql"
run "reading the batches only (1,000)" "$work/s1k.sql"
run "events_retention_remove, batches of 10,000" "$work/f10k.sql"
run "events_retention_remove, batches of 1,000" "$work/f1k.sql"
psql -q -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_append_only"
run "bare DELETE (no trigger), batches of 10,000" "$work/d10k.sql"
psql -q -d "$db" -c "ALTER TABLE events ENABLE TRIGGER events_append_only"
psql -tA -d "$db" -c "SELECT count(*) || ' events left' FROM events"
psql -tA -d "$db" -c "SELECT 'audit: run ' || run_id || ', ' || batches || ' batches, ' || removed_events || ' events removed' FROM retention_runs ORDER BY run_id"

# APPEND_AT before and after retention's change, NoStream on a new stream and Exact(v) on an existing one (its
# version read first, in the same script for both), with synchronous_commit off so that the statement, not the WAL
# flush, is what is timed.
export PGOPTIONS="-c synchronous_commit=off"
for round in $(seq 1 "$rounds"); do
    for script in append_at_before append_at exact_before exact; do
        tps=$(pgbench -n -M prepared -c 1 -j 1 -T "$secs" -D streams="$streams" -f "retention/$script.sql" "$db" 2>/dev/null \
            | awk '/^tps/ {print $3; exit}')
        printf 'round %s  %-18s calls/s=%10.1f\n' "$round" "$script" "$tps"
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (end)"
