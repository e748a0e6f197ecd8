//! [`Transactional`]: a [`SqlProjection`] applied page by page, each page written with the handler's
//! checkpoint in one transaction; and [`TransactionalStore`], what a backend provides for it.

use std::fmt;
use std::ops::DerefMut;

use composable_rust_core::{
    ApplyError, CheckpointedHandler, EventStore, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use sqlx::{Connection, Database, Encode, Executor, IntoArguments, Type};

use crate::checkpoint::{ADVANCE_CHECKPOINT, RESET_CHECKPOINT};
use crate::projection::{SqlProjection, Statement, Writes};

/// An event store whose database can hold read models written by [`Transactional`]: implemented by the
/// PostgreSQL and SQLite stores. Only backend authors implement it.
#[async_trait]
pub trait TransactionalStore: EventStore + Send + Sync + 'static {
    /// The sqlx driver.
    type Database: Database;

    /// A connection to write a page with, the caller's alone until dropped.
    type Connection<'a>: DerefMut<Target = <Self::Database as Database>::Connection> + Send
    where
        Self: 'a;

    /// The `updated_at` value of a checkpoint, in the column type of this backend's `checkpoints` table.
    type Timestamp: for<'q> Encode<'q, Self::Database> + Type<Self::Database> + Send + 'static;

    /// The statement that opens a page's transaction: `BEGIN`, or SQLite's `BEGIN IMMEDIATE`, which takes
    /// the write lock before the first statement so that no lock upgrade can fail half way.
    const BEGIN: &'static str;

    /// A write connection. Called only once the projection's own code has run for the page.
    ///
    /// # Errors
    /// [`EventStoreError`] when no connection can be had (closed store, unreachable server).
    async fn write_connection<'a>(&'a self) -> Result<Self::Connection<'a>, EventStoreError>;

    /// The time now, for the checkpoint's `updated_at`.
    fn now(&self) -> Self::Timestamp;

    /// Whether running the same statement again may succeed (a lost connection, a busy lock, a
    /// serialization failure): the page is then retried rather than blamed on the projection.
    fn is_transient(&self, error: &sqlx::Error) -> bool;

    /// The contract's error for a driver error during `operation`.
    fn map_error(&self, operation: String, error: sqlx::Error) -> EventStoreError;
}

/// Exactly-once effects in the event store's own database: each page of events is applied by a
/// [`SqlProjection`] and recorded as the handler's checkpoint in one transaction, so a crash or a dropped
/// connection keeps both or neither. Use it with `composable_rust_runtime::Subscription::checkpointed`.
///
/// A page runs in two steps. First the projection's [`apply`](SqlProjection::apply) stages the statements
/// of every event, with no connection held and no lock taken. Then one short transaction runs them and
/// advances the checkpoint. The checkpoint update is also a fence: it only moves forward from before the
/// page's first event, so even two instances that both believed they held the lease could not both
/// commit one event.
pub struct Transactional<S, P> {
    store: S,
    projection: P,
}

impl<S: TransactionalStore, P: SqlProjection<S::Database>> Transactional<S, P> {
    /// Applies `projection` in transactions on `store`'s database, where the read model lives.
    pub fn new(store: S, projection: P) -> Self {
        Self { store, projection }
    }
}

impl<S, P> Transactional<S, P> {
    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The projection, to change its state between runs.
    pub fn projection_mut(&mut self) -> &mut P {
        &mut self.projection
    }
}

impl<S: fmt::Debug, P> fmt::Debug for Transactional<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactional")
            .field("store", &self.store)
            .field("projection", &std::any::type_name::<P>())
            .finish()
    }
}

/// A global position as the `BIGINT`/`INTEGER` column stores it (positions never reach `i64::MAX`).
fn to_column(position: GlobalPosition) -> i64 {
    i64::try_from(position.get()).unwrap_or(i64::MAX)
}

/// What failed in a page's transaction, told apart where the projection is to blame.
enum Failure {
    /// A statement the projection staged (for `events[index]`, or for a reset when `None`) was refused.
    Refused { index: Option<usize>, source: sqlx::Error },
    /// The store failed: retry.
    Store(EventStoreError),
}

impl From<EventStoreError> for Failure {
    fn from(error: EventStoreError) -> Self {
        Self::Store(error)
    }
}

impl From<Failure> for ApplyError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused { index: Some(index), source } => ApplyError::Handler { index, source: Box::new(source) },
            Failure::Refused { index: None, source } => ApplyError::Reset(Box::new(source)),
            Failure::Store(error) => ApplyError::Store(error),
        }
    }
}

/// The checkpoint statement a page's transaction ends with.
enum Checkpoint {
    /// Advance to `last`, fenced at `first`.
    Advance { first: GlobalPosition, last: GlobalPosition },
    /// Back to the start of the log.
    Reset,
}

/// Runs the staged statements (grouped by the index of the event that staged them) and the checkpoint
/// statement in one transaction on `store`, and commits it.
async fn commit<S>(
    store: &S,
    handler: &str,
    staged: Vec<(Option<usize>, Writes<S::Database>)>,
    checkpoint: Checkpoint,
    operation: &(dyn Fn() -> String + Sync),
) -> Result<(), Failure>
where
    S: TransactionalStore,
    for<'c> &'c mut <S::Database as Database>::Connection: Executor<'c, Database = S::Database>,
    for<'q> <S::Database as Database>::Arguments<'q>: IntoArguments<'q, S::Database>,
    for<'q> i64: Encode<'q, S::Database> + Type<S::Database>,
    for<'q> &'q str: Encode<'q, S::Database> + Type<S::Database>,
{
    {
        let fail = |error| Failure::Store(store.map_error(operation(), error));
        let mut connection = store.write_connection().await?;
        let mut tx = connection.begin_with(S::BEGIN).await.map_err(fail)?;
        for (index, writes) in staged {
            for statement in writes.into_statements() {
                if let Err(error) = run(statement, &mut tx).await {
                    tx.rollback().await.map_err(fail)?;
                    // Refused by the database (a constraint, a missing table): the projection's to fix.
                    // Anything else (a lost connection, a busy lock) is the store's, and is retried.
                    let refused = error.as_database_error().is_some() && !store.is_transient(&error);
                    return Err(if refused { Failure::Refused { index, source: error } } else { fail(error) });
                }
            }
        }
        match checkpoint {
            Checkpoint::Advance { first, last } => {
                let advanced = sqlx::query(ADVANCE_CHECKPOINT)
                    .bind(handler)
                    .bind(to_column(last))
                    .bind(to_column(first))
                    .bind(store.now())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail)?;
                if advanced.is_none() {
                    tx.rollback().await.map_err(fail)?;
                    return Err(Failure::Store(EventStoreError::backend(
                        operation(),
                        format!(
                            "the checkpoint of handler {handler:?} is already at or past position {first}: another \
                             instance applied these events; this page was rolled back"
                        ),
                    )));
                }
            }
            Checkpoint::Reset => {
                sqlx::query(RESET_CHECKPOINT).bind(handler).bind(store.now()).execute(&mut *tx).await.map_err(fail)?;
            }
        }
        tx.commit().await.map_err(fail)
    }
}

/// Runs one staged statement.
async fn run<DB>(statement: Statement<DB>, connection: &mut DB::Connection) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    statement.execute(connection).await.map(drop)
}

#[async_trait]
impl<S, P> CheckpointedHandler for Transactional<S, P>
where
    S: TransactionalStore,
    P: SqlProjection<S::Database>,
    for<'c> &'c mut <S::Database as Database>::Connection: Executor<'c, Database = S::Database>,
    for<'q> <S::Database as Database>::Arguments<'q>: IntoArguments<'q, S::Database>,
    for<'q> i64: Encode<'q, S::Database> + Type<S::Database>,
    for<'q> &'q str: Encode<'q, S::Database> + Type<S::Database>,
{
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.store.load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        // The projection's own code runs first, holding nothing: it may be slow, or append to this store.
        let mut staged = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let mut writes = Writes::new();
            self.projection.apply(event, &mut writes).await.map_err(|source| ApplyError::Handler { index, source })?;
            staged.push((Some(index), writes));
        }
        let operation = || format!("apply events {}..={} for handler {handler:?}", first.position, last.position);
        let checkpoint = Checkpoint::Advance { first: first.position, last: last.position };
        Ok(commit(&self.store, handler, staged, checkpoint, &operation).await?)
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        let mut writes = Writes::new();
        self.projection.reset(&mut writes).await.map_err(ApplyError::Reset)?;
        let operation = || format!("reset handler {handler:?}");
        Ok(commit(&self.store, handler, vec![(None, writes)], Checkpoint::Reset, &operation).await?)
    }
}
