//! Upgrading a database written by an earlier release to this one (0005): from schema 0001 (events without
//! ids), every event gets a unique, non-nil id and no tags, and nothing else changes, not a column of a
//! row, not a position, not a version; appends continue and old events load by their new ids. From schema
//! 0002 (events with ids), events gain an empty `tags` column and nothing else changes; tagged appends and
//! reads by query work at once. From schema 0004 (tags), the table gains the query indexes of 0005 and nothing
//! else changes; the new filters find the old events.
//!
//! Two ways a database reaches 0001, both covered: the previous release's `migrate()` (a migrator that
//! holds only 0001, so sqlx recorded it in `_sqlx_migrations`), which this build's `migrate()` then
//! upgrades; and a DBA running the SQL files with psql (no `_sqlx_migrations`), who then runs 0002, 0003,
//! 0004 and 0005 by hand.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test the same way

mod common;

use composable_rust_core::backend::{EventLog, StoreLifecycle};
use std::collections::HashSet;

use composable_rust_core::{
    AtomicAppend, CodecId, EventQuery, EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter,
    NewEvent, QueryItem, RecordedEvent, SchemaError, StreamId, StreamRange, Tag, Version,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

const MIGRATION_0001: &str = include_str!("../../migrations/postgres/0001_event_store.sql");
const MIGRATION_0002: &str = include_str!("../../migrations/postgres/0002_event_ids.sql");
const MIGRATION_0003: &str = include_str!("../../migrations/postgres/0003_tags.sql");
const MIGRATION_0004: &str = include_str!("../../migrations/postgres/0004_append_function.sql");
const MIGRATION_0005: &str = include_str!("../../migrations/postgres/0005_query_indexes.sql");

/// The numbers of this build's migrations (the files of migrations/postgres; numbers may have gaps), ascending.
fn migrations() -> Vec<i64> {
    let mut numbers: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/postgres"))
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The previous release's append statement (commit 58e4c45, postgres/src/sql.rs), without its expectation
/// check: rows are written exactly as that release wrote them, positions from transaction ids included.
const PREVIOUS_APPEND: &str = r"
WITH head AS (
    SELECT COALESCE(MAX(version), 0) AS version FROM events WHERE stream_id = $1
), appended AS (
    INSERT INTO events (stream_id, version, global_position, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT $1, head.version + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM head,
         UNNEST($2::text[], $3::text[], $4::bytea[], $5::uuid[], $6::uuid[], $7::text[], $8::text[])
             WITH ORDINALITY AS e(event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    RETURNING global_position
)
SELECT COUNT(*) FROM appended";

/// Every row of the three tables, each as JSON (`to_jsonb`: every column, bytea as hex, timestamps to
/// the microsecond), events in position order.
#[derive(Debug, PartialEq)]
struct Contents {
    events: Vec<Value>,
    snapshots: Vec<Value>,
    checkpoints: Vec<Value>,
}

async fn contents(pool: &PgPool) -> Contents {
    let rows = |sql: &'static str| async move { sqlx::query_scalar::<_, Value>(sql).fetch_all(pool).await.unwrap() };
    Contents {
        events: rows("SELECT to_jsonb(e) FROM events e ORDER BY global_position").await,
        snapshots: rows("SELECT to_jsonb(s) FROM snapshots s ORDER BY stream_id").await,
        checkpoints: rows("SELECT to_jsonb(c) FROM checkpoints c ORDER BY handler").await,
    }
}

/// The columns of `events` and the indexes on it, as the catalog describes them.
async fn events_schema(pool: &PgPool) -> (Vec<String>, Vec<String>) {
    let columns = sqlx::query_scalar(
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns \
         WHERE table_name = 'events' ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE tablename = 'events'").fetch_all(pool).await.unwrap();
    indexes.sort();
    (columns, indexes)
}

/// Writes what an application on the previous release would have: eight streams of two categories,
/// appended in interleaved batches of one to four events, with every mix of metadata (none, some, all),
/// two codecs, a snapshot and two checkpoints.
async fn fill_as_the_previous_release(pool: &PgPool) {
    let streams = ["order-1", "order-2", "order-3", "order-4", "order-5", "account-1", "account-2", "account-3"];
    for append in 0..40_usize {
        let stream = streams[(append * 3) % streams.len()];
        let size = 1 + append % 4;
        let seq = |i: usize| append * 10 + i;
        let (types, codecs, payloads): (Vec<String>, Vec<&str>, Vec<Vec<u8>>) = (0..size)
            .map(|i| {
                let n = seq(i);
                if n % 3 == 0 {
                    (format!("Bin{}.v1", n % 5), "bincode", u64::try_from(n).unwrap().to_le_bytes().to_vec())
                } else {
                    (format!("Json{}.v2", n % 4), "json", format!(r#"{{"n":{n},"text":"é\\n"}}"#).into_bytes())
                }
            })
            .fold((Vec::new(), Vec::new(), Vec::new()), |(mut t, mut c, mut p), (ty, co, pa)| {
                t.push(ty);
                c.push(co);
                p.push(pa);
                (t, c, p)
            });
        let optional_uuid = |n: usize, every: usize| (n % every == 0).then(Uuid::new_v4);
        let correlation: Vec<Option<Uuid>> = (0..size).map(|i| optional_uuid(seq(i), 2)).collect();
        let causation: Vec<Option<Uuid>> = (0..size).map(|i| optional_uuid(seq(i), 3)).collect();
        let actors: Vec<Option<String>> = (0..size).map(|i| (seq(i) % 4 != 0).then(|| format!("user-{i}"))).collect();
        let extras: Vec<Option<String>> =
            (0..size).map(|i| (seq(i) % 5 == 1).then(|| format!(r#"{{"ip":"10.0.0.{i}"}}"#))).collect();
        let written: i64 = sqlx::query_scalar(PREVIOUS_APPEND)
            .bind(stream)
            .bind(&types)
            .bind(&codecs)
            .bind(&payloads)
            .bind(&correlation)
            .bind(&causation)
            .bind(&actors)
            .bind(&extras)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(written, i64::try_from(size).unwrap());
    }
    sqlx::query(
        "INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at) \
         VALUES ('order-1', 3, 2, 'json', '\\x7b7d', '2026-01-02 03:04:05.678901+00')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO checkpoints (handler, position, updated_at) \
         VALUES ('projection', (SELECT global_position FROM events ORDER BY global_position OFFSET 20 LIMIT 1), \
                 '2026-01-02 03:04:05.5+00'), ('mailer', 0, now())",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Checks an upgraded database against what it held before (`before`, `schema_before`).
async fn assert_upgraded(store: &PostgresEventStore, before: &Contents, schema_before: &(Vec<String>, Vec<String>)) {
    assert_eq!(before.events.len(), 100, "the previous release wrote 40 batches of 1 to 4 events");
    let pool = store.pool();
    let after = contents(pool).await;
    assert_eq!(after.events.len(), before.events.len(), "no event was added or lost");

    // Every event has an id, unique and not nil; without it, every row is exactly as before.
    let mut ids = HashSet::new();
    let mut without_ids = Vec::new();
    for row in &after.events {
        let mut row = row.clone();
        let tags = row.as_object_mut().and_then(|columns| columns.remove("tags"));
        assert_eq!(tags, Some(Value::Null), "an upgraded event has no tags: {row}");
        let id = row.as_object_mut().and_then(|columns| columns.remove("event_id"));
        let id: Uuid = match id.as_ref().and_then(Value::as_str).map(str::parse) {
            Some(Ok(id)) => id,
            other => panic!("an upgraded event has no valid event_id ({other:?}): {row}"),
        };
        assert!(!id.is_nil(), "an upgraded event has the nil id: {row}");
        assert!(ids.insert(id), "the id {id} is given to two events");
        without_ids.push(row);
    }
    assert_eq!(without_ids, before.events, "every column of every event is unchanged, in the same order");
    assert_eq!(after.snapshots, before.snapshots, "snapshots are unchanged");
    assert_eq!(after.checkpoints, before.checkpoints, "checkpoints are unchanged");

    // The schema gained the columns and their indexes, and nothing else changed.
    let (columns, indexes) = events_schema(pool).await;
    let mut expected_columns = schema_before.0.clone();
    expected_columns.push("event_id uuid NO".to_owned());
    expected_columns.push("tags ARRAY YES".to_owned());
    assert_eq!(columns, expected_columns);
    let mut expected_indexes = schema_before.1.clone();
    expected_indexes.push("CREATE UNIQUE INDEX events_event_id_idx ON public.events USING btree (event_id)".to_owned());
    expected_indexes.push(TAGS_INDEX.to_owned());
    expected_indexes.extend(QUERY_INDEXES.map(str::to_owned));
    expected_indexes.sort();
    assert_eq!(indexes, expected_indexes);
    let trigger: String =
        sqlx::query_scalar("SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'events_append_only'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(trigger, "O", "the append-only trigger is enabled");
    let refused = sqlx::query("UPDATE events SET actor = 'x'").execute(pool).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");

    // The store reads the old events with their new ids, and finds each by its id.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 1000).await.unwrap();
    assert_eq!(log.len(), before.events.len());
    for (event, row) in log.iter().zip(&after.events) {
        assert_eq!(Value::String(event.id.to_string()), row["event_id"], "read_all returns the stored id");
        assert_eq!(Value::from(event.position.get()), row["global_position"]);
        assert_eq!(Value::from(event.version.get()), row["version"]);
        let found = store.load_event(event.id).await.unwrap();
        assert_eq!(found.as_ref(), Some(event), "load_event finds the old event {} by its new id", event.describe());
    }
    let order_1 = StreamId::new("order-1").unwrap();
    let loaded = store.load_stream(&order_1, StreamRange::all()).await.unwrap();
    let from_log: Vec<&RecordedEvent> = log.iter().filter(|e| e.stream_id == order_1).collect();
    assert_eq!(loaded.iter().collect::<Vec<_>>(), from_log, "a stream load agrees with the log");

    // Appends continue where the streams were, above every old position, and are idempotent.
    let version = store.stream_version(&order_1).await.unwrap();
    assert_eq!(version, loaded.last().unwrap().version);
    let events = vec![common::event(1, 1), common::event(1, 2)];
    let appended = store.append(&order_1, ExpectedVersion::Exact(version), events.clone()).await.unwrap();
    assert_eq!(appended.stream_version, version.advanced_by(2));
    assert!(appended.positions[0] > log.last().unwrap().position, "new positions come after every old one");
    let retried = store.append(&order_1, ExpectedVersion::Exact(version), events.clone()).await.unwrap();
    assert_eq!(retried, appended, "a retried append returns the original result");
    let fresh = StreamId::new("order-new").unwrap();
    let first = store.append(&fresh, ExpectedVersion::NoStream, vec![common::event(2, 0)]).await.unwrap();
    assert_eq!(first.stream_version, Version::FIRST);
    assert_eq!(store.load_event(events[1].id).await.unwrap().map(|e| e.version), Some(version.advanced_by(2)));
    let stored = store.load_stream(&order_1, StreamRange::after(version)).await.unwrap();
    assert!(events.iter().zip(&stored).all(|(new, stored)| new.is_stored_as(stored)));
    // Tagged appends go through the function `events_append` of the latest migration.
    let tag = Tag::of("order", "new");
    let tagged = store
        .append(&fresh, ExpectedVersion::Exact(Version::FIRST), vec![common::event(2, 1).with_tags([tag.clone()])])
        .await
        .unwrap();
    assert_eq!(tagged.stream_version, Version::new(2));
    assert_eq!(store.health_check().await.unwrap().backend, "postgres");
}

/// The tag index as the catalog describes it.
const TAGS_INDEX: &str =
    "CREATE INDEX events_tags_idx ON public.events USING gin (tags) WITH (fastupdate=off) WHERE (tags IS NOT NULL)";

/// The indexes of migration 0005, as the catalog describes them.
const QUERY_INDEXES: [&str; 3] = [
    "CREATE INDEX events_actor_idx ON public.events USING btree (actor, global_position) WHERE (actor IS NOT NULL)",
    "CREATE INDEX events_event_type_idx ON public.events USING btree (event_type)",
    "CREATE INDEX events_recorded_at_brin ON public.events USING brin (recorded_at)",
];

/// A temporary folder, removed when dropped.
struct Folder(std::path::PathBuf);

impl Folder {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("composable-upgrade-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store for `db` with this build's code.
async fn this_build(db: &PostgresTestDatabase) -> PostgresEventStore {
    PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap()
}

#[tokio::test]
async fn a_database_migrated_by_the_previous_release_is_upgraded_by_migrate_without_changing_any_row() {
    let db = PostgresTestDatabase::start().await;
    let previous = PgPool::connect_with(db.connect_options()).await.unwrap();
    // The previous release's migrate(): its binary embedded exactly one migration, this 0001 file.
    let folder = Folder::new();
    std::fs::write(folder.0.join("0001_event_store.sql"), MIGRATION_0001).unwrap();
    Migrator::new(folder.0.as_path()).await.unwrap().run(&previous).await.unwrap();
    fill_as_the_previous_release(&previous).await;
    let before = contents(&previous).await;
    let schema_before = events_schema(&previous).await;
    previous.close().await;

    let store = this_build(&db).await;
    let stale = store.health_check().await.unwrap_err();
    let latest = *migrations().last().unwrap();
    assert!(
        matches!(stale, EventStoreError::Schema(SchemaError::Behind { applied: 1, expected, .. }) if expected == latest),
        "{stale:?}"
    );
    assert!(stale.to_string().contains(&format!("is at migration 1, but this build expects {latest}")), "{stale}");
    store.migrate().await.unwrap();
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, migrations());
    assert_upgraded(&store, &before, &schema_before).await;
}

#[tokio::test]
async fn a_database_set_up_by_hand_is_upgraded_by_running_the_later_files_with_psql_without_changing_any_row() {
    let db = PostgresTestDatabase::start().await;
    let previous = PgPool::connect_with(db.connect_options()).await.unwrap();
    // As `psql -1 -f`: each file in one transaction, simple query protocol.
    let mut tx = previous.begin().await.unwrap();
    sqlx::raw_sql(MIGRATION_0001).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    fill_as_the_previous_release(&previous).await;
    let before = contents(&previous).await;
    let schema_before = events_schema(&previous).await;

    for migration in [MIGRATION_0002, MIGRATION_0003, MIGRATION_0004, MIGRATION_0005] {
        let mut tx = previous.begin().await.unwrap();
        sqlx::raw_sql(migration).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    previous.close().await;

    // A schema applied by hand has no _sqlx_migrations: the application does not call migrate().
    let store = this_build(&db).await;
    assert_upgraded(&store, &before, &schema_before).await;
}

#[tokio::test]
async fn an_event_written_without_an_id_by_an_older_release_during_the_upgrade_gets_one() {
    // During a rolling upgrade, instances of the previous release keep appending with its statement.
    let (store, _db) = common::migrated_store().await;
    let written: i64 = sqlx::query_scalar(PREVIOUS_APPEND)
        .bind("order-1")
        .bind(["Placed.v1"])
        .bind(["json"])
        .bind([b"{}".to_vec()])
        .bind([None::<Uuid>])
        .bind([None::<Uuid>])
        .bind([None::<String>])
        .bind([None::<String>])
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(written, 1, "the previous release's append still works on the new schema");
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
    assert!(!log[0].id.as_uuid().is_nil());
    assert_eq!(store.load_event(log[0].id).await.unwrap().as_ref(), Some(&log[0]));
    let next = NewEvent::new("Shipped.v1", CodecId::Json, b"{}".to_vec(), Default::default());
    let stream = StreamId::new("order-1").unwrap();
    let appended = store.append(&stream, ExpectedVersion::Exact(Version::FIRST), vec![next]).await.unwrap();
    assert_eq!(appended.stream_version, Version::new(2));
}

#[tokio::test]
async fn a_database_of_the_release_with_event_ids_gains_tags_without_changing_any_row() {
    let db = PostgresTestDatabase::start().await;
    let previous = PgPool::connect_with(db.connect_options()).await.unwrap();
    // The release with event ids: its binary embedded 0001 and 0002.
    let folder = Folder::new();
    std::fs::write(folder.0.join("0001_event_store.sql"), MIGRATION_0001).unwrap();
    std::fs::write(folder.0.join("0002_event_ids.sql"), MIGRATION_0002).unwrap();
    Migrator::new(folder.0.as_path()).await.unwrap().run(&previous).await.unwrap();
    fill_as_the_previous_release(&previous).await;
    // Its append of untagged events is this build's (unchanged): appends of an instance still running the
    // previous release during a rolling upgrade are exactly these.
    let store = this_build(&db).await;
    let order_9 = StreamId::new("order-9").unwrap();
    let written = vec![common::event(9, 1), common::event(9, 2)];
    store.append(&order_9, ExpectedVersion::NoStream, written.clone()).await.unwrap();
    let before = contents(&previous).await;
    let schema_before = events_schema(&previous).await;
    previous.close().await;

    let stale = store.health_check().await.unwrap_err();
    let latest = *migrations().last().unwrap();
    assert!(
        matches!(stale, EventStoreError::Schema(SchemaError::Behind { applied: 2, expected, .. }) if expected == latest),
        "{stale:?}"
    );
    store.migrate().await.unwrap();
    let pool = store.pool();
    let after = contents(pool).await;
    let untagged: Vec<Value> = after
        .events
        .iter()
        .map(|row| {
            let mut row = row.clone();
            let tags = row.as_object_mut().and_then(|columns| columns.remove("tags"));
            assert_eq!(tags, Some(Value::Null), "an upgraded event has no tags: {row}");
            row
        })
        .collect();
    assert_eq!(untagged, before.events, "every column of every event is unchanged, in the same order");
    assert_eq!(after.snapshots, before.snapshots);
    assert_eq!(after.checkpoints, before.checkpoints);
    let (columns, indexes) = events_schema(pool).await;
    let mut expected_columns = schema_before.0.clone();
    expected_columns.push("tags ARRAY YES".to_owned());
    assert_eq!(columns, expected_columns, "the schema gained the tags column and nothing else");
    let mut expected_indexes = schema_before.1.clone();
    expected_indexes.push(TAGS_INDEX.to_owned());
    expected_indexes.extend(QUERY_INDEXES.map(str::to_owned));
    expected_indexes.sort();
    assert_eq!(indexes, expected_indexes, "the schema gained the tag index, the query indexes and nothing else");
    let refused = sqlx::query("UPDATE events SET tags = '{x}'").execute(pool).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "the append-only trigger still holds: {refused}");
    store.health_check().await.unwrap();

    // Old events read with no tags; new tagged events, reads by query and conditions work at once.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 1000).await.unwrap();
    assert_eq!(log.len(), 102);
    assert!(log.iter().all(|e| e.tags.is_empty()));
    assert!(written.iter().zip(&log[100..]).all(|(new, stored)| new.is_stored_as(stored)));
    let tag = Tag::of("customer", "c1");
    let tagged = common::event(9, 3).with_tags([tag.clone()]);
    let appended = store.append(&order_9, ExpectedVersion::Exact(Version::new(2)), vec![tagged.clone()]).await.unwrap();
    let page = store.read_query(&EventQuery::tagged([tag.clone()]), GlobalPosition::START, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(tagged.is_stored_as(&page.events[0]), "{:?}", page.events[0]);
    assert_eq!(page.events[0].position, appended.positions[0]);
    let by_type = store
        .read_query(&EventQuery::item(QueryItem::of_types([log[0].event_type.as_str()])), GlobalPosition::START, 1)
        .await
        .unwrap();
    assert_eq!(by_type.events, log[..1], "old events are found by type");
    let condition = page.condition(EventQuery::tagged([tag]));
    let next = common::event(9, 4);
    let atomic = AtomicAppend::new()
        .stream(order_9.clone(), ExpectedVersion::Exact(Version::new(3)), vec![next.clone()])
        .condition(condition);
    let results = store.append_atomic(atomic).await.unwrap();
    assert_eq!(results[0].stream_version, Version::new(4));
}

#[tokio::test]
async fn a_database_of_the_release_with_tags_gains_the_query_indexes_without_changing_any_row() {
    let db = PostgresTestDatabase::start().await;
    let previous = PgPool::connect_with(db.connect_options()).await.unwrap();
    // The release with tags and the append function: its binary embedded 0001 to 0004.
    let folder = Folder::new();
    for (name, sql) in [
        ("0001_event_store.sql", MIGRATION_0001),
        ("0002_event_ids.sql", MIGRATION_0002),
        ("0003_tags.sql", MIGRATION_0003),
        ("0004_append_function.sql", MIGRATION_0004),
    ] {
        std::fs::write(folder.0.join(name), sql).unwrap();
    }
    Migrator::new(folder.0.as_path()).await.unwrap().run(&previous).await.unwrap();
    fill_as_the_previous_release(&previous).await;
    let before = contents(&previous).await;
    let schema_before = events_schema(&previous).await;
    previous.close().await;

    let store = this_build(&db).await;
    let stale = store.health_check().await.unwrap_err();
    assert!(matches!(stale, EventStoreError::Schema(SchemaError::Behind { applied: 4, expected: 5, .. })), "{stale:?}");
    store.migrate().await.unwrap();
    store.health_check().await.unwrap();
    let pool = store.pool();
    assert_eq!(contents(pool).await, before, "every row of every table is unchanged");
    let (columns, indexes) = events_schema(pool).await;
    assert_eq!(columns, schema_before.0, "no column changed");
    let mut expected_indexes = schema_before.1.clone();
    expected_indexes.extend(QUERY_INDEXES.map(str::to_owned));
    expected_indexes.sort();
    assert_eq!(indexes, expected_indexes, "the schema gained the three query indexes and nothing else");

    // The old events are found by the new filters, in both directions.
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 1000).await.unwrap();
    let by_user_1: Vec<&RecordedEvent> = log.iter().filter(|e| e.metadata.actor.as_deref() == Some("user-1")).collect();
    assert!(!by_user_1.is_empty());
    let filter = LogFilter::all().actor("user-1");
    let found = store.read_all(GlobalPosition::START, &filter, 1000).await.unwrap();
    assert_eq!(found.iter().collect::<Vec<_>>(), by_user_1, "the actor filter finds the old events");
    let newest = store.read_log(LogCursor::Newest, &filter, 1000).await.unwrap();
    assert_eq!(newest.iter().rev().collect::<Vec<_>>(), by_user_1, "newest first, the same events in reverse");
}
