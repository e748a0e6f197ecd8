//! PostgreSQL specifics of tags, reads by query and conditional appends, beyond the shared conformance
//! cases: conditional appends wait only for appends that share a tag with them (per-tag advisory locks), a
//! plain append of a tagged event never slips in between a condition's horizon and the conditional append,
//! and tags holding unusual but valid text round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure fails the test")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::backend::EventLog;
use composable_rust_core::{
    AppendCondition, AppendResult, AtomicAppend, EventQuery, EventStoreError, ExpectedVersion, GlobalPosition,
    LogFilter, NewEvent, StreamId, StreamRange, Tag,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use sqlx::{Connection, PgConnection};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

/// The advisory lock namespace of tag locks (`migrations/postgres/0003_tags.sql` and `0004_append_function.sql`: ASCII 'tags').
const TAG_LOCKS: i32 = 1_952_540_531;

/// Long enough that an append that is not blocked has surely finished, even on a loaded machine.
const GENEROUS: Duration = Duration::from_secs(30);

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn tagged(writer: usize, seq: usize, tag: &Tag) -> NewEvent {
    common::event(writer, seq).with_tags([tag.clone()])
}

/// "This tag must be new": the condition of a conditional append that claims `tag`.
fn claim(stream_id: &str, tag: &Tag) -> AtomicAppend {
    AtomicAppend::new()
        .stream(stream(stream_id), ExpectedVersion::Any, vec![tagged(0, 0, tag)])
        .condition(AppendCondition::none_exist(EventQuery::tagged([tag.clone()])))
}

/// A connection of its own, in a transaction holding the exclusive lock of `tag`, as an in-flight
/// conditional append on `tag` holds it.
async fn hold_exclusive_lock(db: &PostgresTestDatabase, tag: &Tag) -> PgConnection {
    let mut connection = PgConnection::connect_with(&db.connect_options()).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut connection).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(TAG_LOCKS)
        .bind(tag.as_str())
        .execute(&mut connection)
        .await
        .unwrap();
    connection
}

/// Waits until `sessions` sessions of this database wait for a tag lock (the appends under test are
/// blocked on it).
async fn until_tag_locks_are_awaited(store: &PostgresEventStore, sessions: i64) {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted \
               AND l.objsubid = 2 AND l.classid = $1::oid",
        )
        .bind(i64::from(TAG_LOCKS))
        .fetch_one(store.pool())
        .await
        .unwrap();
        if waiting >= sessions {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no append waits for the held tag lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn finishes<T>(task: JoinHandle<T>, what: &str) -> T {
    tokio::time::timeout(GENEROUS, task).await.unwrap_or_else(|_| panic!("{what} did not finish")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conditional_append_waits_only_for_an_append_holding_one_of_its_tags() {
    let (store, db) = common::migrated_store().await;
    let (a, b) = (Tag::of("course", "a"), Tag::of("course", "b"));
    let holder = hold_exclusive_lock(&db, &a).await;

    // Tag b is free: its conditional append completes while a's lock is held.
    let other = tokio::spawn({
        let store = store.clone();
        let b = b.clone();
        async move { store.append_atomic(claim("course-b", &b)).await }
    });
    finishes(other, "a conditional append on another tag").await.unwrap();

    // Tag a is held: a conditional append on it, and a plain append of an event tagged with it, both wait.
    let conditional = tokio::spawn({
        let store = store.clone();
        let a = a.clone();
        async move { store.append_atomic(claim("course-a", &a)).await }
    });
    until_tag_locks_are_awaited(&store, 1).await;
    let plain = tokio::spawn({
        let store = store.clone();
        let a = a.clone();
        async move { store.append(&stream("log-a"), ExpectedVersion::Any, vec![tagged(1, 0, &a)]).await }
    });
    // Plain and untagged appends never wait for a tag lock.
    store.append(&stream("untagged"), ExpectedVersion::Any, vec![common::event(2, 0)]).await.unwrap();
    let untagged_atomic =
        AtomicAppend::new().stream(stream("untagged"), ExpectedVersion::Any, vec![common::event(2, 1)]);
    store.append_atomic(untagged_atomic).await.unwrap();
    until_tag_locks_are_awaited(&store, 2).await;
    assert!(!conditional.is_finished(), "the conditional append on the held tag went through");
    assert!(!plain.is_finished(), "the plain append of an event with the held tag went through");
    let stored = store.read_query(&EventQuery::tagged([a.clone()]), GlobalPosition::START, 10).await.unwrap();
    assert!(stored.events.is_empty(), "nothing tagged with the held tag is written yet");

    // Released: both go through, in some order; the claim fails if the plain event came first.
    holder.close().await.unwrap();
    let claimed = finishes(conditional, "the conditional append on the released tag").await;
    finishes(plain, "the plain append on the released tag").await.unwrap();
    let log = store.read_query(&EventQuery::tagged([a.clone()]), GlobalPosition::START, 10).await.unwrap();
    assert_eq!(log.events.len(), usize::from(claimed.is_ok()) + 1);
    match claimed {
        Ok(_) => assert_eq!(log.events[0].stream_id, stream("course-a"), "the claim committed first"),
        Err(EventStoreError::ConditionFailed { position, .. }) => assert_eq!(position, log.events[0].position),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// One committed conditional append: what it read up to and where its event landed.
#[derive(Debug)]
struct Committed {
    tag: Tag,
    after: GlobalPosition,
    position: GlobalPosition,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_append_of_a_tagged_event_never_slips_between_a_condition_and_its_append() {
    let (store, _db) = common::migrated_store().await;
    let store = Arc::new(store);
    let (rounds, tags, plain_writers) = (40, 3, 2);
    let mut committed = Vec::new();
    let mut failed = 0;
    for round in 0..rounds {
        // Per tag: one decision (read, then append under its condition) racing plain appends of the tag.
        let barrier = Arc::new(Barrier::new(tags * (1 + plain_writers)));
        let mut decisions = Vec::new();
        let mut plains = Vec::new();
        for t in 0..tags {
            let tag = Tag::of("account", t);
            for writer in 0..plain_writers {
                let (store, barrier, tag) = (Arc::clone(&store), Arc::clone(&barrier), tag.clone());
                plains.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let events = vec![tagged(writer, round, &tag), tagged(writer, round, &Tag::new("noise"))];
                    store.append(&stream(&format!("deposits-{t}-{writer}")), ExpectedVersion::Any, events).await
                }));
            }
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            decisions.push(tokio::spawn(async move {
                let query = EventQuery::tagged([tag.clone()]);
                barrier.wait().await;
                let page = store.read_query(&query, GlobalPosition::START, 10_000).await.unwrap();
                let condition = page.condition(query);
                let after = condition.after;
                let append = AtomicAppend::new()
                    .stream(stream(&format!("account-{t}")), ExpectedVersion::Any, vec![tagged(9, round, &tag)])
                    .condition(condition);
                let result: Result<Vec<AppendResult>, EventStoreError> = store.append_atomic(append).await;
                (tag, after, result)
            }));
        }
        for plain in plains {
            plain.await.unwrap().unwrap();
        }
        for decision in decisions {
            match decision.await.unwrap() {
                (tag, after, Ok(results)) => {
                    committed.push(Committed { tag, after, position: results[0].positions[0] })
                }
                (_, _, Err(EventStoreError::ConditionFailed { .. })) => failed += 1,
                (_, _, Err(other)) => panic!("unexpected error: {other}"),
            }
        }
    }
    assert!(!committed.is_empty(), "no conditional append committed in {rounds} rounds");

    // The invariant, on the stored log: between a committed decision's horizon and its own event lies no
    // event it would have had to see.
    let mut by_tag: BTreeMap<Tag, Vec<GlobalPosition>> = BTreeMap::new();
    for t in 0..tags {
        let tag = Tag::of("account", t);
        let page = store.read_query(&EventQuery::tagged([tag.clone()]), GlobalPosition::START, 100_000).await.unwrap();
        assert_eq!(page.events.len(), rounds * plain_writers + committed.iter().filter(|c| c.tag == tag).count());
        by_tag.insert(tag, page.events.iter().map(|e| e.position).collect());
    }
    for decision in &committed {
        let slipped: Vec<&GlobalPosition> =
            by_tag[&decision.tag].iter().filter(|p| **p > decision.after && **p < decision.position).collect();
        assert!(slipped.is_empty(), "{decision:?}: events at {slipped:?} slipped in between, unseen by its check");
    }
    eprintln!("{} decisions committed, {failed} refused by their condition", committed.len());
}

#[tokio::test]
async fn tags_with_unusual_valid_text_round_trip_through_every_read() {
    let (store, _db) = common::migrated_store().await;
    let unusual = [
        Tag::new(r#"quote:"double" and 'single'"#),
        Tag::new("comma,separated,{braces}"),
        Tag::new(r"back\slash\\ and \N"),
        Tag::new("NULL"),
        Tag::new(" spaced  out "),
        Tag::new("ünïcødé:日本語:🦀"),
        Tag::new("x".repeat(Tag::MAX_LEN)),
        Tag::new(format!("{}é", "y".repeat(Tag::MAX_LEN - 2))),
    ];
    for tag in &unusual {
        tag.validate().unwrap();
    }
    let all_at_once = common::event(1, 0).with_tags(unusual.iter().cloned());
    let one_each: Vec<NewEvent> = unusual.iter().enumerate().map(|(i, tag)| tagged(2, i, tag)).collect();
    let s1 = stream("unusual-1");
    store.append(&s1, ExpectedVersion::NoStream, vec![all_at_once.clone()]).await.unwrap();
    let atomic = AtomicAppend::new().stream(stream("unusual-2"), ExpectedVersion::NoStream, one_each.clone());
    store.append_atomic(atomic).await.unwrap();

    let written: Vec<&NewEvent> = std::iter::once(&all_at_once).chain(&one_each).collect();
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    assert_eq!(log.len(), written.len());
    for (new, stored) in written.iter().zip(&log) {
        assert_eq!(stored.tags, new.tags, "read_all returns the tags as appended, in order");
        assert!(new.is_stored_as(stored));
        assert_eq!(store.load_event(new.id).await.unwrap().as_ref(), Some(stored), "load_event");
    }
    let loaded = store.load_stream(&s1, StreamRange::all()).await.unwrap();
    assert_eq!(loaded[0].tags, all_at_once.tags, "a stream load returns the tags");
    for (i, tag) in unusual.iter().enumerate() {
        let page = store.read_query(&EventQuery::tagged([tag.clone()]), GlobalPosition::START, 10).await.unwrap();
        assert_eq!(page.events, vec![log[0].clone(), log[i + 1].clone()], "the events tagged {tag:?}");
    }
    let both = EventQuery::tagged([unusual[0].clone(), unusual[3].clone()]);
    let page = store.read_query(&both, GlobalPosition::START, 10).await.unwrap();
    assert_eq!(page.events, log[..1], "only the event carrying both tags");
    // A retry of either append finds the stored tags equal to its own and returns the original result.
    store.append(&s1, ExpectedVersion::NoStream, vec![all_at_once]).await.unwrap();
    let retry = AtomicAppend::new().stream(stream("unusual-2"), ExpectedVersion::NoStream, one_each);
    store.append_atomic(retry).await.unwrap();
    // Conditions on them hold and fail like any other.
    let refused = store.append_atomic(claim("unusual-3", &unusual[6])).await.unwrap_err();
    assert!(matches!(refused, EventStoreError::ConditionFailed { position, .. } if position == log[0].position));
}
