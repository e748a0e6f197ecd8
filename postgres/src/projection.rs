//! Subscriptions on PostgreSQL: one running instance per handler name (an advisory lock), and the store's
//! side of [`Transactional`](composable_rust_sql::Transactional): a page's transaction runs on a connection
//! of the pool, taken only once the projection has staged its statements.

use chrono::{DateTime, Utc};
use composable_rust_core::backend::{HandlerLease, LeaseGuard, validate_handler_name};
use composable_rust_core::{EventStoreError, async_trait};
use composable_rust_sql::TransactionalStore;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Postgres};

use crate::PostgresEventStore;
use crate::error::{is_transient_sqlx, map_sqlx};

/// Takes the session-level advisory lock of `handler` on a connection of its own; the lock lives as long
/// as that connection (dropping the lease closes it, and a dropped connection releases it on the server).
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('composable-rust handler ' || $1, 0))";

pub(crate) async fn try_acquire_lease(
    options: &PgConnectOptions,
    handler: &str,
) -> Result<Option<HandlerLease>, EventStoreError> {
    validate_handler_name(handler)?;
    let operation = || format!("take the lease of handler {handler:?}");
    let mut connection = PgConnection::connect_with(options).await.map_err(|e| map_sqlx(operation(), e))?;
    let locked: bool = sqlx::query_scalar(TRY_LOCK)
        .bind(handler)
        .fetch_one(&mut connection)
        .await
        .map_err(|e| map_sqlx(operation(), e))?;
    if !locked {
        let _ = connection.close().await;
        return Ok(None);
    }
    Ok(Some(HandlerLease::new(handler, AdvisoryLock { handler: handler.to_owned(), connection: Some(connection) })))
}

/// A held advisory lock and the connection (session) that holds it.
struct AdvisoryLock {
    handler: String,
    /// `None` once released.
    connection: Option<PgConnection>,
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryLock").field("handler", &self.handler).finish_non_exhaustive()
    }
}

#[async_trait]
impl LeaseGuard for AdvisoryLock {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        // The lock is the session's: while the session answers, the lock is held.
        let operation = || format!("confirm the lease of handler {:?} (its connection was lost)", self.handler);
        let connection = self.connection.as_mut().ok_or_else(|| EventStoreError::backend(operation(), "released"))?;
        connection.ping().await.map_err(|e| map_sqlx(operation(), e))
    }

    async fn release(&mut self) -> Result<(), EventStoreError> {
        // Ending the session ends the lock, and the server knows at once (no wait for a dropped socket).
        match self.connection.take() {
            Some(connection) => connection
                .close()
                .await
                .map_err(|e| map_sqlx(format!("release the lease of handler {:?}", self.handler), e)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TransactionalStore for PostgresEventStore {
    type Database = Postgres;
    type Connection<'a> = PoolConnection<Postgres>;
    type Timestamp = DateTime<Utc>;

    const BEGIN: &'static str = "BEGIN";

    /// A connection of the store's pool, which also serves appends: no lock is held while the
    /// projection stages its statements.
    async fn write_connection<'a>(&'a self) -> Result<PoolConnection<Postgres>, EventStoreError> {
        self.pool().acquire().await.map_err(|e| self.errors().map("get a connection for a projection", e))
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn is_transient(&self, error: &sqlx::Error) -> bool {
        is_transient_sqlx(error)
    }

    fn map_error(&self, operation: String, error: sqlx::Error) -> EventStoreError {
        self.errors().map(operation, error)
    }
}
