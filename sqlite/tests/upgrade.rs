//! Upgrading old files: a database at schema version 2 (migrations 1 and 2, applied and recorded as
//! sqlx's migrator does), 3 or 4 is filled through SQL, then opened with this build. Migration 3 must give
//! every event a unique id, migration 4 must add tags (none on the old events) and their index, migration 5
//! the indexes of the global log's filters, and none may change anything else.

// The helpers below are test code too; clippy's test allowances only cover `#[test]` functions.
#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::{EventLog, SnapshotStore, StoreLifecycle, SubscriptionStore};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use composable_rust_core::{
    CodecId, EventId, EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter, Metadata, NewEvent,
    StreamId, StreamRange, Version,
};
use composable_rust_sqlite::SqliteEventStore;
use sqlx::migrate::{Migrate, Migration, MigrationType};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use uuid::Uuid;

/// The schema as it was before event ids: the migration files as sqlx embeds them (version, description
/// from the file name, SQL). Applied migrations are never edited, so these are the files of that time.
const MIGRATIONS_BEFORE_IDS: [(i64, &str, &str); 2] = [
    (1, "event store", include_str!("../../migrations/sqlite/0001_event_store.sql")),
    (2, "subscription leases", include_str!("../../migrations/sqlite/0002_subscription_leases.sql")),
];

/// Every stored row of every table as text (each column through `quote()`, so a NULL, a blob and an
/// integer stay distinct), in a fixed order. `events` lists the columns it had before ids.
const DUMPS: [(&str, &str); 7] = [
    (
        "events",
        "SELECT quote(global_position) || ',' || quote(stream_id) || ',' || quote(version) || ',' || \
         quote(event_type) || ',' || quote(codec) || ',' || quote(payload) || ',' || quote(correlation_id) || ',' \
         || quote(causation_id) || ',' || quote(actor) || ',' || quote(extra) || ',' || quote(recorded_at) \
         FROM events ORDER BY global_position",
    ),
    ("streams", "SELECT quote(stream_id) || ',' || quote(version) FROM streams ORDER BY stream_id"),
    (
        "snapshots",
        "SELECT quote(stream_id) || ',' || quote(version) || ',' || quote(schema_version) || ',' || quote(codec) \
         || ',' || quote(payload) || ',' || quote(taken_at) FROM snapshots ORDER BY stream_id",
    ),
    (
        "checkpoints",
        "SELECT quote(handler) || ',' || quote(position) || ',' || quote(updated_at) FROM checkpoints ORDER BY handler",
    ),
    (
        "subscription_leases",
        "SELECT quote(handler) || ',' || quote(owner) || ',' || quote(expires_at) FROM subscription_leases \
         ORDER BY handler",
    ),
    ("sqlite_sequence", "SELECT quote(name) || ',' || quote(seq) FROM sqlite_sequence ORDER BY name"),
    // The schema apart from what migrations 3 to 6 change on purpose: the events table gains columns
    // and indexes (its append-only triggers are recreated with the same text), the tag index is new,
    // with its own triggers, and retention (6) adds its tables and lets the delete triggers pass a
    // recorded removal.
    (
        "schema",
        "SELECT type || ' ' || name || ' ' || quote(sql) FROM sqlite_schema \
         WHERE name NOT IN ('events', 'events_event_id', 'events_event_type', 'events_category', \
         'events_correlation', 'events_actor', 'events_recorded_at', 'events_reject_delete') \
         AND tbl_name <> 'event_tags' \
         AND tbl_name NOT LIKE 'retention_%' ORDER BY type, name",
    ),
];

/// The indexes migration 5 adds to `events` (also left out of the `schema` dump above).
const QUERY_INDEXES: [&str; 5] =
    ["events_event_type", "events_category", "events_correlation", "events_actor", "events_recorded_at"];

const STREAM_EVENTS: [(&str, u64); 4] = [("order-1", 5), ("order-2", 3), ("account-7", 1500), ("a-stream-with-one", 1)];

async fn connect(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    options.connect().await.unwrap()
}

/// Writes a version-2 database at `path`: migrations 1 and 2 applied and recorded by sqlx, then events in
/// several streams (interleaved in the log, with and without each kind of metadata, two codecs), a
/// snapshot, a checkpoint and a subscription lease.
async fn create_file_before_event_ids(path: &Path) {
    let mut conn = connect(path).await;
    conn.ensure_migrations_table().await.unwrap();
    for (version, description, sql) in MIGRATIONS_BEFORE_IDS {
        let migration = Migration::new(version, description.into(), MigrationType::Simple, sql.into(), false);
        conn.apply(&migration).await.unwrap();
    }

    let mut tx = conn.begin().await.unwrap();
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    let total: u64 = STREAM_EVENTS.iter().map(|(_, n)| n).sum();
    let mut n = 0;
    while n < total {
        // Round robin over the streams that still have events to write, so streams interleave in the log.
        for (stream, len) in STREAM_EVENTS {
            let version = versions.entry(stream).or_default();
            if *version == len {
                continue;
            }
            *version += 1;
            n += 1;
            let (codec, payload) = if n % 2 == 0 {
                ("json", format!("{{\"n\":{n}}}").into_bytes())
            } else {
                ("bincode", n.to_le_bytes().to_vec())
            };
            sqlx::query(
                "INSERT INTO streams (stream_id, version) VALUES (?1, ?2) \
                 ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            )
            .bind(stream)
            .bind(i64::try_from(*version).unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO events (stream_id, version, event_type, codec, payload, correlation_id, causation_id, \
                 actor, extra, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(stream)
            .bind(i64::try_from(*version).unwrap())
            .bind(if n % 3 == 0 { "Counted.v1" } else { "Renamed.v2" })
            .bind(codec)
            .bind(payload)
            .bind((n % 2 == 0).then(|| Uuid::from_u128(u128::from(n) << 64 | 0xC0)))
            .bind((n % 3 == 0).then(|| Uuid::from_u128(u128::from(n) << 64 | 0xCA)))
            .bind((n % 5 != 0).then(|| format!("user-{}", n % 7)))
            .bind((n % 4 == 0).then(|| format!("{{\"seq\":{n}}}")))
            .bind(1_700_000_000_000_000_i64 + i64::try_from(n).unwrap() * 1_000)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at) \
         VALUES ('account-7', 1000, 2, 'bincode', x'0102030405', 1700000000123456)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO checkpoints (handler, position, updated_at) VALUES ('projector', 1200, 1700000000654321)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO subscription_leases (handler, owner, expires_at) VALUES ('mailer', 'owner-1', 42)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    conn.close().await.unwrap();
}

/// Every row of every table, by table ([`DUMPS`]).
async fn dump(path: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let mut conn = connect(path).await;
    let mut tables = BTreeMap::new();
    for (table, query) in DUMPS {
        tables.insert(table, sqlx::query_scalar(query).fetch_all(&mut conn).await.unwrap());
    }
    conn.close().await.unwrap();
    tables
}

/// The stored id of every event, in log order.
async fn stored_ids(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut conn = connect(path).await;
    let ids = sqlx::query_as("SELECT global_position, event_id FROM events ORDER BY global_position")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ids
}

async fn applied_migrations(path: &Path) -> Vec<i64> {
    let mut conn = connect(path).await;
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    versions
}

/// Fails naming the first row of `table` that differs, `-` before and `+` after the upgrade.
#[track_caller]
fn assert_same_rows(table: &str, before: &[String], after: &[String]) {
    if let Some(at) = (0..before.len().max(after.len())).find(|&i| before.get(i) != after.get(i)) {
        panic!(
            "the upgrade changed {table} ({} rows before, {} after); first difference at row {at}:\n- {}\n+ {}",
            before.len(),
            after.len(),
            before.get(at).map_or("(no row)", String::as_str),
            after.get(at).map_or("(no row)", String::as_str),
        );
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

#[tokio::test]
async fn opening_a_file_from_before_event_ids_gives_every_event_a_unique_id_and_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    create_file_before_event_ids(&path).await;
    assert_eq!(applied_migrations(&path).await, [1, 2], "the file starts at schema version 2");
    let before = dump(&path).await;
    let total: u64 = STREAM_EVENTS.iter().map(|(_, n)| n).sum();
    assert_eq!(before["events"].len() as u64, total);

    let store = SqliteEventStore::open(&path).await.unwrap();
    store.health_check().await.unwrap();
    let after = dump(&path).await;
    for (table, rows) in &before {
        assert_same_rows(table, rows, &after[table]);
    }

    // Every event got its own random (version 4) UUID.
    let ids = stored_ids(&path).await;
    assert_eq!(ids.len() as u64, total);
    let mut seen = HashSet::new();
    for (position, raw) in &ids {
        let id = Uuid::from_slice(raw).unwrap_or_else(|e| panic!("event {position}: the id is not 16 bytes: {e}"));
        assert_eq!(id.get_version_num(), 4, "event {position}: {id} is not a version 4 UUID");
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "event {position}: {id} has the wrong variant");
        assert!(seen.insert(id), "event {position}: the id {id} was given twice");
    }

    // Loads return the ids, and each old event is found by its id.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10_000).await.unwrap();
    let log_ids: Vec<Uuid> = log.iter().map(|e| e.id.as_uuid()).collect();
    assert_eq!(log_ids, ids.iter().map(|(_, raw)| Uuid::from_slice(raw).unwrap()).collect::<Vec<_>>());
    for event in &log {
        let found = store.load_event(event.id).await.unwrap();
        assert_eq!(found.as_ref(), Some(event), "load_event({}) must return the old event", event.id);
    }
    let order = store.load_stream(&stream("order-1"), StreamRange::all()).await.unwrap();
    let in_log: Vec<_> = log.iter().filter(|e| e.stream_id == stream("order-1")).cloned().collect();
    assert_eq!(order, in_log, "a stream load returns the same events, ids included, as the log");
    assert_eq!(store.load_snapshot(&stream("account-7")).await.unwrap().unwrap().version, Version::new(1000));
    assert_eq!(store.load_checkpoint("projector").await.unwrap(), Some(GlobalPosition::new(1200)));

    // Appends go on where the old file stopped, idempotently.
    let new = NewEvent::new("Counted.v1", CodecId::Json, b"{\"n\":0}".to_vec(), Metadata::default());
    let appended =
        store.append(&stream("order-1"), ExpectedVersion::Exact(Version::new(5)), vec![new.clone()]).await.unwrap();
    assert_eq!(appended.stream_version, Version::new(6));
    assert!(appended.positions[0] > log.last().unwrap().position, "positions continue after the old ones");
    let retried = store.append(&stream("order-1"), ExpectedVersion::Exact(Version::new(5)), vec![new.clone()]).await;
    assert_eq!(retried.unwrap(), appended, "a retry on the upgraded file returns the original result");
    assert_eq!(store.load_event(new.id).await.unwrap().unwrap().version, Version::new(6));
    let reused = NewEvent::new("Counted.v1", CodecId::Json, b"{}".to_vec(), Metadata::default()).with_id(log[0].id);
    match store.append(&stream("order-2"), ExpectedVersion::Any, vec![reused]).await {
        Err(EventStoreError::EventIdInUse { id, stream_id, version, .. }) => {
            assert_eq!((id, stream_id, version), (log[0].id, log[0].stream_id.clone(), log[0].version));
        }
        other => panic!("reusing an old event's id must fail with EventIdInUse, got {other:?}"),
    }
    store.close().await.unwrap();

    // Still append-only: the triggers the backfill had to drop are back.
    let mut conn = connect(&path).await;
    for statement in ["UPDATE events SET event_id = randomblob(16)", "DELETE FROM events"] {
        let error = sqlx::query(statement).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    conn.close().await.unwrap();

    // Reopening migrates nothing again: the ids stay as they were given.
    SqliteEventStore::open(&path).await.unwrap().close().await.unwrap();
    assert_eq!(applied_migrations(&path).await, [1, 2, 3, 4, 5, 6]);
    let mut reopened = stored_ids(&path).await;
    reopened.retain(|(position, _)| *position != appended.positions[0].get() as i64);
    assert_eq!(reopened, ids, "reopening the upgraded file must not change any id");
}

#[tokio::test]
async fn an_empty_file_from_before_event_ids_upgrades_and_takes_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut conn = connect(&path).await;
    conn.ensure_migrations_table().await.unwrap();
    for (version, description, sql) in MIGRATIONS_BEFORE_IDS {
        let migration = Migration::new(version, description.into(), MigrationType::Simple, sql.into(), false);
        conn.apply(&migration).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = SqliteEventStore::open(&path).await.unwrap();
    let event =
        NewEvent::new("Counted.v1", CodecId::Json, b"{}".to_vec(), Metadata::default()).with_id(EventId::generate());
    store.append(&stream("first-1"), ExpectedVersion::NoStream, vec![event.clone()]).await.unwrap();
    assert_eq!(store.load_event(event.id).await.unwrap().unwrap().stream_id, stream("first-1"));
}

/// Migration 3, as sqlx embeds it.
const EVENT_IDS_MIGRATION: (i64, &str, &str) =
    (3, "event ids", include_str!("../../migrations/sqlite/0003_event_ids.sql"));

/// Every stored event as text, the columns of schema version 3 (ids included), in log order.
async fn events_with_ids(path: &Path) -> Vec<String> {
    let mut conn = connect(path).await;
    let rows = sqlx::query_scalar(
        "SELECT quote(global_position) || ',' || quote(stream_id) || ',' || quote(version) || ',' || \
         quote(event_type) || ',' || quote(codec) || ',' || quote(payload) || ',' || quote(correlation_id) || ',' \
         || quote(causation_id) || ',' || quote(actor) || ',' || quote(extra) || ',' || quote(recorded_at) || ',' \
         || quote(event_id) FROM events ORDER BY global_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows
}

#[tokio::test]
async fn opening_a_file_from_before_tags_keeps_every_row_and_indexes_tags_from_then_on() {
    use composable_rust_core::{AppendCondition, AtomicAppend, EventQuery, Tag};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    create_file_before_event_ids(&path).await;
    let mut conn = connect(&path).await;
    let (version, description, sql) = EVENT_IDS_MIGRATION;
    conn.apply(&Migration::new(version, description.into(), MigrationType::Simple, sql.into(), false)).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(applied_migrations(&path).await, [1, 2, 3], "the file starts at schema version 3");
    let before = dump(&path).await;
    let events_before = events_with_ids(&path).await;

    let store = SqliteEventStore::open(&path).await.unwrap();
    store.health_check().await.unwrap();
    assert_eq!(applied_migrations(&path).await, [1, 2, 3, 4, 5, 6]);
    let after = dump(&path).await;
    for (table, rows) in &before {
        assert_same_rows(table, rows, &after[table]);
    }
    assert_same_rows("events (with ids)", &events_before, &events_with_ids(&path).await);

    // The old events read back without tags, and a query over everything finds each of them.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10_000).await.unwrap();
    assert_eq!(log.len(), events_before.len());
    assert!(log.iter().all(|e| e.tags.is_empty()), "old events have no tags");
    let everything = store.read_query(&EventQuery::all(), GlobalPosition::START, 10_000).await.unwrap();
    assert_eq!(everything.events, log);
    assert_eq!(everything.horizon, log.last().unwrap().position);

    // Tagged appends on the upgraded file are indexed and conditions hold.
    let course = EventQuery::tagged([Tag::of("course", "c1")]);
    let page = store.read_query(&course, GlobalPosition::START, 10).await.unwrap();
    assert!(page.events.is_empty());
    let defined = NewEvent::new("CourseDefined.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
        .with_tags([Tag::of("course", "c1")]);
    let append = AtomicAppend::new()
        .stream(stream("course-c1"), ExpectedVersion::NoStream, vec![defined.clone()])
        .condition(page.condition(course.clone()));
    let written = store.append_atomic(append).await.unwrap();
    assert!(written[0].positions[0] > log.last().unwrap().position, "positions continue after the old ones");
    let found = store.read_query(&course, GlobalPosition::START, 10).await.unwrap();
    assert_eq!(found.events.len(), 1);
    assert_eq!(found.events[0].id, defined.id);
    let again = AtomicAppend::new()
        .stream(
            stream("course-c1-copy"),
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new("CourseDefined.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
                    .with_tags([Tag::of("course", "c1")]),
            ],
        )
        .condition(AppendCondition::none_exist(course));
    assert!(matches!(store.append_atomic(again).await, Err(EventStoreError::ConditionFailed { .. })));
    store.close().await.unwrap();

    // The tag index is as append-only as the events.
    let mut conn = connect(&path).await;
    for statement in ["UPDATE event_tags SET tag = 'x'", "DELETE FROM event_tags"] {
        let error = sqlx::query(statement).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    conn.close().await.unwrap();
}

/// Migration 4, as sqlx embeds it.
const TAGS_MIGRATION: (i64, &str, &str) = (4, "tags", include_str!("../../migrations/sqlite/0004_tags.sql"));

/// The names of the indexes on `events`.
async fn event_indexes(path: &Path) -> Vec<String> {
    let mut conn = connect(path).await;
    let names =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    names
}

#[tokio::test]
async fn opening_a_file_from_before_the_query_indexes_keeps_every_row_and_finds_old_events_by_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    create_file_before_event_ids(&path).await;
    let mut conn = connect(&path).await;
    for (version, description, sql) in [EVENT_IDS_MIGRATION, TAGS_MIGRATION] {
        let migration = Migration::new(version, description.into(), MigrationType::Simple, sql.into(), false);
        conn.apply(&migration).await.unwrap();
    }
    conn.close().await.unwrap();
    assert_eq!(applied_migrations(&path).await, [1, 2, 3, 4], "the file starts at schema version 4");
    let before = dump(&path).await;
    let events_before = events_with_ids(&path).await;
    let indexes_before = event_indexes(&path).await;

    let store = SqliteEventStore::open(&path).await.unwrap();
    store.health_check().await.unwrap();
    assert_eq!(applied_migrations(&path).await, [1, 2, 3, 4, 5, 6]);
    let after = dump(&path).await;
    for (table, rows) in &before {
        assert_same_rows(table, rows, &after[table]);
    }
    assert_same_rows("events (with ids)", &events_before, &events_with_ids(&path).await);
    let mut expected_indexes = indexes_before;
    expected_indexes.extend(QUERY_INDEXES.map(str::to_owned));
    expected_indexes.sort();
    assert_eq!(event_indexes(&path).await, expected_indexes, "migration 5 adds its indexes and nothing else");

    // Every filter finds the old events, oldest and newest first, as a scan of the whole log would.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10_000).await.unwrap();
    let filters = [
        LogFilter::all().actor("user-3"),
        LogFilter::all().category("order"),
        LogFilter::all().stream_prefix("account-"),
        LogFilter::all().event_types(["Counted.v1"]),
        LogFilter::all().event_types(["Counted.v1", "Renamed.v2"]).category("account"),
        LogFilter::all().correlation_id(Uuid::from_u128(4 << 64 | 0xC0)),
        LogFilter::all().recorded_between(Some(log[10].recorded_at), Some(log[20].recorded_at)),
    ];
    for filter in filters {
        let expected: Vec<_> = log.iter().filter(|e| filter.matches(e)).cloned().collect();
        assert!(!expected.is_empty(), "{filter:?} must match some old events");
        let found = store.read_all(GlobalPosition::START, &filter, 10_000).await.unwrap();
        assert_eq!(found, expected, "{filter:?} oldest first");
        let mut newest = store.read_log(LogCursor::Newest, &filter, 10_000).await.unwrap();
        newest.reverse();
        assert_eq!(newest, expected, "{filter:?} newest first");
    }
    store.close().await.unwrap();
}
