#!/usr/bin/env bash
# Peer benchmark against disintegrate (issue 20): builds this standalone project in release mode (its own
# target directory, never the main workspace's) and runs it. Flags are passed through; see README.md.
# DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked --quiet
exec ./target/release/peer-disintegrate "$@"
