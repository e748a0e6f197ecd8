//! [`BulkReaders`]: the read connections behind the long reads of a file store (a stream's pages, the
//! global log), on rusqlite and tokio's blocking threads rather than on sqlx.
//!
//! sqlx's SQLite driver runs each connection on a worker thread and copies every value of every row
//! (one allocation per column) before sending the row over a channel; a read of 1000 events pays that
//! 13,000 times. rusqlite reads the columns in place, on the thread that steps the statement, and a page
//! crosses threads once. The spike that measured both is `benches/benches/sqlite_driver.rs`; the
//! decision is in `docs/decisions.md` ("SQLite reads"). Both drivers link the same SQLite library.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use composable_rust_core::backend::EventTypeCache;
use composable_rust_core::{EventStoreError, RecordedEvent};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::blocking::{on_blocking_thread, open_connection};
use crate::error::ErrorContext;
use crate::rows::{self, StreamColumn};
use crate::writer::closed;

/// Read connections to one database file, opened as needed up to a limit and reused.
pub(crate) struct BulkReaders {
    path: PathBuf,
    errors: ErrorContext,
    /// One permit per connection that may be in use; closed with the store.
    permits: Arc<Semaphore>,
    /// Connections not in use. `None` once closed: a connection handed back then is closed instead.
    idle: Mutex<Option<Vec<Connection>>>,
}

impl BulkReaders {
    /// Readers for the database at `path` (which exists and has its schema), at most `connections`
    /// (at least one) in use at once, with the busy timeout of `errors`.
    pub(crate) fn new(path: &Path, connections: u32, errors: ErrorContext) -> Self {
        let connections = usize::try_from(connections.max(1)).unwrap_or(1);
        Self {
            path: path.to_path_buf(),
            errors,
            permits: Arc::new(Semaphore::new(connections)),
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    /// Runs `read` on a read connection, on a blocking thread, and returns what it returns.
    ///
    /// `read` runs inside no transaction of its own; a read that needs one snapshot of the file across
    /// statements begins one.
    ///
    /// # Errors
    /// After [`BulkReaders::close`]; when no connection can be opened; what `read` returns.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, operation: &str, read: F) -> Result<T, EventStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ErrorContext) -> Result<T, EventStoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|_| closed())?;
        let readers = Arc::clone(self);
        on_blocking_thread(&self.errors, operation, move || {
            let connection = readers.take()?;
            let result = read(&connection, &readers.errors);
            readers.give_back(connection);
            drop(permit);
            result
        })
        .await
    }

    /// Closes the idle connections and refuses later reads; reads in progress finish first and then
    /// close theirs.
    pub(crate) fn close(&self) {
        self.permits.close();
        drop(self.lock().take());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Connection>>> {
        // Only pushes and pops run under this lock; a poisoned one still holds a consistent list.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Result<Connection, EventStoreError> {
        match self.lock().as_mut() {
            None => return Err(closed()),
            Some(idle) => {
                if let Some(connection) = idle.pop() {
                    return Ok(connection);
                }
            }
        }
        self.connect()
    }

    fn give_back(&self, connection: Connection) {
        if let Some(idle) = self.lock().as_mut() {
            idle.push(connection);
        }
    }

    /// Opens a connection that can only read: the file must exist (the writer created it), and
    /// `query_only` makes writing through it an error rather than a habit to keep.
    fn connect(&self) -> Result<Connection, EventStoreError> {
        let connection = open_connection(&self.path, &self.errors, "a read connection")?;
        connection
            .pragma_update(None, "query_only", true)
            .map_err(|e| self.errors.map_rusqlite("open a read connection", e))?;
        connection.set_prepared_statement_cache_capacity(32);
        Ok(connection)
    }
}

/// Runs `sql` (selecting the `event_columns!` of [`crate::sql`]) on `connection`, decoding each row as it
/// is stepped: one result per row, in the query's order.
///
/// # Errors
/// When the statement cannot be prepared or stepped.
pub(crate) fn query_events(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    stream: &StreamColumn<'_>,
) -> Result<Vec<Result<RecordedEvent, EventStoreError>>, rusqlite::Error> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut types = EventTypeCache::default();
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(rows::event(row, stream.clone(), &mut types));
    }
    Ok(events)
}
