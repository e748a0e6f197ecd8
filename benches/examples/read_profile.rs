//! Reads of PostgreSQL in a loop, for counting the client's instructions per event with callgrind:
//!
//! ```text
//! cargo build --release -p composable-rust-benches --example read_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/read_profile stream 5
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -60
//! ```
//!
//! Appends one 10,000-event stream of 106-byte payloads, then reads it `n` times (default 5) as a stream load
//! (`stream`) or as the global log in pages of 1,000 (`log`). Subtract a run with `n = 0` and divide by
//! `n * 10,000`. `DATABASE_URL` names the server (default postgres://postgres@127.0.0.1:5432/postgres); a scratch
//! database is created and dropped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::EventLog;
use composable_rust_core::{
    CodecId, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, StreamId, StreamRange,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

const EVENTS: u64 = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "stream".to_owned());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = PostgresTestDatabase::create().await.expect("a PostgreSQL server (DATABASE_URL)");
        let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
        store.migrate().await.unwrap();
        let stream = StreamId::new("profile").unwrap();
        let events = (0..EVENTS)
            .map(|_| NewEvent::new("ItemAdded.v1", CodecId::Bincode, vec![7; 106], Metadata::default()))
            .collect();
        store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap();
        for _ in 0..n {
            let read = match kind.as_str() {
                "log" => {
                    let (mut after, mut read) = (GlobalPosition::START, 0);
                    loop {
                        let page = store.read_all(after, &LogFilter::all(), 1000).await.unwrap();
                        let Some(last) = page.last() else { break };
                        after = last.position;
                        read += page.len();
                    }
                    read
                }
                _ => store.load_stream(&stream, StreamRange::all()).await.unwrap().len(),
            };
            assert_eq!(read as u64, EVENTS);
        }
    });
}
