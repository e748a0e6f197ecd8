//! Helpers shared by the PostgreSQL integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test helpers: failing loudly is their job

use composable_rust_core::{CodecId, Metadata, NewEvent};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

/// A migrated store on a fresh database; keep the database alive as long as the store.
pub async fn migrated_store() -> (PostgresEventStore, PostgresTestDatabase) {
    let (store, db) = unmigrated_store().await;
    store.migrate().await.unwrap();
    (store, db)
}

/// A store on a fresh, empty database (no schema).
pub async fn unmigrated_store() -> (PostgresEventStore, PostgresTestDatabase) {
    let db = PostgresTestDatabase::start().await;
    let mut config = PostgresConfig::from_options(db.connect_options());
    config.max_connections = 20;
    let store = PostgresEventStore::connect_with(config).await.unwrap();
    (store, db)
}

/// A JSON event whose payload names its writer and sequence number.
pub fn event(writer: usize, seq: usize) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Tested.v1".into(),
        codec: CodecId::Json,
        payload: format!(r#"{{"writer":{writer},"seq":{seq}}}"#).into_bytes(),
        metadata: Metadata::default().with_actor(format!("writer-{writer}")),
        tags: Vec::new(),
    }
}
