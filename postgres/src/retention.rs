//! Retention on PostgreSQL: not implemented yet. [`EventRetention::remove_events`] answers
//! [`EventStoreError::Unsupported`], so an operator sees at once that nothing was removed; since nothing can
//! be removed, the queries answer truthfully that nothing was (no horizon, every stream starts at version 1,
//! no runs), and subscriptions and loads work as before.

use composable_rust_core::backend::{EventLog, EventRetention};
use composable_rust_core::{
    EventStoreError, GlobalPosition, LogFilter, RemovalBatch, RemovalOutcome, RetentionRun, StreamId, Version,
    async_trait,
};

use crate::PostgresEventStore;

fn unsupported() -> EventStoreError {
    EventStoreError::Unsupported {
        operation: "retention",
        backend: "postgres",
        fix: "keep every event on PostgreSQL for now (the default policy), or run retention on SQLite, the file \
              or the in-memory backend",
    }
}

#[async_trait]
impl EventRetention for PostgresEventStore {
    async fn remove_events(&self, _batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        Err(unsupported())
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        Ok(None)
    }

    async fn removed_between(
        &self,
        _after: GlobalPosition,
        _through: GlobalPosition,
        _filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        Ok(0)
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        let version = self.stream_version(stream_id).await?;
        Ok((version > Version::INITIAL).then_some(Version::FIRST))
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        Ok(Vec::new())
    }
}
