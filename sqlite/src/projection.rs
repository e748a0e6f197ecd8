//! Subscriptions on SQLite: a lease row per handler name (table `subscription_leases`), and the store's
//! side of [`Transactional`](composable_rust_sql::Transactional): a page's transaction runs on the write
//! connection, taken only once the projection has staged its statements.

use std::time::Duration;

use chrono::Utc;
use composable_rust_core::{EventStoreError, HandlerLease, LeaseGuard, async_trait, validate_handler_name};
use composable_rust_sql::TransactionalStore;
use sqlx::Sqlite;
use uuid::Uuid;

use crate::SqliteEventStore;
use crate::error::{driver_error, is_transient};
use crate::writer::WriteGuard;

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

fn micros(at: chrono::DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn expiry() -> i64 {
    micros(Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or(chrono::Duration::seconds(30)))
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

#[async_trait]
impl TransactionalStore for SqliteEventStore {
    type Database = Sqlite;
    type Connection<'a> = WriteGuard<'a>;
    /// Microseconds since the Unix epoch, as `checkpoints.updated_at` stores them.
    type Timestamp = i64;

    /// Takes the file's write lock at once: a page never waits for it half way.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    /// The store's one write connection: the page's statements queue with the appends of the process.
    async fn write_connection<'a>(&'a self) -> Result<WriteGuard<'a>, EventStoreError> {
        self.writer().lock().await
    }

    fn now(&self) -> i64 {
        micros(Utc::now())
    }

    fn is_transient(&self, error: &sqlx::Error) -> bool {
        is_transient(error)
    }

    fn map_error(&self, operation: String, error: sqlx::Error) -> EventStoreError {
        self.fail(|| operation)(error)
    }
}
