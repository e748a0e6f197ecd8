//! Several processes on one file. Each test re-runs this test binary as a child process (the
//! `child_process_entry` test, told what to do by environment variables) so the writers really are
//! separate processes with their own SQLite connections.

// The helpers below are test code too; clippy's test allowances only cover `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::EventLog;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange, Version,
};
use composable_rust_sqlite::SqliteEventStore;

const ROLE: &str = "COMPOSABLE_SQLITE_CHILD_ROLE";
const DB: &str = "COMPOSABLE_SQLITE_CHILD_DB";
const DIR: &str = "COMPOSABLE_SQLITE_CHILD_DIR";

/// Versions raced for in the two-process test.
const RACE_VERSIONS: u64 = 200;
/// Batches the crashing child appends, and events per batch.
const CRASH_BATCHES: u64 = 25;
const CRASH_BATCH_LEN: u64 = 4;

fn event(actor: &str, n: u64) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Written.v1".into(),
        codec: CodecId::Json,
        payload: format!("{{\"n\":{n}}}").into_bytes(),
        metadata: Metadata::default().with_actor(actor),
        tags: Vec::new(),
    }
}

fn race_stream() -> StreamId {
    StreamId::new("race-1").unwrap()
}

fn crash_stream() -> StreamId {
    StreamId::new("crash-1").unwrap()
}

/// Starts this test binary as a child that runs `child_process_entry` in `role`.
fn spawn_child(role: &str, db: &Path, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_process_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DB, db)
        .env(DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "gave up waiting for {}", path.display());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_for_child(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap()
}

/// Appends one event at a time until the stream reaches `RACE_VERSIONS`, like a real client: on a
/// conflict it continues from the version the conflict reports. Returns the versions it won.
async fn race(store: &SqliteEventStore, actor: &str) -> Vec<u64> {
    let mut won = Vec::new();
    let mut expected = 0;
    while expected < RACE_VERSIONS {
        let attempt = ExpectedVersion::Exact(Version::new(expected));
        match store.append(&race_stream(), attempt, vec![event(actor, expected)]).await {
            Ok(result) => {
                assert_eq!(result.stream_version.get(), expected + 1);
                won.push(expected + 1);
                expected += 1;
            }
            Err(EventStoreError::ConcurrencyConflict { actual, .. }) => {
                assert!(actual.get() > expected, "{actual} is not ahead of the stale expectation {expected}");
                expected = actual.get();
            }
            Err(other) => panic!("{actor}: only conflicts are acceptable, got: {other}"),
        }
    }
    won
}

/// Not a test of its own: the body of the child processes. Does nothing unless started by a test below.
#[tokio::test]
async fn child_process_entry() {
    let (Ok(role), Ok(db), Ok(dir)) = (std::env::var(ROLE), std::env::var(DB), std::env::var(DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = SqliteEventStore::open(&db).await.expect("the child could not open the store");
    match role.as_str() {
        "race" => {
            std::fs::write(dir.join("ready"), b"").unwrap();
            wait_for_file(&dir.join("go")).await;
            let won = race(&store, "child").await;
            let text: Vec<String> = won.iter().map(u64::to_string).collect();
            std::fs::write(dir.join("child-won"), text.join(",")).unwrap();
        }
        "append-then-exit" => {
            for batch in 0..CRASH_BATCHES {
                let events = (0..CRASH_BATCH_LEN).map(|i| event("child", batch * CRASH_BATCH_LEN + i)).collect();
                let expected = ExpectedVersion::Exact(Version::new(batch * CRASH_BATCH_LEN));
                store.append(&crash_stream(), expected, events).await.unwrap();
            }
            // End the process the way a crash would: no destructors, no close, no WAL checkpoint.
            std::process::exit(0);
        }
        other => panic!("unknown child role {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_on_one_stream_win_each_version_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let store = SqliteEventStore::open(&db).await.unwrap();
    let child = spawn_child("race", &db, dir.path());

    wait_for_file(&dir.path().join("ready")).await;
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let parent_won = race(&store, "parent").await;
    let output = wait_for_child(child).await;
    assert!(output.status.success(), "child failed:\n{}", String::from_utf8_lossy(&output.stdout));

    let child_won: Vec<u64> = std::fs::read_to_string(dir.path().join("child-won"))
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let parent_set: BTreeSet<u64> = parent_won.iter().copied().collect();
    let child_set: BTreeSet<u64> = child_won.iter().copied().collect();
    assert!(parent_set.is_disjoint(&child_set), "a version was won by both processes");
    let all: Vec<u64> = parent_set.union(&child_set).copied().collect();
    assert_eq!(all, (1..=RACE_VERSIONS).collect::<Vec<_>>(), "every version must be won exactly once");

    let events = store.load_stream(&race_stream(), StreamRange::all()).await.unwrap();
    assert_eq!(events.len() as u64, RACE_VERSIONS);
    for event in &events {
        let expected_actor = if parent_set.contains(&event.version.get()) { "parent" } else { "child" };
        assert_eq!(event.metadata.actor.as_deref(), Some(expected_actor), "version {}", event.version);
    }
    eprintln!("parent won {} versions, child won {}", parent_set.len(), child_set.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_by_a_process_that_ended_abruptly_are_all_there_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("events.db");
    let output = wait_for_child(spawn_child("append-then-exit", &db, dir.path())).await;
    assert!(output.status.success(), "child failed:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("data").join("events.db-wal").exists(), "the child should have left its WAL behind");

    let store = SqliteEventStore::open(&db).await.unwrap();
    let stream = crash_stream();
    let events = store.load_stream(&stream, StreamRange::all()).await.unwrap();
    let total = CRASH_BATCHES * CRASH_BATCH_LEN;
    assert_eq!(events.iter().map(|e| e.version.get()).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
    for (n, event) in (0..).zip(&events) {
        assert_eq!(event.payload, format!("{{\"n\":{n}}}").into_bytes());
    }
    let next = store.append(&stream, ExpectedVersion::Exact(Version::new(total)), vec![event("parent", total)]);
    assert_eq!(next.await.unwrap().stream_version, Version::new(total + 1), "appends continue after the last version");
}
