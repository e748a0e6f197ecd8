//! `order-processing load` keeps going when its PostgreSQL server restarts in the middle: the repository
//! retries the failed loads and appends (appends with the same event ids, so one that landed before the
//! connection broke is not written twice), and every order ends dense and without duplicates.
//!
//! The test starts a server of its own (`PrivateCluster`), so that no other test sees the restart.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "set-up failures should fail the test loudly")]

use composable_rust::backend::{EventLog, StoreLifecycle};
use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use composable_rust::postgres::PostgresEventStore;
use composable_rust::testing::postgres_cluster::PrivateCluster;
use composable_rust::{GlobalPosition, LogFilter, RecordedEvent, StreamId};

const BIN: &str = env!("CARGO_BIN_EXE_order-processing");
const ORDERS: u32 = 8;
const EVENTS: u32 = 60;

async fn every_event(url: &str) -> Vec<RecordedEvent> {
    let store = PostgresEventStore::connect(url).await.expect("connect to the private cluster");
    let mut events = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = store.read_all(after, &LogFilter::all(), 1000).await.expect("read the log");
        let Some(last) = page.last() else { break };
        after = last.position;
        events.extend(page);
    }
    store.close().await.expect("close");
    events
}

/// How many events are stored so far (0 while the schema is not there yet or the server is away).
async fn stored_so_far(url: &str) -> usize {
    match PostgresEventStore::connect(url).await {
        Ok(store) => {
            let count = store.read_all(GlobalPosition::START, &LogFilter::all(), 100_000).await.map_or(0, |e| e.len());
            let _ = store.close().await;
            count
        }
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_completes_across_a_server_restart_with_every_order_dense_and_no_duplicates() {
    let cluster = PrivateCluster::start().expect("a private PostgreSQL cluster (initdb/pg_ctl)");
    let url = cluster.url();
    let mut load = Command::new(BIN)
        .env("DATABASE_URL", &url)
        .args(["load", "--orders", &ORDERS.to_string(), "--events", &EVENTS.to_string(), "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start order-processing load");

    // Restart once a fair part of the load is written, while writers are busy.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored_so_far(&url).await < (ORDERS * EVENTS / 4) as usize {
        assert!(Instant::now() < deadline, "the load wrote too little in two minutes");
        assert!(load.try_wait().expect("poll the load").is_none(), "the load ended before the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.restart().expect("restart the private cluster");

    let output = tokio::task::spawn_blocking(move || load.wait_with_output()).await.unwrap().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "the load must complete across the restart:\n{printed}");

    let events = every_event(&url).await;
    assert_eq!(events.len(), (ORDERS * EVENTS) as usize, "every command stored exactly once:\n{printed}");
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let mut versions: BTreeMap<StreamId, Vec<u64>> = BTreeMap::new();
    for event in &events {
        versions.entry(event.stream_id.clone()).or_default().push(event.version.get());
    }
    assert_eq!(versions.len(), ORDERS as usize, "one stream per order");
    for (stream, mut stream_versions) in versions {
        stream_versions.sort_unstable();
        assert_eq!(stream_versions, (1..=u64::from(EVENTS)).collect::<Vec<_>>(), "{stream} is dense");
    }
}
