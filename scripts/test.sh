#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, the whole test suite (with a real PostgreSQL), and docs.
#
# PostgreSQL: when DATABASE_URL is set it is used as is. Otherwise, when nothing answers on
# 127.0.0.1:5432, the local Debian cluster is started (pg_ctlcluster) if one is installed. The script then
# creates (or demotes) the test role `composable`, which may log in and create databases and nothing else
# (LOGIN CREATEDB, no SUPERUSER), and exports DATABASE_URL for it. Each test creates its own database as that
# role and drops it afterwards; see "Tests and benchmarks" in docs/database-setup.md.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432
    else
        (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
    fi
}

prepare_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        say "PostgreSQL: using DATABASE_URL from the environment"
        return
    fi
    if ! pg_answers; then
        if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
            version=$(ls /etc/postgresql | sort -V | tail -n 1)
            say "PostgreSQL: nothing answers on 127.0.0.1:5432; starting the local cluster $version/main"
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
            for _ in $(seq 1 30); do pg_answers && break; sleep 1; done
        fi
    fi
    if ! pg_answers; then
        say "PostgreSQL: no server on 127.0.0.1:5432 and none could be started; Postgres tests will fail and say so."
        say "            Set DATABASE_URL=postgres://user:password@host:port/db to point them at a server."
        return
    fi
    # A password-authenticated test role with the least the tests need: log in, create databases (each test
    # makes its own and drops it). Not a superuser: a role left behind on a shared server can read nothing it
    # did not create. A `composable` role made SUPERUSER by an older version of this script is demoted.
    if command -v psql >/dev/null 2>&1; then
        if psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1; then
            psql -h 127.0.0.1 -U postgres -d postgres -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'composable') THEN
        CREATE ROLE composable LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD 'composable';
    ELSE
        ALTER ROLE composable LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD 'composable';
    END IF;
END $$;
SQL
            export DATABASE_URL="postgres://composable:composable@127.0.0.1:5432/postgres"
            say "PostgreSQL: ready on 127.0.0.1:5432 as role 'composable' (LOGIN CREATEDB); DATABASE_URL exported"
            return
        fi
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    say "PostgreSQL: answering on 127.0.0.1:5432; using DATABASE_URL=$DATABASE_URL"
}

prepare_postgres

# NATS JetStream, for the event bus tests (bus/, examples/checkout): NATS_URL when set; else the server on
# 127.0.0.1:4222 when one answers; else a `nats-server -js` of this run on a free loopback port (installed from
# Debian's package if missing), stopped when the script exits. The bus tests also start servers of their own
# (a restart, a 3-node cluster), so they need the binary either way. Without a server they fail and say so.
nats_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

prepare_nats() {
    if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            say "NATS: nats-server is not installed; installing Debian's package"
            apt-get install -y -q nats-server >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q nats-server >/dev/null; } || true
        fi
    fi
    if [ -n "${NATS_URL:-}" ]; then
        say "NATS: using NATS_URL=$NATS_URL from the environment"
        return
    fi
    if nats_answers 4222; then
        export NATS_URL="nats://127.0.0.1:4222"
        say "NATS: answering on 127.0.0.1:4222; NATS_URL exported"
        return
    fi
    local server
    server=$(command -v nats-server || echo /usr/sbin/nats-server)
    if [ ! -x "$server" ]; then
        say "NATS: no server on 127.0.0.1:4222 and no nats-server binary; the bus tests will fail and say so."
        return
    fi
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
    NATS_DIR=$(mktemp -d)
    "$server" -js -a 127.0.0.1 -p "$port" -sd "$NATS_DIR" >"$NATS_DIR/nats.log" 2>&1 &
    NATS_PID=$!
    trap 'kill "$NATS_PID" 2>/dev/null || true; rm -rf "$NATS_DIR"' EXIT
    for _ in $(seq 1 50); do nats_answers "$port" && break; sleep 0.1; done
    export NATS_URL="nats://127.0.0.1:$port"
    say "NATS: started nats-server -js on 127.0.0.1:$port (pid $NATS_PID); NATS_URL exported"
}

prepare_nats

say "cargo fmt --check"
cargo fmt --all -- --check

say "docs/getting-started.md shows the files of examples/getting-started verbatim"
scripts/check-guide.sh

# --all-features: the facade's postgres/testing parts and the Postgres test fixture are built and tested too.
say "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

say "cargo check -p composable-rust --no-default-features (the facade without any backend)"
cargo check -p composable-rust --no-default-features --locked

# A production build (every feature but `testing`) must not pull the test tools: the in-memory store lives in
# composable-rust-memory for this reason. Listed: the testing crate and what only it or benches need.
say "cargo tree: no test tools in the facade's production dependencies"
forbidden='composable-rust-testing|proptest|similar|criterion|tempfile'
for features in "--no-default-features" "--no-default-features --features sqlite,postgres,file,json,bus"; do
    # shellcheck disable=SC2086 # $features is two or three words on purpose.
    tree=$(cargo tree -p composable-rust $features -e normal --prefix none --format '{p}' --locked)
    found=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -Ex "$forbidden" | sort -u || true)
    if [ -n "$found" ]; then
        say "FAILED: composable-rust ($features) pulls test-only crates into a user's production build:"
        printf '      %s\n' $found
        say "       They belong behind the \`testing\` feature or in [dev-dependencies]; see who pulls them with"
        say "       cargo tree -p composable-rust $features -e normal -i <crate>"
        exit 1
    fi
done

say "cargo test --workspace --all-features"
cargo test --workspace --all-features --locked

say "cargo doc --workspace --no-deps --all-features"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

say "all checks passed"
