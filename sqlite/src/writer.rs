//! [`Writer`]: the one write connection of a store, and the commit counter behind its commit notifications.
//!
//! SQLite has one writer at a time. Every write of the process (appends, snapshots, checkpoints, lease
//! rows, the transactions of transactional projections) queues for this connection's lock, so only
//! writers in other processes ever make SQLite wait for its file lock (at most `busy_timeout`). The lock
//! is fair: writers get it in the order they asked for it (tokio's `Mutex` is a FIFO queue), so no writer
//! can be overtaken again and again while others make progress. Nothing holds the lock while code outside
//! this crate runs.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use composable_rust_core::EventStoreError;
use futures::stream::{BoxStream, StreamExt};
use sqlx::sqlite::{SqliteConnection, SqliteTransactionManager};
use sqlx::{Connection, TransactionManager};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use crate::error::ErrorContext;

/// The error for any call after the store was closed.
pub(crate) fn closed() -> EventStoreError {
    EventStoreError::backend("use the SQLite event store", "the store was closed; open it again to use it")
}

/// A handle on the write connection; clones share it.
#[derive(Clone)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` once closed. FIFO: waiters get the connection in the order they called [`Writer::lock`].
    /// In an `Arc` so that [`Writer::hold`] can hand out a guard that outlives the borrow.
    connection: Arc<Mutex<Option<SqliteConnection>>>,
    /// Bumped after every committed append: the in-process wake-up behind `commit_notifications`.
    commits: tokio::sync::watch::Sender<u64>,
    errors: ErrorContext,
}

/// The locked write connection of a SQLite store, ready for a statement or a transaction; the other
/// writers of the process wait until it is dropped. A transactional projection's page holds it only for
/// its transaction.
pub struct WriteGuard<'a> {
    /// Always `Some`: [`Writer::lock`] hands out no guard on a closed store.
    guard: MutexGuard<'a, Option<SqliteConnection>>,
}

impl std::fmt::Debug for WriteGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGuard").finish_non_exhaustive()
    }
}

impl Deref for WriteGuard<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self.guard.as_ref() {
            Some(connection) => connection,
            None => unreachable!("Writer::lock checked that the store is open, under the same lock"),
        }
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self.guard.as_mut() {
            Some(connection) => connection,
            None => unreachable!("Writer::lock checked that the store is open, under the same lock"),
        }
    }
}

/// The store's write lock, owned: while it lives, no other writer of the process writes. It holds the write
/// connection without using it (see [`Writer::hold`]).
pub(crate) struct WriteLock {
    _guard: OwnedMutexGuard<Option<SqliteConnection>>,
}

impl Writer {
    /// Takes over `connection` as the store's only write connection.
    pub(crate) fn new(connection: SqliteConnection, errors: ErrorContext) -> Self {
        let commits = tokio::sync::watch::Sender::new(0);
        let connection = Arc::new(Mutex::new(Some(connection)));
        Self { shared: Arc::new(Shared { connection, commits, errors }) }
    }

    /// Waits for the write connection, behind every writer that asked for it earlier.
    ///
    /// A write whose future was dropped at the wrong instant (just after SQLite acknowledged its `BEGIN`,
    /// before sqlx handed out the transaction) leaves the connection inside a transaction that nothing
    /// will end; the next write would then fail or, worse, join it. Rolling such a transaction back here
    /// keeps every write atomic and the connection usable after any cancellation.
    ///
    /// # Errors
    /// After [`Writer::close`]; when that rollback fails.
    pub(crate) async fn lock(&self) -> Result<WriteGuard<'_>, EventStoreError> {
        let mut guard = self.shared.connection.lock().await;
        self.end_cancelled_transaction(guard.as_mut()).await?;
        Ok(WriteGuard { guard })
    }

    /// Takes the write lock as [`Writer::lock`] does, for a write made through another connection to the
    /// same file (the import's, on a blocking thread): the returned [`WriteLock`] owns the lock, so it can
    /// move to that thread and keep every other writer of the process out until the write has ended,
    /// even if the future that asked for it is dropped meanwhile.
    ///
    /// # Errors
    /// As [`Writer::lock`].
    pub(crate) async fn hold(&self) -> Result<WriteLock, EventStoreError> {
        let mut guard = Arc::clone(&self.shared.connection).lock_owned().await;
        self.end_cancelled_transaction(guard.as_mut()).await?;
        Ok(WriteLock { _guard: guard })
    }

    /// Fails on a closed store, and rolls back a transaction a cancelled write left open (see
    /// [`Writer::lock`]).
    async fn end_cancelled_transaction(
        &self,
        connection: Option<&mut SqliteConnection>,
    ) -> Result<(), EventStoreError> {
        let connection = connection.ok_or_else(closed)?;
        if connection.is_in_transaction() {
            // A no-op if a rollback queued by a dropped `Transaction` already ended it.
            SqliteTransactionManager::rollback(connection)
                .await
                .map_err(self.shared.errors.fail(|| "roll back a cancelled write transaction".to_owned()))?;
        }
        Ok(())
    }

    /// Records that an append committed, waking the subscriptions of this process.
    pub(crate) fn committed(&self) {
        self.shared.commits.send_modify(|commits| *commits = commits.wrapping_add(1));
    }

    /// A stream that yields after each append committed through this writer.
    pub(crate) fn commit_notifications(&self) -> BoxStream<'static, ()> {
        let commits = self.shared.commits.subscribe();
        futures::stream::unfold(
            commits,
            |mut commits| async move { commits.changed().await.ok().map(|()| ((), commits)) },
        )
        .boxed()
    }

    /// Closes the write connection after the writes in progress; later [`Writer::lock`]s fail. With
    /// `checkpoint_wal`, first copies the write-ahead log into the database file and empties it.
    ///
    /// # Errors
    /// When the final checkpoint or closing the connection fails.
    pub(crate) async fn close(&self, checkpoint_wal: bool) -> Result<(), EventStoreError> {
        let errors = &self.shared.errors;
        let Some(mut connection) = self.shared.connection.lock().await.take() else { return Ok(()) };
        if connection.is_in_transaction() {
            SqliteTransactionManager::rollback(&mut connection)
                .await
                .map_err(errors.fail(|| "roll back a cancelled write transaction".to_owned()))?;
        }
        if checkpoint_wal {
            // Empties the WAL even if a reader connection is still closing in the background.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut connection)
                .await
                .map_err(errors.fail(|| "checkpoint the write-ahead log".to_owned()))?;
        }
        connection.close().await.map_err(errors.fail(|| "close the write connection".to_owned()))
    }
}
