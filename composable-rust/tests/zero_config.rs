//! Zero configuration means zero: no file, no variables, and the store is SQLite in `data/events.db`.
//!
//! One test in its own binary, because it changes the process's working directory.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use composable_rust::NewEvent;
use composable_rust::config::{self, EventStoreConfig, SqliteSettings};
use composable_rust::event_store::StreamRange;
use composable_rust::prelude::*;

#[tokio::test]
async fn no_file_and_no_variables_open_sqlite_in_the_documented_path() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();

    let config = EventStoreConfig::from_file_or_default("composable.toml").unwrap();
    assert_eq!(config.location(), "SQLite file data/events.db");
    let store = config::open(&config).await.expect("the default configuration opens");
    let stream = StreamId::new("note-1").unwrap();
    let event = NewEvent::new("Noted.v1", composable_rust::event::CodecId::Json, b"{}".to_vec(), Metadata::default());
    store.append(&stream, ExpectedVersion::NoStream, vec![event]).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    assert!(dir.path().join(SqliteSettings::DEFAULT_PATH).is_file(), "the data went to data/events.db");
    let reopened = config::open(&EventStoreConfig::default()).await.unwrap();
    let events = reopened.load_stream(&stream, StreamRange::all()).await.unwrap();
    assert_eq!(events.len(), 1, "and stays there");
}
