//! Opening each backend from configuration, and the health check through the opened store.
//!
//! Which tests exist depends on the facade's features; `cargo test --workspace` builds it with all of
//! them (the order-processing example enables them).

use composable_rust::EventStoreError;
use composable_rust::config::{self, ConfigError, EventStoreConfig};
use composable_rust::event_store::SchemaError;
use composable_rust::event_store::StreamRange;
use composable_rust::{ExpectedVersion, Metadata, NewEvent, StreamId};

fn event() -> NewEvent {
    NewEvent {
        id: composable_rust::EventId::generate(),
        event_type: "Opened.v1".into(),
        codec: composable_rust::event::CodecId::Json,
        payload: b"{}".to_vec(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_opens_from_a_config_file_and_keeps_events_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/events.db");
    let file = dir.path().join("app.toml");
    std::fs::write(&file, format!("[event_store]\nbackend = \"sqlite\"\n[event_store.sqlite]\npath = {path:?}\n"))
        .unwrap();
    let config = EventStoreConfig::from_file(&file).unwrap();

    let store = config::open(&config).await.unwrap();
    let report = store.health_check().await.unwrap();
    assert_eq!(report.backend, "sqlite");
    let stream = StreamId::new("thing-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![event()]).await.unwrap();
    drop(store);

    let reopened = config::open(&config).await.unwrap();
    assert_eq!(reopened.load_stream(&stream, StreamRange::all()).await.unwrap().len(), 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_garbage_sqlite_file_is_an_open_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let config = EventStoreConfig::from_toml_str(&format!("[event_store.sqlite]\npath = {path:?}")).unwrap();
    let err = config::open(&config).await.expect_err("a garbage file must not open");
    assert!(
        matches!(&err, ConfigError::Open(EventStoreError::Schema(SchemaError::Unreadable { location, .. })) if location.ends_with("events.db")),
        "{err}"
    );
    assert!(err.to_string().contains("is not an SQLite database"), "{err}");
}

#[cfg(feature = "file")]
#[tokio::test]
async fn the_file_backend_opens_from_a_config_file_keeps_events_and_admits_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/events");
    let config = EventStoreConfig::from_toml_str(&format!(
        "[event_store]\nbackend = \"file\"\n[event_store.file]\npath = {path:?}\n"
    ))
    .unwrap();
    let store = config::open(&config).await.unwrap();
    assert_eq!(store.health_check().await.unwrap().backend, "file");
    let stream = StreamId::new("thing-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![event()]).await.unwrap();
    let second = config::open(&config).await.expect_err("one store per directory");
    assert!(matches!(&second, ConfigError::Open(EventStoreError::InUse { .. })), "{second}");
    store.close().await.unwrap();
    drop(store);

    let reopened = config::open(&config).await.unwrap();
    assert_eq!(reopened.load_stream(&stream, StreamRange::all()).await.unwrap().len(), 1);
}

/// Always compiled: no feature (in particular not `testing`) is needed for the in-memory store.
#[tokio::test]
async fn in_memory_opens_from_configuration_under_either_name() {
    for name in ["in-memory", "memory"] {
        let config = EventStoreConfig::from_toml_str(&format!("[event_store]\nbackend = \"{name}\"")).unwrap();
        let store = config::open(&config).await.unwrap();
        assert_eq!(store.health_check().await.unwrap().backend, "in-memory");
        let stream = StreamId::new("thing-1").unwrap();
        store.append(&stream, ExpectedVersion::NoStream, vec![event()]).await.unwrap();
        assert_eq!(store.load_stream(&stream, StreamRange::all()).await.unwrap().len(), 1);
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

    #[tokio::test]
    async fn postgres_opens_from_configuration_and_is_healthy() {
        let db = PostgresTestDatabase::start().await;
        let config = EventStoreConfig::default()
            .apply_env(|name| (name == "DATABASE_URL").then(|| db.url().to_owned()))
            .unwrap();
        let store = config::open(&config).await.unwrap();
        let report = store.health_check().await.unwrap();
        assert_eq!(report.backend, "postgres");
        let stream = StreamId::new("thing-1").unwrap();
        store.append(&stream, ExpectedVersion::NoStream, vec![event()]).await.unwrap();
        assert_eq!(store.stream_version(&stream).await.unwrap().get(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
        let config = EventStoreConfig::from_toml_str(
            "[event_store]\nbackend = \"postgres\"\n[event_store.postgres]\nurl = \"postgres://app:hunter2@127.0.0.1:1/db\"\nacquire_timeout_secs = 2",
        )
        .unwrap();
        let err = config::open(&config).await.expect_err("nothing listens on port 1");
        let mut chain = format!("{err}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(" / {s}"));
            source = s.source();
        }
        assert!(matches!(err, ConfigError::Open(_)), "{chain}");
        assert!(!chain.contains("hunter2"), "the password leaked: {chain}");
        assert!(!format!("{err:?}").contains("hunter2"), "the password leaked in Debug");
    }
}
