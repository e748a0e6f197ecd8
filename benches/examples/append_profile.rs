//! Single-event appends to PostgreSQL in a loop, for counting the client's instructions per append with
//! callgrind (repeatable on a noisy machine, unlike time):
//!
//! ```text
//! cargo build --release -p composable-rust-benches --example append_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/append_profile 2000
//! callgrind_annotate /tmp/cg.out | head -40
//! ```
//!
//! Runs `n` appends (default 2,000) after 200 of warm-up, on a current-thread runtime, each a new stream with
//! `NoStream`. Divide the total by `n` after subtracting a run with `n = 0` (connection and warm-up alone).
//! `DATABASE_URL` names the server (default postgres://postgres@127.0.0.1:5432/postgres); a scratch database is
//! created and dropped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::EventLog;
use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = PostgresTestDatabase::create().await.expect("a PostgreSQL server (DATABASE_URL)");
        let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
        store.migrate().await.unwrap();
        let event = || NewEvent::new("UsernameClaimed.v1", CodecId::Bincode, vec![7; 48], Metadata::default());
        for i in 0..200 + n {
            let stream = StreamId::new(format!("profile-{i}")).unwrap();
            store.append(&stream, ExpectedVersion::NoStream, vec![event()]).await.unwrap();
        }
    });
}
