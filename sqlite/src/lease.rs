//! Lease rows on SQLite (table `subscription_leases`): one row per handler name says which instance runs
//! it and until when; a row not renewed by then may be taken by another instance. The lifetime is the
//! `ttl` the lease was taken with (a subscription passes three check intervals and renews every interval).

use std::time::Duration;

use chrono::Utc;
use composable_rust_core::backend::{HandlerLease, LeaseGuard, validate_handler_name};
use composable_rust_core::{EventStoreError, async_trait};
use uuid::Uuid;

use crate::error::driver_error;
use crate::writer::Writer;

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

/// `ttl` from now, in the row's unit; a lifetime too long to represent never expires.
fn expiry(ttl: Duration) -> i64 {
    chrono::TimeDelta::from_std(ttl).ok().and_then(|ttl| Utc::now().checked_add_signed(ttl)).map_or(i64::MAX, micros)
}

/// Takes the lease row of `handler` through the store's write connection, for `ttl`.
pub(crate) async fn try_acquire_lease(
    writer: &Writer,
    handler: &str,
    ttl: Duration,
) -> Result<Option<HandlerLease>, EventStoreError> {
    validate_handler_name(handler)?;
    let owner = Uuid::new_v4().to_string();
    let operation = || format!("take the lease of handler {handler:?}");
    let mut conn = writer.lock().await?;
    let taken = sqlx::query(TAKE_LEASE)
        .bind(handler)
        .bind(&owner)
        .bind(expiry(ttl))
        .bind(micros(Utc::now()))
        .execute(&mut *conn)
        .await
        .map_err(|e| driver_error(operation(), e))?;
    if taken.rows_affected() != 1 {
        return Ok(None);
    }
    Ok(Some(HandlerLease::new(handler, LeaseRow { writer: writer.clone(), handler: handler.to_owned(), owner, ttl })))
}

/// A lease row this instance owns; deleted (in the background) when dropped, or left to expire.
struct LeaseRow {
    writer: Writer,
    handler: String,
    owner: String,
    /// How far each renewal pushes the expiry.
    ttl: Duration,
}

impl std::fmt::Debug for LeaseRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseRow")
            .field("handler", &self.handler)
            .field("owner", &self.owner)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl LeaseGuard for LeaseRow {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        let operation = || format!("renew the lease of handler {:?}", self.handler);
        let mut conn = self.writer.lock().await?;
        let renewed = sqlx::query(RENEW_LEASE)
            .bind(&self.handler)
            .bind(&self.owner)
            .bind(expiry(self.ttl))
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
        let mut conn = self.writer.lock().await?;
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
        let (writer, handler, owner) =
            (self.writer.clone(), std::mem::take(&mut self.handler), std::mem::take(&mut self.owner));
        runtime.spawn(async move {
            // Best effort: a row left behind expires after its ttl.
            if let Ok(mut conn) = writer.lock().await {
                let _ = sqlx::query(RELEASE_LEASE).bind(&handler).bind(&owner).execute(&mut *conn).await;
            }
        });
    }
}
