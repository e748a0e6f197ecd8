//! How driver errors become [`EventStoreError`]s: a failure that says "try again" (the file is locked, the
//! pool timed out, an I/O error) is [`EventStoreError::Unavailable`], anything else
//! [`EventStoreError::Backend`].

use std::time::Duration;

use composable_rust_core::EventStoreError;
use sqlx::error::ErrorKind;

/// Another connection (in practice: another process) held the lock for longer than the busy timeout.
pub(crate) const SQLITE_BUSY: i32 = 5;
/// A table was locked by another statement of the same connection or shared cache.
const SQLITE_LOCKED: i32 = 6;
/// The operating system reported a read, write or sync failure.
const SQLITE_IOERR: i32 = 10;
/// The file's contents are not a valid database.
pub(crate) const SQLITE_CORRUPT: i32 = 11;
/// The file is not an SQLite database at all.
pub(crate) const SQLITE_NOTADB: i32 = 26;

/// The primary SQLite result code of a database error (sqlx reports the extended code, whose low byte
/// is the primary one), if it is one.
pub(crate) fn sqlite_code(error: &sqlx::Error) -> Option<i32> {
    let code = error.as_database_error()?.code()?;
    code.parse::<i32>().ok().map(|c| c & 0xff)
}

/// Whether the same call may succeed if retried as it is: the lock was not free in time, the pool had
/// no connection in time, or the operating system failed an I/O. A conflict, a constraint or a schema
/// problem is not transient: retrying it fails the same way.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        error => matches!(sqlite_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR)),
    }
}

/// Whether a statement failed on a UNIQUE (or primary key) constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.kind() == ErrorKind::UniqueViolation)
}

/// [`is_unique_violation`] for a rusqlite error.
pub(crate) fn is_unique_violation_rusqlite(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.extended_code, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// Wraps a driver error, naming the operation that failed: [`EventStoreError::Unavailable`] when it is
/// transient ([`is_transient`]), [`EventStoreError::Backend`] otherwise.
pub(crate) fn driver_error(operation: impl Into<String>, error: sqlx::Error) -> EventStoreError {
    if is_transient(&error) {
        EventStoreError::unavailable(operation, error)
    } else {
        EventStoreError::backend(operation, error)
    }
}

/// What a store's errors name: the database, and the busy timeout a lock wait ran out of.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    /// The file's path, or `:memory:`.
    pub(crate) location: String,
    pub(crate) busy_timeout: Duration,
}

impl ErrorContext {
    /// Wraps a driver error during `operation` ([`driver_error`]: transient failures are
    /// [`EventStoreError::Unavailable`]), naming the file; says so when the lock wait timed out.
    pub(crate) fn map(&self, operation: &str, error: sqlx::Error) -> EventStoreError {
        let operation = self.describe(operation, sqlite_code(&error) == Some(SQLITE_BUSY));
        driver_error(operation, error)
    }

    /// [`ErrorContext::map`] for an error of a rusqlite connection (the reads of [`crate::readers`], the
    /// import's writes): the same rule for what is transient.
    pub(crate) fn map_rusqlite(&self, operation: &str, error: rusqlite::Error) -> EventStoreError {
        use rusqlite::ErrorCode;
        let code = error.sqlite_error_code();
        let operation = self.describe(operation, code == Some(ErrorCode::DatabaseBusy));
        match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
                EventStoreError::unavailable(operation, error)
            }
            _ => EventStoreError::backend(operation, error),
        }
    }

    /// `operation` and the file, with what to do when the lock wait ran out (`busy`).
    fn describe(&self, operation: &str, busy: bool) -> String {
        if busy {
            format!(
                "{operation} in {}: another process held the write lock for longer than the busy timeout \
                 ({:?}); retry, or raise `SqliteConfig::busy_timeout`",
                self.location, self.busy_timeout
            )
        } else {
            format!("{operation} in {}", self.location)
        }
    }

    /// [`ErrorContext::map`] as a closure for `map_err`, building the operation's name only on failure.
    pub(crate) fn fail<'a>(
        &'a self,
        operation: impl FnOnce() -> String + 'a,
    ) -> impl FnOnce(sqlx::Error) -> EventStoreError + 'a {
        move |error| self.map(&operation(), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_io_errors_are_transient_and_others_are_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::other("disk went away"))));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::PoolClosed));
        assert!(driver_error("append to stream a-1", sqlx::Error::PoolTimedOut).is_transient());
        assert!(matches!(
            driver_error("append to stream a-1", sqlx::Error::RowNotFound),
            EventStoreError::Backend { .. }
        ));
    }
}
