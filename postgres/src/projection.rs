//! Subscriptions on PostgreSQL: one running instance per handler name (an advisory lock), and
//! [`PgTransactional`], which writes a read model and its checkpoint in one transaction (exactly-once
//! effects).

use composable_rust_core::backend::{HandlerLease, LeaseGuard, validate_handler_name};
use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection};

use crate::error::{is_transient_sqlx, map_sqlx};

/// Takes the session-level advisory lock of `handler` on a connection of its own; the lock lives as long
/// as that connection (dropping the lease closes it, and a dropped connection releases it on the server).
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('composable-rust handler ' || $1, 0))";

const LOAD_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE handler = $1";

/// Records the page's last position, unless the stored checkpoint is already at or past the page's first
/// event: then another instance applied it, and the page's transaction must roll back.
const ADVANCE_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, $2, now())
ON CONFLICT (handler) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
WHERE checkpoints.position < $3";

const RESET_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, 0, now())
ON CONFLICT (handler) DO UPDATE SET position = 0, updated_at = EXCLUDED.updated_at";

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

/// A read model kept in PostgreSQL, written in the subscription's transaction; see [`PgTransactional`].
///
/// ```no_run
/// use composable_rust_core::{BoxError, RecordedEvent, async_trait};
/// use composable_rust_postgres::PgProjection;
/// use sqlx::PgConnection;
///
/// #[derive(Debug)]
/// struct EventsPerStream;
///
/// #[async_trait]
/// impl PgProjection for EventsPerStream {
///     async fn apply(&mut self, tx: &mut PgConnection, event: &RecordedEvent) -> Result<(), BoxError> {
///         sqlx::query("INSERT INTO events_per_stream VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET count = events_per_stream.count + 1")
///             .bind(event.stream_id.as_str())
///             .execute(tx)
///             .await?;
///         Ok(())
///     }
///
///     async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), BoxError> {
///         sqlx::query("DELETE FROM events_per_stream").execute(tx).await?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait PgProjection: Send + 'static {
    /// Applies one event, writing through `tx`: the open transaction that will also record the checkpoint.
    ///
    /// # Errors
    /// Any error rolls the page back and stops the subscription, naming this event. A `sqlx::Error` that
    /// says the connection failed or the server asked to retry (I/O, the pool, a serialization failure, a
    /// deadlock, a server shutting down) rolls the page back and retries it later instead.
    async fn apply(&mut self, tx: &mut PgConnection, event: &RecordedEvent) -> Result<(), BoxError>;

    /// Clears the read model for a rebuild, in the transaction that also resets the checkpoint.
    ///
    /// # Errors
    /// Any error rolls the reset back.
    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), BoxError>;
}

/// Exactly-once effects in PostgreSQL: each page of events is applied by a [`PgProjection`] and recorded
/// as the handler's checkpoint in one transaction, so a crash or a dropped connection either keeps both
/// or neither.
///
/// The checkpoint update is also a fence: it only moves forward from before the page's first event, so
/// even two instances that both believed they held the lease could not both apply one event.
/// Use it with `composable_rust_runtime::Subscription::checkpointed`.
pub struct PgTransactional<P> {
    pool: PgPool,
    projection: P,
}

impl<P: PgProjection> PgTransactional<P> {
    /// Applies `projection` in transactions on `pool` (usually [`PostgresEventStore::pool`](crate::PostgresEventStore::pool)).
    pub fn new(pool: PgPool, projection: P) -> Self {
        Self { pool, projection }
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }
}

impl<P> std::fmt::Debug for PgTransactional<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransactional").field("projection", &std::any::type_name::<P>()).finish_non_exhaustive()
    }
}

fn to_db(position: GlobalPosition) -> i64 {
    i64::try_from(position.get()).unwrap_or(i64::MAX)
}

/// Whether a handler's error is really the connection failing or the server asking to retry (the page is
/// retried) rather than the handler refusing the event.
fn is_connection_error(error: &BoxError) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .is_some_and(|e| is_transient_sqlx(e) || matches!(e, sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed))
}

#[async_trait]
impl<P: PgProjection> CheckpointedHandler for PgTransactional<P> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        let position: Option<i64> = sqlx::query_scalar(LOAD_CHECKPOINT)
            .bind(handler)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx(format!("load the checkpoint of handler {handler:?}"), e))?;
        Ok(position.map(|p| GlobalPosition::new(u64::try_from(p).unwrap_or_default())))
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let operation = || format!("apply events {}..={} for handler {handler:?}", first.position, last.position);
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(operation(), e))?;
        for (index, event) in events.iter().enumerate() {
            if let Err(source) = self.projection.apply(&mut tx, event).await {
                // Dropping the transaction rolls it back.
                drop(tx);
                if is_connection_error(&source) {
                    let failed = match source.downcast::<sqlx::Error>() {
                        Ok(sqlx_error) => map_sqlx(operation(), *sqlx_error),
                        Err(source) => EventStoreError::backend(operation(), source),
                    };
                    return Err(failed.into());
                }
                return Err(ApplyError::Handler { index, source });
            }
        }
        let advanced = sqlx::query(ADVANCE_CHECKPOINT)
            .bind(handler)
            .bind(to_db(last.position))
            .bind(to_db(first.position))
            .execute(&mut *tx)
            .await
            .map_err(|e| map_sqlx(operation(), e))?;
        if advanced.rows_affected() != 1 {
            drop(tx);
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
        tx.commit().await.map_err(|e| map_sqlx(operation(), e))?;
        Ok(())
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        let operation = || format!("reset handler {handler:?}");
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(operation(), e))?;
        self.projection.reset(&mut tx).await.map_err(ApplyError::Reset)?;
        sqlx::query(RESET_CHECKPOINT).bind(handler).execute(&mut *tx).await.map_err(|e| map_sqlx(operation(), e))?;
        tx.commit().await.map_err(|e| map_sqlx(operation(), e))?;
        Ok(())
    }
}
