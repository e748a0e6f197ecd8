//! What the rusqlite connections of a file store share (the long reads of [`crate::readers`], the writes of
//! [`crate::import`]): opening one on the store's file, and running work with it on tokio's blocking threads.

use std::path::Path;

use composable_rust_core::EventStoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::ErrorContext;

/// Opens a rusqlite connection to the store's file at `path`, with the store's busy timeout. The file exists
/// (the store created it, and WAL mode is a property of the file). `purpose` names the connection in errors
/// (`a read connection`).
///
/// # Errors
/// When SQLite cannot open the file or set the timeout.
pub(crate) fn open_connection(
    path: &Path,
    errors: &ErrorContext,
    purpose: &str,
) -> Result<Connection, EventStoreError> {
    let fail = |e| errors.map_rusqlite(&format!("open {purpose}"), e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(fail)?;
    connection.busy_timeout(errors.busy_timeout).map_err(fail)?;
    Ok(connection)
}

/// Runs `work` on one of tokio's blocking threads and returns what it returns. A thread that stops before it
/// finishes (it panicked) is a backend error naming `operation` and the file.
///
/// # Errors
/// What `work` returns; the error above.
pub(crate) async fn on_blocking_thread<T, F>(
    errors: &ErrorContext,
    operation: &str,
    work: F,
) -> Result<T, EventStoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, EventStoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(EventStoreError::backend(
            format!("{operation} in {}", errors.location),
            format!("the thread doing it stopped before it finished: {error}"),
        )),
    }
}
