//! Retention on PostgreSQL: [`EventRetention`] through the functions of migration `0006_retention.sql`.
//!
//! A batch is one call of `events_retention_remove`, one transaction: the function checks the invariants of
//! [`composable_rust_core::retention`] on the streams as its transaction sees them (their last versions, their
//! snapshots), removes the events, keeps each one's position, stream and type in `retention_removed`, and adds
//! the batch to the run's audit row in `retention_runs`. It runs with the rights of the schema's owner
//! (`SECURITY DEFINER`) and only a role granted `EXECUTE` may call it, so the application's role cannot remove
//! anything: a store connected as that role answers [`EventStoreError::Backend`] saying which role to connect as.
//! The store opens no second pool for retention: the process that runs it (the admin CLI) connects as the
//! retention role (docs/database-setup.md, 4b; the argument in docs/decisions.md, "Retention on PostgreSQL").
//!
//! The horizon, the removed counts and the audit rows are read through `SECURITY DEFINER` functions that any
//! role may call, so the application's subscriptions need no privilege on the retention tables.

use chrono::{DateTime, Utc};
use composable_rust_core::backend::EventRetention;
use composable_rust_core::{
    EventStoreError, GlobalPosition, LogFilter, RemovalBatch, RemovalOutcome, RemovalRefusal, RetentionRun,
    RetentionRunId, StreamId, Version, async_trait,
};
use sqlx::Row;
use thiserror::Error;
use uuid::Uuid;

use crate::PostgresEventStore;

/// One batch: the run, its actor, policy and archive, then one array entry per event (stream, version,
/// replay-free). Returns what was removed, or the first refusal (then nothing was removed).
const REMOVE: &str = r"
SELECT removed, already_removed, refused_stream, refused_version, refused_reason, refused_at
FROM events_retention_remove($1, $2, $3, $4, $5::text[], $6::bigint[], $7::boolean[])";

/// The greatest position ever removed, or NULL.
const HORIZON: &str = "SELECT events_removal_horizon()";

/// Removed events with a position in `($1, $2]`, of the types `$3` (empty: any), in streams starting with `$4`.
const REMOVED_BETWEEN: &str = "SELECT events_removed_between($1, $2, $3::text[], $4)";

/// The lowest stored version of stream `$1`: a forward probe of the primary key.
const FIRST_RETAINED: &str = "SELECT MIN(version) FROM events WHERE stream_id = $1";

/// The audit rows, oldest first.
const RUNS: &str = r"
SELECT run_id, actor, policy, archive, started_at, finished_at, removed_events, batches
FROM events_retention_runs()";

/// Why retention could not run on PostgreSQL; the source of an [`EventStoreError::Backend`].
#[derive(Debug, Error)]
enum RetentionError {
    /// The connected role may not call the removal function: it is the application's role, most likely.
    #[error(
        "the role {role} may not remove events: only a role granted EXECUTE on events_retention_remove may; run \
         retention connected as that role (docs/database-setup.md, \"A retention role\")"
    )]
    NotPermitted {
        /// The role in the connection options.
        role: String,
        /// The server's refusal.
        #[source]
        source: sqlx::Error,
    },
    /// The function answered a refusal this build does not know: the migration and the code disagree.
    #[error(
        "events_retention_remove refused version {version} of stream {stream} for a reason this build does not know: {reason}"
    )]
    UnknownRefusal {
        /// The stream.
        stream: String,
        /// The version.
        version: i64,
        /// The reason the function gave.
        reason: String,
    },
}

/// A `u64` as a `BIGINT` parameter; values beyond `i64::MAX` are clamped (they match no stored row).
fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `BIGINT` the schema keeps non-negative as a `u64`.
fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

impl PostgresEventStore {
    /// Maps a failure of retention's statements, telling a missing `EXECUTE` apart.
    fn retention_error(&self, operation: String, error: sqlx::Error) -> EventStoreError {
        let refused = matches!(&error, sqlx::Error::Database(db) if db.code().as_deref() == Some("42501"));
        if refused {
            let role = self.pool().connect_options().get_username().to_owned();
            return EventStoreError::backend(operation, RetentionError::NotPermitted { role, source: error });
        }
        self.errors().map(operation, error)
    }
}

/// The refusal the function returned, as the contract's reason.
fn refusal(reason: &str, at: Option<i64>) -> Option<RemovalRefusal> {
    let at = || Version::new(from_db(at.unwrap_or_default()));
    match reason {
        "last_event" => Some(RemovalRefusal::LastEvent),
        "no_snapshot" => Some(RemovalRefusal::NoSnapshot),
        "above_snapshot" => Some(RemovalRefusal::AboveSnapshot { snapshot: at() }),
        "beyond_stream" => Some(RemovalRefusal::BeyondStream { stream_version: at() }),
        _ => None,
    }
}

#[async_trait]
impl EventRetention for PostgresEventStore {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        batch.validate()?;
        let len = batch.len();
        let (mut streams, mut versions, mut replay_free) =
            (Vec::with_capacity(len), Vec::with_capacity(len), Vec::with_capacity(len));
        for stream in &batch.streams {
            for version in &stream.versions {
                streams.push(stream.stream_id.as_str());
                versions.push(to_db(version.get()));
                replay_free.push(stream.replay_free);
            }
        }
        let operation = || format!("remove {len} events (retention run {})", batch.run);
        let row = sqlx::query(REMOVE)
            .bind(batch.run.as_uuid())
            .bind(&batch.actor)
            .bind(&batch.policy)
            .bind(batch.archive.as_deref())
            .bind(&streams)
            .bind(&versions)
            .bind(&replay_free)
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.retention_error(operation(), e))?;
        type Answer = (i64, i64, Option<String>, Option<i64>, Option<String>, Option<i64>);
        let decoded: Result<Answer, sqlx::Error> = (|| {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?))
        })();
        let (removed, already_removed, refused_stream, refused_version, refused_reason, refused_at) =
            decoded.map_err(|e| self.retention_error(operation(), e))?;
        if let (Some(stream), Some(version), Some(reason)) = (refused_stream, refused_version, refused_reason) {
            let Some(why) = refusal(&reason, refused_at) else {
                return Err(EventStoreError::backend(
                    operation(),
                    RetentionError::UnknownRefusal { stream, version, reason },
                ));
            };
            // The function names a stream of the batch, so it is one of ours.
            let stream_id = batch
                .streams
                .iter()
                .map(|s| &s.stream_id)
                .find(|id| id.as_str() == stream)
                .cloned()
                .map_or_else(|| StreamId::new(stream), Ok)
                .map_err(|e| EventStoreError::backend(operation(), e))?;
            return Err(EventStoreError::RemovalRefused {
                stream_id,
                version: Version::new(from_db(version)),
                reason: why,
            });
        }
        Ok(RemovalOutcome { removed: from_db(removed), already_removed: from_db(already_removed) })
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        let horizon: Option<i64> = sqlx::query_scalar(HORIZON)
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.retention_error("read the removal horizon".to_owned(), e))?;
        Ok(horizon.map(|p| GlobalPosition::new(from_db(p))))
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        let count: Option<i64> = sqlx::query_scalar(REMOVED_BETWEEN)
            .bind(to_db(after.get()))
            .bind(to_db(through.get()))
            .bind(filter.event_types.as_slice())
            .bind(filter.stream_prefix.as_deref())
            .fetch_one(self.pool())
            .await
            .map_err(|e| {
                self.retention_error(format!("count the removed events after position {after} through {through}"), e)
            })?;
        Ok(from_db(count.unwrap_or_default()))
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        let first: Option<i64> =
            sqlx::query_scalar(FIRST_RETAINED).bind(stream_id.as_str()).fetch_one(self.pool()).await.map_err(|e| {
                self.retention_error(format!("read the first retained version of stream {stream_id}"), e)
            })?;
        Ok(first.map(|v| Version::new(from_db(v))))
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        type Row = (Uuid, String, String, Option<String>, DateTime<Utc>, DateTime<Utc>, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(RUNS)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.retention_error("list the retention runs".to_owned(), e))?;
        Ok(rows
            .into_iter()
            .map(|(id, actor, policy, archive, started_at, finished_at, removed, batches)| RetentionRun {
                id: RetentionRunId::from(id),
                actor,
                policy,
                archive,
                started_at,
                finished_at,
                events_removed: from_db(removed),
                batches: from_db(batches),
            })
            .collect())
    }
}
