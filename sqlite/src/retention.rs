//! Retention on SQLite ([`EventRetention`]): each batch is one `BEGIN IMMEDIATE` transaction on the write
//! connection that checks every stream's version and snapshot, records each removed event in
//! `retention_removed`, deletes its tag rows and its row, and updates the run's audit row in
//! `retention_runs` (migration 6). The delete triggers of `events` and `event_tags` refuse any delete whose
//! event was not recorded first, so this is the only path by which an event leaves the file.

use chrono::Utc;
use composable_rust_core::backend::{EventRetention, check_stream_removal};
use composable_rust_core::{
    EventStoreError, GlobalPosition, LogFilter, RemovalBatch, RemovalOutcome, RetentionRun, RetentionRunId, StreamId,
    Version, async_trait,
};
use sqlx::{Connection, Row};
use uuid::Uuid;

use crate::SqliteEventStore;
use crate::rows::{from_micros, to_i64, to_micros, to_u64};
use crate::sql;

#[async_trait]
impl EventRetention for SqliteEventStore {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        batch.validate()?;
        let operation = || format!("remove {} events (retention run {})", batch.len(), batch.run);
        let run_id = batch.run.as_uuid();
        let mut conn = self.writer().lock().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(self.fail(operation))?;
        for removal in &batch.streams {
            let version = self.version_in(&mut tx, &removal.stream_id).await?;
            let snapshot: Option<i64> = sqlx::query_scalar(sql::SNAPSHOT_VERSION)
                .bind(removal.stream_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.fail(operation))?;
            let snapshot = snapshot.map(|v| to_u64(v, "snapshot version").map(Version::new)).transpose()?;
            check_stream_removal(removal, version, snapshot)?;
        }
        // The run's row first (its removal records reference it): created by the run's first batch, its
        // batch count raised by each later one.
        let now = to_micros(Utc::now());
        sqlx::query(sql::UPSERT_RETENTION_RUN)
            .bind(run_id)
            .bind(batch.actor.as_str())
            .bind(batch.policy.as_str())
            .bind(batch.archive.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(self.fail(operation))?;
        let mut outcome = RemovalOutcome::default();
        for removal in &batch.streams {
            for version in &removal.versions {
                let row = sqlx::query(sql::EVENT_AT_VERSION)
                    .bind(removal.stream_id.as_str())
                    .bind(to_i64(version.get(), "stream version")?)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(self.fail(operation))?;
                let Some(row) = row else {
                    outcome.already_removed += 1;
                    continue;
                };
                let position: i64 = row.try_get(0).map_err(self.fail(operation))?;
                let event_type: String = row.try_get(1).map_err(self.fail(operation))?;
                sqlx::query(sql::RECORD_REMOVED)
                    .bind(position)
                    .bind(removal.stream_id.as_str())
                    .bind(event_type)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.fail(operation))?;
                for statement in [sql::DELETE_EVENT_TAGS, sql::DELETE_EVENT] {
                    sqlx::query(statement).bind(position).execute(&mut *tx).await.map_err(self.fail(operation))?;
                }
                outcome.removed += 1;
            }
        }
        sqlx::query(sql::COUNT_RETENTION_RUN)
            .bind(run_id)
            .bind(to_i64(outcome.removed, "events removed")?)
            .execute(&mut *tx)
            .await
            .map_err(self.fail(operation))?;
        tx.commit().await.map_err(self.fail(operation))?;
        Ok(outcome)
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        let horizon: Option<i64> = sqlx::query_scalar(sql::REMOVAL_HORIZON)
            .fetch_one(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| "read the removal horizon".to_owned()))?;
        Ok(horizon.map(|p| to_u64(p, "global position")).transpose()?.map(GlobalPosition::new))
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        let types = if filter.event_types.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&filter.event_types)
                    .map_err(|e| EventStoreError::backend("encode a filter", e))?,
            )
        };
        let count: i64 = sqlx::query_scalar(sql::COUNT_REMOVED)
            .bind(to_i64(after.get(), "global position")?)
            .bind(to_i64(through.get(), "global position")?)
            .bind(types)
            .bind(filter.stream_prefix.as_deref())
            .fetch_one(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("count the events removed after position {after}")))?;
        to_u64(count, "count")
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        let first: Option<i64> = sqlx::query_scalar(sql::FIRST_RETAINED_VERSION)
            .bind(stream_id.as_str())
            .fetch_one(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("read the first version of stream {stream_id}")))?;
        Ok(first.map(|v| to_u64(v, "stream version")).transpose()?.map(Version::new))
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        let operation = || "list the retention runs".to_owned();
        let rows = sqlx::query(sql::RETENTION_RUNS)
            .fetch_all(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(operation))?;
        rows.iter()
            .map(|row| {
                let id: Uuid = row.try_get(0).map_err(self.fail(operation))?;
                Ok(RetentionRun {
                    id: RetentionRunId::from(id),
                    actor: row.try_get(1).map_err(self.fail(operation))?,
                    policy: row.try_get(2).map_err(self.fail(operation))?,
                    archive: row.try_get(3).map_err(self.fail(operation))?,
                    started_at: from_micros(row.try_get(4).map_err(self.fail(operation))?, "started_at")?,
                    finished_at: from_micros(row.try_get(5).map_err(self.fail(operation))?, "finished_at")?,
                    events_removed: to_u64(row.try_get(6).map_err(self.fail(operation))?, "events_removed")?,
                    batches: to_u64(row.try_get(7).map_err(self.fail(operation))?, "batches")?,
                })
            })
            .collect()
    }
}
