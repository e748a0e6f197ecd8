//! Subscriptions on SQLite: commit notifications within the process, and [`SqliteTransactional`], which
//! writes a read model and its checkpoint in one transaction on the write connection (exactly-once
//! effects). The lease rows are in `lease.rs`.

use chrono::Utc;
use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::{Connection, SqliteConnection};

use crate::SqliteEventStore;
use crate::error::driver_error;

const LOAD_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE handler = ?1";

/// Records the page's last position unless the stored checkpoint is already at or past the page's first
/// event (another instance applied it: the page's transaction rolls back).
const ADVANCE_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES (?1, ?2, ?4)
ON CONFLICT (handler) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
WHERE checkpoints.position < ?3";

const RESET_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES (?1, 0, ?2)
ON CONFLICT (handler) DO UPDATE SET position = 0, updated_at = excluded.updated_at";

fn micros(at: chrono::DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A stream that yields after each append committed through this process's store.
pub(crate) fn commit_notifications(commits: &tokio::sync::watch::Sender<u64>) -> BoxStream<'static, ()> {
    let commits = commits.subscribe();
    futures::stream::unfold(commits, |mut commits| async move { commits.changed().await.ok().map(|()| ((), commits)) })
        .boxed()
}

/// A read model kept in the SQLite file, written in the subscription's transaction; see
/// [`SqliteTransactional`].
#[async_trait]
pub trait SqliteProjection: Send + 'static {
    /// Applies one event, writing through `tx`: the open transaction that will also record the checkpoint.
    ///
    /// # Errors
    /// Any error rolls the page back and stops the subscription, naming this event.
    async fn apply(&mut self, tx: &mut SqliteConnection, event: &RecordedEvent) -> Result<(), BoxError>;

    /// Clears the read model for a rebuild, in the transaction that also resets the checkpoint.
    ///
    /// # Errors
    /// Any error rolls the reset back.
    async fn reset(&mut self, tx: &mut SqliteConnection) -> Result<(), BoxError>;
}

/// Exactly-once effects in SQLite: each page is applied by a [`SqliteProjection`] and recorded as the
/// handler's checkpoint in one `BEGIN IMMEDIATE` transaction on the store's write connection, so both
/// commit or neither does. Appends of this process wait while a page is applied (SQLite has one writer).
///
/// As on PostgreSQL, the checkpoint update is a fence: it only moves forward from before the page's first
/// event. Use it with `composable_rust_runtime::Subscription::checkpointed`.
pub struct SqliteTransactional<P> {
    store: SqliteEventStore,
    projection: P,
}

impl<P: SqliteProjection> SqliteTransactional<P> {
    /// Applies `projection` in transactions on `store`'s write connection.
    pub fn new(store: SqliteEventStore, projection: P) -> Self {
        Self { store, projection }
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }
}

impl<P> std::fmt::Debug for SqliteTransactional<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTransactional")
            .field("store", &self.store)
            .field("projection", &std::any::type_name::<P>())
            .finish()
    }
}

fn to_db(position: GlobalPosition) -> i64 {
    i64::try_from(position.get()).unwrap_or(i64::MAX)
}

#[async_trait]
impl<P: SqliteProjection> CheckpointedHandler for SqliteTransactional<P> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        let mut writer = self.store.lock_writer().await?;
        let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
        let position: Option<i64> = sqlx::query_scalar(LOAD_CHECKPOINT)
            .bind(handler)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| driver_error(format!("load the checkpoint of handler {handler:?}"), e))?;
        Ok(position.map(|p| GlobalPosition::new(u64::try_from(p).unwrap_or_default())))
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let operation = || format!("apply events {}..={} for handler {handler:?}", first.position, last.position);
        let mut writer = self.store.lock_writer().await?;
        let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| driver_error(operation(), e))?;
        for (index, event) in events.iter().enumerate() {
            if let Err(source) = self.projection.apply(&mut tx, event).await {
                tx.rollback().await.map_err(|e| driver_error(operation(), e))?;
                return Err(ApplyError::Handler { index, source });
            }
        }
        let advanced = sqlx::query(ADVANCE_CHECKPOINT)
            .bind(handler)
            .bind(to_db(last.position))
            .bind(to_db(first.position))
            .bind(micros(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(|e| driver_error(operation(), e))?;
        if advanced.rows_affected() != 1 {
            tx.rollback().await.map_err(|e| driver_error(operation(), e))?;
            return Err(EventStoreError::backend(
                operation(),
                format!(
                    "the checkpoint of handler {handler:?} is already at or past position {}: another instance \
                     applied these events; this page was rolled back",
                    first.position
                ),
            )
            .into());
        }
        tx.commit().await.map_err(|e| driver_error(operation(), e))?;
        Ok(())
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        let operation = || format!("reset handler {handler:?}");
        let mut writer = self.store.lock_writer().await?;
        let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| driver_error(operation(), e))?;
        self.projection.reset(&mut tx).await.map_err(ApplyError::Reset)?;
        sqlx::query(RESET_CHECKPOINT)
            .bind(handler)
            .bind(micros(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(|e| driver_error(operation(), e))?;
        tx.commit().await.map_err(|e| driver_error(operation(), e))?;
        Ok(())
    }
}
