//! Real concurrent writers against PostgreSQL: nothing lost, nothing duplicated, expectations honoured, and a
//! reader tailing the global log never skips an event that a slow transaction commits late.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test the same way

mod common;

use composable_rust_core::backend::{EventLog, SubscriptionStore};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_core::{
    EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter, StreamId, StreamRange, Version,
};
use composable_rust_postgres::PostgresEventStore;
use sqlx::Connection;

/// Every `(writer, seq)` pair written to `stream`, asserting versions are dense from 1.
async fn payloads_of(store: &PostgresEventStore, stream: &StreamId) -> Vec<Vec<u8>> {
    let events = store.load_stream(stream, StreamRange::all()).await.unwrap();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.version, Version::new(i as u64 + 1), "versions of {stream} are not dense");
    }
    events.into_iter().map(|e| e.payload.to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_on_one_stream_with_exact_versions_lose_and_duplicate_nothing() {
    let (store, _db) = common::migrated_store().await;
    let stream = StreamId::new("counter-1").unwrap();
    let (writers, appends) = (8, 20);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, stream) = (store.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for seq in 0..appends {
                let mut version = store.stream_version(&stream).await.unwrap();
                loop {
                    match store.append(&stream, ExpectedVersion::Exact(version), vec![common::event(writer, seq)]).await
                    {
                        Ok(written) => {
                            assert_eq!(written.stream_version, version.next());
                            break;
                        }
                        Err(EventStoreError::ConcurrencyConflict { actual, .. }) => {
                            assert!(actual > version, "a conflict must report a newer version");
                            conflicts += 1;
                            version = actual;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let payloads = payloads_of(&store, &stream).await;
    assert_eq!(payloads.len(), writers * appends);
    let expected: BTreeSet<_> =
        (0..writers).flat_map(|w| (0..appends).map(move |s| common::event(w, s).payload)).collect();
    assert_eq!(payloads.iter().cloned().collect::<BTreeSet<_>>(), expected, "an event was lost or duplicated");
    assert!(conflicts > 0, "the writers never raced; the test proves nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_with_any_never_conflict_and_batches_stay_contiguous() {
    let (store, _db) = common::migrated_store().await;
    let stream = StreamId::new("log-1").unwrap();
    let (writers, appends) = (8, 15);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, stream) = (store.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            for seq in 0..appends {
                let batch = vec![
                    common::event(writer, seq * 3),
                    common::event(writer, seq * 3 + 1),
                    common::event(writer, seq * 3 + 2),
                ];
                let written = store.append(&stream, ExpectedVersion::Any, batch).await.unwrap();
                assert_eq!(written.positions.len(), 3);
                assert!(written.positions.windows(2).all(|p| p[0] < p[1]));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let payloads = payloads_of(&store, &stream).await;
    assert_eq!(payloads.len(), writers * appends * 3);
    for batch in payloads.chunks(3) {
        let first = String::from_utf8(batch[0].clone()).unwrap();
        let writer = first.split(',').next().unwrap().to_owned();
        assert!(batch.iter().all(|p| String::from_utf8_lossy(p).starts_with(&writer)), "a batch was interleaved");
    }
    assert_eq!(payloads.iter().collect::<BTreeSet<_>>().len(), payloads.len(), "an event was duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creators_of_one_stream_exactly_one_wins() {
    let (store, _db) = common::migrated_store().await;
    let stream = StreamId::new("order-7").unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (store, stream, barrier) = (store.clone(), stream.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.append(&stream, ExpectedVersion::NoStream, vec![common::event(writer, 0)]).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(EventStoreError::ConcurrencyConflict { actual, .. }) => assert_eq!(actual, Version::new(1)),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.stream_version(&stream).await.unwrap(), Version::new(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_on_many_streams_appear_once_each_in_the_global_log() {
    let (store, _db) = common::migrated_store().await;
    let (writers, streams_per_writer, appends) = (8, 4, 10);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..appends {
                for s in 0..streams_per_writer {
                    // Half the streams are shared between two writers, so some appends race.
                    let stream = StreamId::new(format!("item-{}", (writer / 2) * streams_per_writer + s)).unwrap();
                    store
                        .append(&stream, ExpectedVersion::Any, vec![common::event(writer, seq * 10 + s)])
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut after = GlobalPosition::START;
    let mut seen = BTreeMap::new();
    loop {
        let page = store.read_all(after, &LogFilter::all(), 37).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in page {
            assert!(
                seen.insert(event.payload.clone(), (event.stream_id.clone(), event.version)).is_none(),
                "duplicate"
            );
        }
    }
    assert_eq!(seen.len(), writers * streams_per_writer * appends);
    let per_stream = seen.values().fold(BTreeMap::<_, BTreeSet<_>>::new(), |mut acc, (s, v)| {
        acc.entry(s.clone()).or_default().insert(v.get());
        acc
    });
    for (stream, versions) in per_stream {
        let expected: BTreeSet<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "versions of {stream} are not dense");
    }
}

/// Starts a transaction that inserts one event the way the store does and stays open until told to commit.
async fn open_slow_transaction(
    db: &composable_rust_testing::postgres_fixture::PostgresTestDatabase,
    stream: &str,
) -> sqlx::PgConnection {
    let mut connection = sqlx::PgConnection::connect_with(&db.connect_options()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
    insert_like_the_store(&mut connection, stream, 1).await;
    connection
}

async fn insert_like_the_store(connection: &mut sqlx::PgConnection, stream: &str, version: i64) {
    sqlx::query(
        "INSERT INTO events (stream_id, version, global_position, event_type, codec, payload)
         VALUES ($1, $2, (pg_current_xact_id()::text::bigint << 20) + 1, 'Slow.v1', 'json', '\\x7b7d')",
    )
    .bind(stream)
    .bind(version)
    .execute(connection)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_not_skipped_by_a_reader_that_read_on() {
    let db = composable_rust_testing::postgres_fixture::PostgresTestDatabase::start().await;
    let mut config = composable_rust_postgres::PostgresConfig::from_options(db.connect_options());
    // Do not wait long for the slow transaction: this test commits it only after the early read.
    config.read_all_wait = Duration::from_millis(100);
    let store = PostgresEventStore::connect_with(config).await.unwrap();
    store.migrate().await.unwrap();
    // The slow writer takes its transaction id (and so its position) first...
    let mut slow = open_slow_transaction(&db, "slow-1").await;
    // ...then a fast writer commits a later position.
    let fast = StreamId::new("fast-1").unwrap();
    store.append(&fast, ExpectedVersion::NoStream, vec![common::event(1, 1)]).await.unwrap();

    // A reader now must not see the fast event yet: showing it would let it checkpoint past the slow one.
    let early = store.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    assert!(early.is_empty(), "the reader saw {early:?} while an older transaction was still open");

    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let events = store.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    let streams: Vec<_> = events.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["slow-1", "fast-1"], "the log is in commit-safe position order");
    assert!(events[0].position < events[1].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_newest_first_read_shows_no_event_above_a_transaction_still_open_and_waits_for_it_briefly() {
    let db = composable_rust_testing::postgres_fixture::PostgresTestDatabase::start().await;
    let mut config = composable_rust_postgres::PostgresConfig::from_options(db.connect_options());
    config.read_all_wait = Duration::from_millis(100);
    let store = Arc::new(PostgresEventStore::connect_with(config).await.unwrap());
    store.migrate().await.unwrap();
    let older = StreamId::new("older-1").unwrap();
    store.append(&older, ExpectedVersion::NoStream, vec![common::event(0, 0)]).await.unwrap();
    // The slow writer takes its position first, then a fast writer commits a later one.
    let mut slow = open_slow_transaction(&db, "slow-1").await;
    let fast = StreamId::new("fast-1").unwrap();
    store.append(&fast, ExpectedVersion::NoStream, vec![common::event(1, 1)]).await.unwrap();

    // Held back for longer than `read_all_wait`: the page starts below the open transaction, so a reader that
    // pages on from it can never miss the slow event.
    let held = store.read_log(LogCursor::Newest, &LogFilter::all(), 10).await.unwrap();
    let streams: Vec<_> = held.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["older-1"], "a newest-first read showed an event above a transaction still open");

    // Committed within `read_all_wait`: the read waits for it and starts at the newest event.
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.read_log(LogCursor::Newest, &LogFilter::all(), 10).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let page = reader.await.unwrap().unwrap();
    let streams: Vec<_> = page.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["fast-1", "slow-1", "older-1"], "newest first, once the older transaction committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_sees_every_event_exactly_once_despite_slow_concurrent_transactions() {
    let (store, db) = common::migrated_store().await;
    let db = Arc::new(db);
    let (slow_writers, slow_each, fast_writers, fast_each) = (4, 5, 4, 40);
    let expected_total = slow_writers * slow_each + fast_writers * fast_each;

    let mut writers = Vec::new();
    for writer in 0..slow_writers {
        let db = Arc::clone(&db);
        writers.push(tokio::spawn(async move {
            let mut connection = sqlx::PgConnection::connect_with(&db.connect_options()).await.unwrap();
            for seq in 0..slow_each {
                sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
                insert_like_the_store(&mut connection, &format!("slow-{writer}"), seq as i64 + 1).await;
                // Hold the position while fast writers commit later ones.
                let sleep = 0.02 + 0.02 * ((writer + seq) % 4) as f64;
                sqlx::query("SELECT pg_sleep($1)").bind(sleep).execute(&mut connection).await.unwrap();
                sqlx::query("COMMIT").execute(&mut connection).await.unwrap();
            }
        }));
    }
    for writer in 0..fast_writers {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for seq in 0..fast_each {
                let stream = StreamId::new(format!("fast-{writer}-{}", seq % 3)).unwrap();
                store.append(&stream, ExpectedVersion::Any, vec![common::event(writer, seq)]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    // The reader tails from its checkpoint in small pages, as a projection would.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut pages = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.len() < expected_total && Instant::now() < deadline {
                let after = store.load_checkpoint("gap-test").await.unwrap().unwrap_or(GlobalPosition::START);
                let page = store.read_all(after, &LogFilter::all(), 7).await.unwrap();
                let Some(last) = page.last().map(|e| e.position) else {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    continue;
                };
                for event in page {
                    assert!(event.position > after);
                    let key = (event.stream_id.to_string(), event.version);
                    assert!(seen.insert(key.clone()), "{key:?} was delivered twice");
                }
                store.save_checkpoint("gap-test", last).await.unwrap();
                pages += 1;
            }
            (seen, pages)
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    let (seen, pages) = reader.await.unwrap();
    assert_eq!(seen.len(), expected_total, "the reader missed events that committed behind its checkpoint");
    assert!(pages > 10, "the reader should have tailed while writers were running");
}

#[tokio::test]
async fn an_open_transaction_in_another_database_does_not_hold_back_the_global_log() {
    let (store, _db) = common::migrated_store().await;
    // A writing transaction (it has an xid) on another database of the same cluster, left open.
    let other = composable_rust_testing::postgres_fixture::PostgresTestDatabase::start().await;
    let mut elsewhere = sqlx::PgConnection::connect_with(&other.connect_options()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut elsewhere).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut elsewhere).await.unwrap();

    let stream = StreamId::new("order-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![common::event(0, 0)]).await.unwrap();
    let started = Instant::now();
    let events = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
    assert_eq!(events.len(), 1, "an unrelated database's transaction hid the event");
    assert!(started.elapsed() < Duration::from_secs(1), "read_all waited for an unrelated transaction");
    sqlx::query("ROLLBACK").execute(&mut elsewhere).await.unwrap();
}
