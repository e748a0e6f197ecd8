//! Error paths: no server, bad URLs, refused logins, missing schema, lost connections; and no password in
//! any message.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test the same way

mod common;

use composable_rust_core::backend::{EventLog, SnapshotStore, StoreLifecycle, SubscriptionStore};
use std::error::Error as _;
use std::time::Duration;

use composable_rust_core::{
    EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, SchemaError, StreamId, StreamRange,
};
use composable_rust_postgres::{PostgresConfig, PostgresError, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use composable_rust_testing::subscription_suite::LEASE_TTL;
use futures::TryStreamExt;

const PASSWORD: &str = "s3cret-Pa55word";

/// The error, its source chain and its Debug form, as one text to search.
fn everything_said_about(err: &EventStoreError) -> String {
    let mut text = format!("{err:?}\n{err}");
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!("\n{s}"));
        source = s.source();
    }
    text
}

fn postgres_source(err: &EventStoreError) -> &PostgresError {
    match err {
        EventStoreError::Backend { source, .. } | EventStoreError::Unavailable { source, .. } => {
            source.downcast_ref::<PostgresError>().unwrap()
        }
        other => panic!("expected a backend or unavailable error, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_a_closed_port_says_the_server_is_unreachable() {
    let mut config = PostgresConfig::from_url(&format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/postgres")).unwrap();
    config.acquire_timeout = Duration::from_secs(2);
    let err = PostgresEventStore::connect_with(config).await.unwrap_err();
    let text = everything_said_about(&err);
    assert!(err.is_transient(), "a refused connection is worth retrying: {text}");
    assert!(matches!(postgres_source(&err), PostgresError::Unreachable { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1/postgres") && text.contains("is the server running"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn a_malformed_url_is_an_error_that_does_not_repeat_it() {
    for url in ["not a url", &format!("postgres://app:{PASSWORD}@localhost:notaport/db")] {
        let err = PostgresEventStore::connect(url).await.unwrap_err();
        let text = everything_said_about(&err);
        assert!(matches!(postgres_source(&err), PostgresError::InvalidUrl { .. }), "{text}");
        assert!(text.contains("postgres://user:password@host:port/database"), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[tokio::test]
async fn an_unknown_role_is_a_refused_login_without_the_password() {
    let db = PostgresTestDatabase::start().await;
    let options = db.connect_options().username("no_such_role_composable").password(PASSWORD);
    let config = PostgresConfig::from_options(options);
    assert!(!format!("{config:?}").contains(PASSWORD));
    let err = PostgresEventStore::connect_with(config).await.unwrap_err();
    let text = everything_said_about(&err);
    assert!(matches!(postgres_source(&err), PostgresError::LoginRefused { .. }), "{text}");
    assert!(text.contains("no_such_role_composable") && text.contains("check the user name and password"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn an_unknown_database_says_to_create_it() {
    let db = PostgresTestDatabase::start().await;
    let config = PostgresConfig::from_options(db.connect_options().database("no_such_database_composable"));
    let err = PostgresEventStore::connect_with(config).await.unwrap_err();
    let text = everything_said_about(&err);
    assert!(err.is_not_found(), "{text}");
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains("no_such_database_composable") && text.contains("create it"), "{text}");
}

#[tokio::test]
async fn using_the_store_before_migrate_is_a_schema_error_that_says_to_migrate() {
    let (store, _db) = common::unmigrated_store().await;
    let stream = StreamId::new("order-1").unwrap();
    let errors = [
        store.append(&stream, ExpectedVersion::Any, vec![common::event(0, 0)]).await.unwrap_err(),
        store.stream_version(&stream).await.unwrap_err(),
        store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap_err(),
        store.read_stream(&stream, StreamRange::all()).try_collect::<Vec<_>>().await.unwrap_err(),
        store.load_checkpoint("projection").await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, EventStoreError::Schema(SchemaError::Missing { .. })), "{err:?}");
        assert!(err.to_string().contains("PostgresEventStore::migrate()"), "{err}");
        assert!(err.is_not_found() && !err.is_transient() && !err.is_conflict(), "{err}");
    }
}

#[tokio::test]
async fn debug_output_of_a_connected_store_never_shows_the_password() {
    // The local cluster trusts local connections, so any password is accepted: enough to check it never
    // shows up.
    let db = PostgresTestDatabase::start().await;
    let config = PostgresConfig::from_options(db.connect_options().password(PASSWORD));
    let store = PostgresEventStore::connect_with(config.clone()).await.unwrap();
    let debug = format!("{store:?} {config:?}");
    assert!(debug.contains(db.name()), "{debug}");
    assert!(!debug.contains(PASSWORD), "{debug}");
}

#[tokio::test]
async fn the_statement_timeout_is_applied_to_every_connection() {
    let db = PostgresTestDatabase::start().await;
    let mut config = PostgresConfig::from_options(db.connect_options());
    config.statement_timeout = Some(Duration::from_millis(150));
    let store = PostgresEventStore::connect_with(config).await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(store.pool()).await.unwrap();
    assert_eq!(setting, "150ms");
}

#[tokio::test]
async fn jit_is_off_on_every_connection_and_in_the_append_functions() {
    let db = PostgresTestDatabase::start().await;
    let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
    store.migrate().await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW jit").fetch_one(store.pool()).await.unwrap();
    assert_eq!(setting, "off");
    let functions: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT proname::text, proconfig FROM pg_proc WHERE proname IN ('events_append', 'events_append_one') ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(functions.len(), 2, "{functions:?}");
    for (name, config) in functions {
        assert!(config.contains(&"jit=off".to_owned()), "{name} runs with {config:?}");
    }
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let (store, _db) = common::migrated_store().await;
    store.migrate().await.unwrap();
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap();
    // Every file of migrations/postgres, by its number (numbers may have gaps).
    let mut files: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/postgres"))
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    files.sort_unstable();
    assert_eq!(applied, files, "each migration is applied once");
}

#[tokio::test]
async fn health_check_reports_a_missing_schema() {
    let (store, _db) = common::unmigrated_store().await;
    let err = store.health_check().await.unwrap_err();
    assert!(matches!(err, EventStoreError::Schema(SchemaError::Missing { .. })), "{err:?}");
    assert!(!err.is_transient(), "a missing schema does not fix itself: {err}");
    store.migrate().await.unwrap();
    assert_eq!(store.health_check().await.unwrap().backend, "postgres");
}

#[tokio::test]
async fn health_check_reports_a_server_that_went_away() {
    // A pool that connects lazily: the store exists, but every round trip fails, as after the server stops.
    let options = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/postgres").parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new().acquire_timeout(Duration::from_secs(2)).connect_lazy_with(options);
    let store = PostgresEventStore::from_pool(pool);
    let err = store.health_check().await.unwrap_err();
    let text = everything_said_about(&err);
    assert!(matches!(err, EventStoreError::Unavailable { .. }), "{text}");
    assert!(err.is_transient(), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn every_operation_on_an_unreachable_server_is_unavailable() {
    let options = "postgres://postgres@127.0.0.1:1/postgres".parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new().acquire_timeout(Duration::from_secs(1)).connect_lazy_with(options);
    let store = PostgresEventStore::from_pool(pool);
    let stream = StreamId::new("order-1").unwrap();
    let snapshot = composable_rust_core::Snapshot {
        stream_id: stream.clone(),
        version: composable_rust_core::Version::new(1),
        schema_version: 1,
        codec: composable_rust_core::CodecId::Json,
        payload: b"{}".to_vec(),
        taken_at: chrono::Utc::now(),
    };
    let failures = [
        ("append", store.append(&stream, ExpectedVersion::Any, vec![common::event(0, 0)]).await.map(drop)),
        ("stream_version", store.stream_version(&stream).await.map(drop)),
        ("read_stream", store.read_stream(&stream, StreamRange::all()).try_collect::<Vec<_>>().await.map(drop)),
        ("load_event", store.load_event(composable_rust_core::EventId::generate()).await.map(drop)),
        ("read_all", store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.map(drop)),
        ("list_streams", store.list_streams("", None, 10).await.map(drop)),
        ("save_snapshot", store.save_snapshot(&snapshot).await),
        ("load_snapshot", store.load_snapshot(&stream).await.map(drop)),
        ("save_checkpoint", store.save_checkpoint("projection", GlobalPosition::new(1)).await),
        ("load_checkpoint", store.load_checkpoint("projection").await.map(drop)),
        ("try_acquire_lease", store.try_acquire_lease("projection", LEASE_TTL).await.map(drop)),
    ];
    for (operation, result) in failures {
        match result {
            Err(err) => assert!(err.is_transient(), "{operation}: {}", everything_said_about(&err)),
            Ok(()) => panic!("{operation} succeeded without a server"),
        }
    }
}

#[tokio::test]
async fn a_connection_terminated_by_the_server_is_unavailable_and_the_next_call_reconnects() {
    let (store, db) = common::migrated_store().await;
    let stream = StreamId::new("order-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![common::event(0, 0)]).await.unwrap();
    // Terminate every pooled connection, as a server restart or an administrator would.
    let admin =
        sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(db.connect_options()).await.unwrap();
    // Waits (up to 5 s per backend) until each has exited, so the next call meets a closed session.
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&admin)
    .await
    .unwrap();
    let mut seen = Vec::new();
    let version = loop {
        match store.stream_version(&stream).await {
            Ok(version) => break version,
            Err(err) => {
                assert!(err.is_transient(), "a terminated connection is transient: {}", everything_said_about(&err));
                seen.push(err);
                assert!(seen.len() <= 20, "the pool never reconnected: {seen:?}");
            }
        }
    };
    assert!(!seen.is_empty(), "the first call after the termination must report it");
    assert_eq!(version.get(), 1);
}
