#!/usr/bin/env bash
# Peer comparison (issue 19): builds this standalone project in release mode (its own target directory, never
# the main workspace's) and runs every workload on composable-rust, postgres-es, esrs and pgbench, then prints
# the ratio table. Flags are passed through (--help lists them); see README.md.
# DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres); pgbench and
# psql connect to the same host, port and user.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked --quiet
exec ./target/release/peer-compare "$@"
