//! Subscriptions on SQLite: commit notifications within the process, a lease row per handler name
//! (table `subscription_leases`), and [`SqliteTransactional`], which writes a read model and its
//! checkpoint in one transaction on the write connection (exactly-once effects).

use std::time::Duration;

use chrono::Utc;
use composable_rust_core::backend::{HandlerLease, LeaseGuard, validate_handler_name};
use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::{Connection, SqliteConnection};
use uuid::Uuid;

use crate::SqliteEventStore;
use crate::error::driver_error;

/// How long a lease row holds without being confirmed. Subscriptions confirm between pages (every 5 s
/// by default), so only a process that stopped (or a page that takes longer than this) lets it expire.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(30);

/// Takes the lease when the row is free or expired.
const TAKE_LEASE: &str = r"
INSERT INTO subscription_leases (handler, owner, expires_at) VALUES (?1, ?2, ?3)
ON CONFLICT (handler) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE subscription_leases.expires_at < ?4";

const RENEW_LEASE: &str = "UPDATE subscription_leases SET expires_at = ?3 WHERE handler = ?1 AND owner = ?2";

const RELEASE_LEASE: &str = "DELETE FROM subscription_leases WHERE handler = ?1 AND owner = ?2";

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

fn expiry() -> i64 {
    micros(Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or(chrono::Duration::seconds(30)))
}

/// A stream that yields after each append committed through this process's store.
pub(crate) fn commit_notifications(commits: &tokio::sync::watch::Sender<u64>) -> BoxStream<'static, ()> {
    let commits = commits.subscribe();
    futures::stream::unfold(commits, |mut commits| async move { commits.changed().await.ok().map(|()| ((), commits)) })
        .boxed()
}

pub(crate) async fn try_acquire_lease(
    store: &SqliteEventStore,
    handler: &str,
) -> Result<Option<HandlerLease>, EventStoreError> {
    validate_handler_name(handler)?;
    let owner = Uuid::new_v4().to_string();
    let operation = || format!("take the lease of handler {handler:?}");
    let mut writer = store.lock_writer().await?;
    let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
    let taken = sqlx::query(TAKE_LEASE)
        .bind(handler)
        .bind(&owner)
        .bind(expiry())
        .bind(micros(Utc::now()))
        .execute(&mut *conn)
        .await
        .map_err(|e| driver_error(operation(), e))?;
    if taken.rows_affected() != 1 {
        return Ok(None);
    }
    Ok(Some(HandlerLease::new(handler, LeaseRow { store: store.clone(), handler: handler.to_owned(), owner })))
}

/// A lease row this instance owns; deleted (in the background) when dropped, or left to expire.
struct LeaseRow {
    store: SqliteEventStore,
    handler: String,
    owner: String,
}

impl std::fmt::Debug for LeaseRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseRow").field("handler", &self.handler).field("owner", &self.owner).finish_non_exhaustive()
    }
}

#[async_trait]
impl LeaseGuard for LeaseRow {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        let operation = || format!("renew the lease of handler {:?}", self.handler);
        let mut writer = self.store.lock_writer().await?;
        let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
        let renewed = sqlx::query(RENEW_LEASE)
            .bind(&self.handler)
            .bind(&self.owner)
            .bind(expiry())
            .execute(&mut *conn)
            .await
            .map_err(|e| driver_error(operation(), e))?;
        if renewed.rows_affected() == 1 {
            Ok(())
        } else {
            Err(EventStoreError::backend(
                operation(),
                "the lease expired and another instance took it; this instance stops handling events",
            ))
        }
    }

    async fn release(&mut self) -> Result<(), EventStoreError> {
        // `owner` is cleared only once the row is gone: a release cut short leaves the drop to retry.
        let mut writer = self.store.lock_writer().await?;
        let conn = writer.as_mut().ok_or_else(crate::store::closed)?;
        sqlx::query(RELEASE_LEASE)
            .bind(&self.handler)
            .bind(&self.owner)
            .execute(&mut *conn)
            .await
            .map_err(|e| driver_error(format!("release the lease of handler {:?}", self.handler), e))?;
        self.owner.clear();
        Ok(())
    }
}

impl Drop for LeaseRow {
    fn drop(&mut self) {
        if self.owner.is_empty() {
            return; // released already
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, handler, owner) =
            (self.store.clone(), std::mem::take(&mut self.handler), std::mem::take(&mut self.owner));
        runtime.spawn(async move {
            // Best effort: a row left behind expires after LEASE_TTL.
            if let Ok(mut writer) = store.lock_writer().await {
                if let Some(conn) = writer.as_mut() {
                    let _ = sqlx::query(RELEASE_LEASE).bind(&handler).bind(&owner).execute(conn).await;
                }
            }
        });
    }
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
