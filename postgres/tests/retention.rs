//! Retention on PostgreSQL with least privilege (migration 0006): the application role can never remove or change
//! events, the retention role can, only through `events_retention_remove`, which keeps every stream's last
//! event and every event above a snapshot (unless the category is replay-free) and writes the audit row in the
//! same transaction. Each test has its own database and its own roles (`retention_roles`).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test the same way

mod common;
mod retention_roles;

use std::collections::BTreeMap;

use composable_rust_core::backend::{EventLog, EventRetention, SnapshotStore};
use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, RemovalBatch, RetentionRunId, Snapshot,
    StreamId, StreamRange, StreamRemoval, Version,
};
use retention_roles::RetentionDatabase;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

const REMOVE: &str = "SELECT removed, already_removed, horizon, refused_stream, refused_version, refused_reason, \
     refused_at FROM events_retention_remove($1, 'tester', 'max-age 30 days', NULL, $2::text[], $3::bigint[], $4::boolean[])";

/// One event to remove: stream, version, replay-free.
type Target<'a> = (&'a str, i64, bool);

/// What one call of the removal function answered.
#[derive(Debug, PartialEq)]
struct Outcome {
    removed: i64,
    already_removed: i64,
    horizon: Option<i64>,
    /// Stream, version, reason and the version the reason refers to.
    refused: Option<(String, i64, String, Option<i64>)>,
}

/// Calls the removal function on `connection`.
async fn remove(connection: &mut PgConnection, run: Uuid, targets: &[Target<'_>]) -> Result<Outcome, sqlx::Error> {
    let streams: Vec<&str> = targets.iter().map(|t| t.0).collect();
    let versions: Vec<i64> = targets.iter().map(|t| t.1).collect();
    let replay_free: Vec<bool> = targets.iter().map(|t| t.2).collect();
    let row =
        sqlx::query(REMOVE).bind(run).bind(&streams).bind(&versions).bind(&replay_free).fetch_one(connection).await?;
    let refused = row
        .get::<Option<String>, _>(3)
        .map(|stream| (stream, row.get::<i64, _>(4), row.get::<String, _>(5), row.get::<Option<i64>, _>(6)));
    Ok(Outcome { removed: row.get(0), already_removed: row.get(1), horizon: row.get(2), refused })
}

fn refusal(stream: &str, version: i64, reason: &str, at: Option<i64>) -> Option<(String, i64, String, Option<i64>)> {
    Some((stream.to_owned(), version, reason.to_owned(), at))
}

fn sqlstate(error: &sqlx::Error) -> String {
    error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned()).unwrap_or_default()
}

/// Appends `n` events to `stream` as the application.
async fn stream_of(db: &RetentionDatabase, stream: &str, n: usize) -> StreamId {
    let id = StreamId::new(stream).unwrap();
    let events = (0..n).map(|seq| common::event(0, seq)).collect();
    db.app.append(&id, ExpectedVersion::NoStream, events).await.unwrap();
    id
}

async fn versions(db: &RetentionDatabase, stream: &StreamId) -> Vec<u64> {
    db.app.load_stream(stream, StreamRange::all()).await.unwrap().iter().map(|e| e.version.get()).collect()
}

async fn snapshot_at(db: &RetentionDatabase, stream: &StreamId, version: u64) {
    let snapshot = Snapshot {
        stream_id: stream.clone(),
        version: Version::new(version),
        schema_version: 1,
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        taken_at: chrono::Utc::now(),
    };
    db.app.save_snapshot(&snapshot).await.unwrap();
}

#[tokio::test]
async fn the_application_role_cannot_delete_update_truncate_or_call_the_removal() {
    let db = RetentionDatabase::start().await;
    let stream = stream_of(&db, "order-1", 3).await;
    snapshot_at(&db, &stream, 3).await;
    let mut app = db.app_connection().await;

    for statement in [
        "DELETE FROM events WHERE stream_id = 'order-1' AND version = 1",
        "UPDATE events SET payload = '\\x00' WHERE stream_id = 'order-1'",
        "TRUNCATE events",
        "DELETE FROM retention_runs",
        "INSERT INTO retention_runs (run_id, performed_by, started_at, finished_at, policy, batches, removed_events) \
         VALUES (gen_random_uuid(), 'me', now(), now(), 'forged', 1, 0)",
    ] {
        let err = sqlx::query(statement).execute(&mut app).await.unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{statement}: {err}");
    }
    let err = remove(&mut app, Uuid::new_v4(), &[("order-1", 1, true)]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "calling events_retention_remove: {err}");
    assert!(err.to_string().contains("events_retention_remove"), "{err}");

    // The setting the trigger checks is one any role may set; it opens nothing for a role that is not the owner.
    sqlx::query("SET composable.retention = 'removing'").execute(&mut app).await.unwrap();
    let err = sqlx::query("DELETE FROM events").execute(&mut app).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");

    assert_eq!(versions(&db, &stream).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_role_granted_delete_by_mistake_is_still_refused_by_the_trigger() {
    let db = RetentionDatabase::start().await;
    let stream = stream_of(&db, "order-1", 2).await;
    sqlx::query(&format!("GRANT ALL ON events TO {}", db.app_role)).execute(db.owner.pool()).await.unwrap();
    let mut app = db.app_connection().await;
    sqlx::query("SET composable.retention = 'removing'").execute(&mut app).await.unwrap();

    for statement in ["DELETE FROM events", "UPDATE events SET actor = 'x'", "TRUNCATE events"] {
        let err = sqlx::query(statement).execute(&mut app).await.unwrap_err();
        assert_eq!(sqlstate(&err), "23001", "{statement}: {err}"); // restrict_violation
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    assert_eq!(versions(&db, &stream).await, [1, 2]);
}

#[tokio::test]
async fn the_owner_deleting_directly_is_refused_too() {
    let db = RetentionDatabase::start().await;
    let stream = stream_of(&db, "order-1", 2).await;
    let mut owner = db.owner_connection().await;
    for statement in ["DELETE FROM events WHERE version = 1", "UPDATE events SET actor = 'x'", "TRUNCATE events"] {
        let err = sqlx::query(statement).execute(&mut owner).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    assert_eq!(versions(&db, &stream).await, [1, 2]);
}

#[tokio::test]
async fn the_retention_role_cannot_delete_directly() {
    let db = RetentionDatabase::start().await;
    stream_of(&db, "order-1", 2).await;
    let mut retention = db.retention_connection().await;
    let err = sqlx::query("DELETE FROM events WHERE version = 1").execute(&mut retention).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[tokio::test]
async fn retention_removes_through_its_role_and_records_who_when_and_what() {
    let db = RetentionDatabase::start().await;
    let order = stream_of(&db, "order-1", 5).await;
    let invoice = stream_of(&db, "invoice-7", 2).await;
    snapshot_at(&db, &order, 3).await;
    snapshot_at(&db, &invoice, 2).await;
    let stored = db.app.load_stream(&order, StreamRange::all()).await.unwrap();
    let invoice_events = db.app.load_stream(&invoice, StreamRange::all()).await.unwrap();
    let mut retention = db.retention_connection().await;
    let run = Uuid::new_v4();

    let first = remove(&mut retention, run, &[("order-1", 1, false), ("order-1", 2, false)]).await.unwrap();
    let second_position = i64::try_from(stored[1].position.get()).unwrap();
    assert_eq!(first, Outcome { removed: 2, already_removed: 0, horizon: Some(second_position), refused: None });
    // A second batch of the same run: a retried one (versions 1, 2 are gone) and version 3 (at the snapshot).
    let second = remove(
        &mut retention,
        run,
        &[("order-1", 1, false), ("order-1", 2, false), ("order-1", 3, false), ("invoice-7", 1, false)],
    )
    .await
    .unwrap();
    assert_eq!((second.removed, second.already_removed), (2, 2), "versions already gone are skipped and counted");
    assert_eq!(versions(&db, &order).await, [4, 5]);
    assert_eq!(versions(&db, &invoice).await, [2]);
    assert_eq!(db.app.stream_version(&order).await.unwrap(), Version::new(5));

    // Any role reads the audit and the horizon through the functions; only the owner reads the table itself.
    let mut app = db.app_connection().await;
    let row = sqlx::query(
        "SELECT performed_by, policy, batches, removed_events, removed_by_category::text, horizon, \
                finished_at >= started_at, actor, already_removed FROM events_retention_runs()",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), db.retention_role, "who: the role that logged in");
    assert_eq!(row.get::<String, _>(1), "max-age 30 days");
    assert_eq!(row.get::<i64, _>(2), 2);
    assert_eq!(row.get::<i64, _>(3), 4);
    let by_category: BTreeMap<String, i64> = serde_json::from_str(&row.get::<String, _>(4)).unwrap();
    assert_eq!(by_category, BTreeMap::from([("invoice".to_owned(), 1), ("order".to_owned(), 3)]));
    let horizon: Option<i64> = sqlx::query_scalar("SELECT events_removal_horizon()").fetch_one(&mut app).await.unwrap();
    assert_eq!(row.get::<Option<i64>, _>(5), horizon);
    // invoice-7 was appended after order-1, so its first event holds the greatest removed position.
    assert_eq!(horizon, Some(i64::try_from(invoice_events[0].position.get()).unwrap()));
    assert!(row.get::<bool, _>(6));
    assert_eq!((row.get::<String, _>(7), row.get::<i64, _>(8)), ("tester".to_owned(), 2));
    let removed: i64 = sqlx::query_scalar("SELECT events_removed_between(0, $1, '{}', 'order-')")
        .bind(i64::MAX)
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(removed, 3, "what is left of removed events: position, stream and type");
}

#[tokio::test]
async fn the_last_event_of_a_stream_is_never_removed() {
    let db = RetentionDatabase::start().await;
    let stream = stream_of(&db, "audit-1", 3).await;
    let mut retention = db.retention_connection().await;
    let outcome =
        remove(&mut retention, Uuid::new_v4(), &[("audit-1", 1, true), ("audit-1", 2, true), ("audit-1", 3, true)])
            .await
            .unwrap();
    assert_eq!(outcome.refused, refusal("audit-1", 3, "last_event", None));
    assert_eq!((outcome.removed, outcome.horizon), (0, None));
    let outcome = remove(&mut retention, Uuid::new_v4(), &[("audit-1", 4, true)]).await.unwrap();
    assert_eq!(outcome.refused, refusal("audit-1", 4, "beyond_stream", Some(3)));
    assert_eq!(versions(&db, &stream).await, [1, 2, 3], "a refused batch removes nothing");
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events_retention_runs()").fetch_one(db.owner.pool()).await.unwrap();
    assert_eq!(runs, 0, "a refused batch records nothing");
}

#[tokio::test]
async fn events_above_the_snapshot_stay_unless_the_category_is_replay_free() {
    let db = RetentionDatabase::start().await;
    let order = stream_of(&db, "order-1", 4).await;
    let audit = stream_of(&db, "audit-1", 4).await;
    let mut retention = db.retention_connection().await;

    // No snapshot: nothing of order-1 may go.
    let outcome = remove(&mut retention, Uuid::new_v4(), &[("order-1", 1, false)]).await.unwrap();
    assert_eq!(outcome.refused, refusal("order-1", 1, "no_snapshot", None));
    // A snapshot at 2: versions 1 and 2 may go, 3 not; the refusal names the first stream, lowest version.
    snapshot_at(&db, &order, 2).await;
    let outcome = remove(
        &mut retention,
        Uuid::new_v4(),
        &[("order-1", 1, false), ("order-1", 4, false), ("order-1", 3, false), ("audit-1", 4, true)],
    )
    .await
    .unwrap();
    assert_eq!(outcome.refused, refusal("order-1", 3, "above_snapshot", Some(2)));
    assert_eq!(versions(&db, &order).await, [1, 2, 3, 4], "a refused batch removes nothing");
    remove(&mut retention, Uuid::new_v4(), &[("order-1", 1, false), ("order-1", 2, false)]).await.unwrap();
    assert_eq!(versions(&db, &order).await, [3, 4]);
    // Replay-free: any event but the last, snapshot or not.
    remove(&mut retention, Uuid::new_v4(), &[("audit-1", 1, true), ("audit-1", 3, true)]).await.unwrap();
    assert_eq!(versions(&db, &audit).await, [2, 4]);
}

#[tokio::test]
async fn a_malformed_batch_is_refused_with_a_reason() {
    let db = RetentionDatabase::start().await;
    stream_of(&db, "audit-1", 3).await;
    let mut retention = db.retention_connection().await;
    let err = sqlx::query(REMOVE)
        .bind(Uuid::new_v4())
        .bind(vec!["audit-1", "audit-1"])
        .bind(vec![1_i64])
        .bind(vec![true, true])
        .fetch_one(&mut retention)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023", "{err}");
    assert!(err.to_string().contains("one stream, version and replay-free flag per event"), "{err}");
    let too_many = vec![("audit-1", 1, true); 100_001];
    let err = remove(&mut retention, Uuid::new_v4(), &too_many).await.unwrap_err();
    assert!(err.to_string().contains("at most 100000 events"), "{err}");
}

#[tokio::test]
async fn a_stale_expectation_after_removal_is_still_a_conflict() {
    let db = RetentionDatabase::start().await;
    let order = stream_of(&db, "order-1", 6).await;
    snapshot_at(&db, &order, 5).await;
    let mut retention = db.retention_connection().await;
    // Versions 1, 2 and 4 go (a tag-based policy leaves holes): 3, 5, 6 stay.
    remove(&mut retention, Uuid::new_v4(), &[("order-1", 1, false), ("order-1", 2, false), ("order-1", 4, false)])
        .await
        .unwrap();

    for stale in
        [ExpectedVersion::NoStream, ExpectedVersion::Exact(Version::new(3)), ExpectedVersion::Exact(Version::new(1))]
    {
        let err = db.app.append(&order, stale, vec![common::event(1, 0)]).await.unwrap_err();
        match err {
            EventStoreError::ConcurrencyConflict { actual, .. } => assert_eq!(actual, Version::new(6), "{stale:?}"),
            other => panic!("{stale:?}: expected a conflict, got {other}"),
        }
    }
    assert_eq!(versions(&db, &order).await, [3, 5, 6]);
    let written =
        db.app.append(&order, ExpectedVersion::Exact(Version::new(6)), vec![common::event(1, 1)]).await.unwrap();
    assert_eq!(written.stream_version, Version::new(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_during_a_removal_are_kept_and_versions_stay_dense_above_the_cut() {
    let db = RetentionDatabase::start().await;
    let streams: Vec<StreamId> = (0..4).map(|i| StreamId::new(format!("order-{i}")).unwrap()).collect();
    for stream in &streams {
        let events = (0..500).map(|seq| common::event(0, seq)).collect();
        db.app.append(stream, ExpectedVersion::NoStream, events).await.unwrap();
        snapshot_at(&db, stream, 500).await;
    }

    // Writers append one event at a time at exact versions while retention removes versions 1..=499 of every
    // stream in batches of 100.
    let mut writers = Vec::new();
    for stream in streams.clone() {
        let app = db.app.clone();
        writers.push(tokio::spawn(async move {
            for seq in 0..100_u64 {
                let expected = ExpectedVersion::Exact(Version::new(500 + seq));
                app.append(&stream, expected, vec![common::event(1, usize::try_from(seq).unwrap())]).await.unwrap();
            }
        }));
    }
    let mut retention = db.retention_connection().await;
    let run = Uuid::new_v4();
    let mut removed = 0;
    for version in (1..500).step_by(25) {
        let targets: Vec<(String, i64, bool)> = streams
            .iter()
            .flat_map(|s| (version..(version + 25).min(500)).map(move |v| (s.to_string(), v, false)))
            .collect();
        let targets: Vec<Target<'_>> = targets.iter().map(|(s, v, r)| (s.as_str(), *v, *r)).collect();
        removed += remove(&mut retention, run, &targets).await.unwrap().removed;
    }
    for writer in writers {
        writer.await.unwrap();
    }

    assert_eq!(removed, 4 * 499);
    for stream in &streams {
        assert_eq!(versions(&db, stream).await, (500..=600).collect::<Vec<u64>>(), "{stream}");
    }
    let audited: i64 = sqlx::query_scalar("SELECT removed_events FROM events_retention_runs()")
        .fetch_one(db.owner.pool())
        .await
        .unwrap();
    assert_eq!(audited, 4 * 499);
}

#[tokio::test]
async fn the_least_privilege_roles_can_open_a_migrated_store() {
    let db = RetentionDatabase::start().await;
    // What `composable_rust::config::open` and the admin CLI do at start: neither role may create tables.
    db.app.migrate().await.unwrap();
    db.retention.migrate().await.unwrap();
    let mut app = db.app_connection().await;
    let err = sqlx::query("CREATE TABLE intruder (a int)").execute(&mut app).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[tokio::test]
async fn the_store_says_which_role_may_remove_and_the_application_reads_what_was_removed() {
    let db = RetentionDatabase::start().await;
    let stream = stream_of(&db, "audit-1", 3).await;
    let first = db.app.load_stream(&stream, StreamRange::all()).await.unwrap()[0].position;
    let batch = RemovalBatch {
        run: RetentionRunId::generate(),
        actor: "ops on call".into(),
        policy: "audit: max age 30 days (replay-free)".into(),
        archive: Some("/backups/audit.jsonl".into()),
        streams: vec![StreamRemoval { stream_id: stream.clone(), versions: vec![Version::new(1)], replay_free: true }],
    };

    let err = db.app.remove_events(&batch).await.unwrap_err();
    assert!(matches!(err, EventStoreError::Backend { .. }), "{err:?}");
    let message = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(message.contains(&format!("the role {} may not remove events", db.app_role)), "{message}");
    assert!(message.contains("granted EXECUTE on events_retention_remove"), "{message}");
    assert_eq!(versions(&db, &stream).await, [1, 2, 3]);

    let outcome = db.retention.remove_events(&batch).await.unwrap();
    assert_eq!((outcome.removed, outcome.already_removed), (1, 0));
    // The application reads the horizon, the counts and the audit without any privilege on the retention tables.
    assert_eq!(db.app.removal_horizon().await.unwrap(), Some(first));
    assert_eq!(db.app.first_retained_version(&stream).await.unwrap(), Some(Version::new(2)));
    let all = LogFilter::all();
    assert_eq!(db.app.removed_between(GlobalPosition::START, first, &all).await.unwrap(), 1);
    assert_eq!(db.app.removed_between(first, GlobalPosition::new(u64::MAX), &all).await.unwrap(), 0);
    assert_eq!(
        db.app.removed_between(GlobalPosition::START, first, &LogFilter::all().category("order")).await.unwrap(),
        0
    );
    let runs = db.app.retention_runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].id, runs[0].actor.as_str(), runs[0].events_removed, runs[0].batches),
        (batch.run, "ops on call", 1, 1)
    );
    assert_eq!(runs[0].archive.as_deref(), Some("/backups/audit.jsonl"));
    assert_eq!(runs[0].policy, batch.policy);
}

#[tokio::test]
async fn the_audit_cannot_be_changed_or_removed_even_by_the_owner() {
    let db = RetentionDatabase::start().await;
    stream_of(&db, "audit-1", 3).await;
    let mut retention = db.retention_connection().await;
    let run = Uuid::new_v4();
    remove(&mut retention, run, &[("audit-1", 1, true)]).await.unwrap();
    // A second batch of the run updates its row: the function's own update passes.
    assert_eq!(remove(&mut retention, run, &[("audit-1", 2, true)]).await.unwrap().removed, 1);

    // Not even the owner (the application's role has no privilege on these tables at all). Only the function, as
    // the owner with the setting it turns on, may update its run's row; the owner could do that too, or drop the
    // trigger: the owner is trusted by construction (docs/decisions.md).
    let mut owner = db.owner_connection().await;
    for statement in [
        "UPDATE retention_runs SET removed_events = 0",
        "DELETE FROM retention_runs",
        "TRUNCATE retention_runs, retention_removed",
        "UPDATE retention_removed SET stream_id = 'x'",
        "DELETE FROM retention_removed",
    ] {
        let err = sqlx::query(statement).execute(&mut owner).await.unwrap_err();
        assert!(err.to_string().contains("the retention audit is append-only"), "{statement}: {err}");
    }
    let (batches, removed): (i64, i64) = sqlx::query_as("SELECT batches, removed_events FROM events_retention_runs()")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!((batches, removed), (2, 2));
}
