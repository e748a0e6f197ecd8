//! Many tasks of one process writing to one file: conflicts are detected, nothing is lost, and nobody
//! sees "database is locked".

// The helpers below are test code too; clippy's test allowances only cover `#[test]` functions.
#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::EventLog;
use std::collections::BTreeMap;
use std::time::Duration;

use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, StreamId, StreamRange,
    Version,
};
use composable_rust_sqlite::{SqliteConfig, SqliteEventStore};

fn event(writer: usize) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Raced.v1".into(),
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        metadata: Metadata::default().with_actor(format!("writer-{writer}")),
        tags: Vec::new(),
    }
}

async fn file_store() -> (tempfile::TempDir, SqliteEventStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_racing_at_the_same_expected_versions_win_each_version_exactly_once() {
    const WRITERS: usize = 8;
    const VERSIONS: u64 = 60;
    let (_dir, store) = file_store().await;
    let stream = StreamId::new("race-1").unwrap();

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, stream) = (store.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for v in 0..VERSIONS {
                match store.append(&stream, ExpectedVersion::Exact(Version::new(v)), vec![event(writer)]).await {
                    Ok(result) => won.push(result.stream_version.get()),
                    Err(EventStoreError::ConcurrencyConflict { actual, .. }) => assert!(actual.get() > v),
                    Err(other) => panic!("writer {writer}: only conflicts are acceptable, got: {other}"),
                }
            }
            won
        }));
    }
    let mut winners: BTreeMap<u64, usize> = BTreeMap::new();
    for (writer, task) in tasks.into_iter().enumerate() {
        for version in task.await.unwrap() {
            assert!(winners.insert(version, writer).is_none(), "version {version} was won twice");
        }
    }
    assert_eq!(winners.keys().copied().collect::<Vec<_>>(), (1..=VERSIONS).collect::<Vec<_>>());

    let events = store.load_stream(&stream, StreamRange::all()).await.unwrap();
    for event in &events {
        let actor = event.metadata.actor.as_deref().unwrap();
        assert_eq!(actor, format!("writer-{}", winners[&event.version.get()]), "version {}", event.version);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_on_their_own_streams_all_succeed() {
    const WRITERS: usize = 16;
    const APPENDS: u64 = 40;
    let (_dir, store) = file_store().await;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("own-{writer}")).unwrap();
            for v in 0..APPENDS {
                let expected = ExpectedVersion::Exact(Version::new(v * 2));
                if let Err(error) = store.append(&stream, expected, vec![event(writer), event(writer)]).await {
                    panic!("writer {writer} at version {v}: {error}");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.read_all(GlobalPosition::START, &LogFilter::all(), 100_000).await.unwrap();
    assert_eq!(all.len(), WRITERS * APPENDS as usize * 2);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position), "positions must increase along the log");
    for writer in 0..WRITERS {
        let stream = StreamId::new(format!("own-{writer}")).unwrap();
        assert_eq!(store.stream_version(&stream).await.unwrap(), Version::new(APPENDS * 2));
    }
}

/// Writers are served in the order they arrive. A test once found 4 writers of one process where 2 made
/// no progress until the other 2 had finished (`[46, 0, 0, 50]` appends). Each writer notes the highest
/// position it knows to be committed before each append; the events committed between that and its own
/// are other writers' appends that were already waiting or finished unnoticed, at most two per other
/// writer whatever the scheduling, because every waiting append is in the next group commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_writer_is_overtaken_by_another_more_than_twice_per_append() {
    const WRITERS: u64 = 4;
    const APPENDS: u64 = 40;
    let (_dir, store) = file_store().await;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, seen) = (store.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("fair-{writer}")).unwrap();
            let mut overtaken = Vec::new();
            for v in 0..APPENDS {
                let before = seen.load(std::sync::atomic::Ordering::SeqCst);
                let expected = ExpectedVersion::Exact(Version::new(v));
                let written = store.append(&stream, expected, vec![event(writer as usize)]).await.unwrap();
                let position = written.positions[0].get();
                overtaken.push(position - before - 1);
                seen.fetch_max(position, std::sync::atomic::Ordering::SeqCst);
            }
            overtaken
        }));
    }
    for (writer, task) in tasks.into_iter().enumerate() {
        let overtaken = task.await.unwrap();
        let worst = overtaken.iter().copied().max().unwrap();
        assert!(
            worst <= 2 * (WRITERS - 1),
            "writer {writer} saw up to {worst} appends of others committed while it waited: {overtaken:?}"
        );
    }
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 1000).await.unwrap();
    assert_eq!(log.len() as u64, WRITERS * APPENDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_appends_write_all_of_their_batch_or_nothing() {
    let (_dir, store) = file_store().await;
    let stream = StreamId::new("cancel-1").unwrap();
    let mut finished = 0;
    for attempt in 0..60u64 {
        // Cancel at different points: before the lock, mid-transaction, during the commit.
        let append = store.append(&stream, ExpectedVersion::Any, vec![event(0), event(0), event(0)]);
        if tokio::time::timeout(Duration::from_micros(attempt * 25), append).await.is_ok() {
            finished += 1;
        }
    }
    let after = store.append(&stream, ExpectedVersion::Any, vec![event(1)]).await.unwrap();
    let before = after.stream_version.get() - 1;
    assert_eq!(before % 3, 0, "a batch of 3 was partly written: the stream was at version {before}");
    assert!(before / 3 >= finished, "{finished} appends reported success but only {} batches are stored", before / 3);
    let versions: Vec<u64> =
        store.load_stream(&stream, StreamRange::all()).await.unwrap().iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=before + 1).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_proceed_while_a_long_batch_is_being_written() {
    let (_dir, store) = file_store().await;
    let stream = StreamId::new("busy-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();
    let writer = {
        let store = store.clone();
        let stream = StreamId::new("busy-2").unwrap();
        tokio::spawn(async move {
            for _ in 0..20 {
                store.append(&stream, ExpectedVersion::Any, (0..1000).map(|_| event(1)).collect()).await.unwrap();
            }
        })
    };
    // WAL: readers see the last committed state and never wait for the writer.
    for _ in 0..50 {
        assert_eq!(store.stream_version(&stream).await.unwrap(), Version::new(1));
    }
    writer.await.unwrap();
    assert_eq!(store.stream_version(&StreamId::new("busy-2").unwrap()).await.unwrap(), Version::new(20_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_busy_timeout_is_transient_and_the_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut config = SqliteConfig::default();
    config.busy_timeout = Duration::from_millis(50);
    let store = SqliteEventStore::open_with(&path, config).await.unwrap();
    let stream = StreamId::new("locked-1").unwrap();
    let events = vec![event(0), event(0)];

    // Another process's writer, as far as this store can tell: its own connection, holding the write lock.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut other = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    let error = store.append(&stream, ExpectedVersion::NoStream, events.clone()).await.unwrap_err();
    assert!(error.is_transient(), "a lock held past the busy timeout must be transient (Unavailable), got: {error}");
    assert!(error.to_string().contains("unavailable"), "{error}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    let written = store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap();
    assert_eq!(written.stream_version, Version::new(2), "the retry appends the batch once");
}
