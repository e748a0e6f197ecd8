//! [`PostgresError`]: what went wrong talking to PostgreSQL, with what to do about it, and the mapping of
//! sqlx errors onto the contract's [`EventStoreError`].
//!
//! Failures that running the same call again may fix are [`EventStoreError::Unavailable`], so callers can
//! retry without downcasting to a driver error: the connection was refused, lost or reset, no connection
//! became free in time, or the server answered with SQLSTATE class 08 (connection exception), 40001
//! (serialization failure), 40P01 (deadlock), 57P01/57P02 (administrator or crash shutdown) or 57P03
//! (cannot connect now, e.g. while starting). Everything else is [`EventStoreError::Backend`].
//!
//! Errors never include the connection URL or the password: the server is named as `host:port/database`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use composable_rust_core::{EventStoreError, SchemaError};
use sqlx::migrate::MigrateError;
use thiserror::Error;

/// The source of an [`EventStoreError::Backend`] or [`EventStoreError::Unavailable`] raised by this crate;
/// downcast to inspect it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection URL does not parse.
    #[error(
        "invalid PostgreSQL connection URL ({reason}); expected postgres://user:password@host:port/database, e.g. in DATABASE_URL"
    )]
    InvalidUrl {
        /// What the parser objected to (never the URL itself).
        reason: String,
    },
    /// Nothing answered, or the connection broke.
    #[error(
        "could not reach PostgreSQL at {server}: is the server running there? point DATABASE_URL (or PostgresConfig) at a running server"
    )]
    Unreachable {
        /// `host:port/database`.
        server: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// No connection was established or became free in time.
    #[error(
        "no PostgreSQL connection to {server} within {timeout:?}: the server is unreachable or slow, or the pool is exhausted; check that it runs, or raise PostgresConfig::max_connections or acquire_timeout"
    )]
    AcquireTimeout {
        /// `host:port/database`.
        server: String,
        /// The configured acquire timeout.
        timeout: Duration,
    },
    /// The server refused the login (unknown role, wrong password, not allowed by `pg_hba.conf`).
    #[error("PostgreSQL at {server} refused the login: check the user name and password in the connection URL")]
    LoginRefused {
        /// `host:port/database`.
        server: String,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement ran longer than the statement timeout and was cancelled by the server.
    #[error(
        "a statement ran longer than the statement timeout and was cancelled: raise PostgresConfig::statement_timeout"
    )]
    StatementTimeout {
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// Any other driver or server error.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// What the store needs to explain an error: which server it talks to and the acquire timeout.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    pub(crate) server: String,
    pub(crate) acquire_timeout: Duration,
    /// When the store's connections last broke, so that its pool stops handing out older ones.
    pub(crate) health: Arc<ConnectionHealth>,
}

/// The hint for a missing schema.
pub(crate) const MISSING_SCHEMA_HINT: &str =
    "run PostgresEventStore::migrate() or the SQL in migrations/postgres (see docs/database-setup.md)";

impl ErrorContext {
    /// Maps a sqlx error during `operation` onto the contract's error.
    pub(crate) fn map(&self, operation: impl Into<String>, error: sqlx::Error) -> EventStoreError {
        if connection_lost(&error) {
            self.health.note_lost();
        }
        let operation = operation.into();
        let server = self.server.clone();
        let source = match error {
            sqlx::Error::Database(ref db) => match db.code().as_deref() {
                // undefined_table, undefined_function: the schema was never created here.
                Some("42P01" | "42883") => {
                    return SchemaError::Missing { location: server, fix: MISSING_SCHEMA_HINT }.into();
                }
                Some(code) if code.starts_with("28") => PostgresError::LoginRefused { server, source: error },
                Some("3D000") => {
                    return EventStoreError::NotFound {
                        what: format!("the database {server}"),
                        fix: "create it (see docs/database-setup.md) or fix the database name in the connection URL",
                    };
                }
                Some("57014") => PostgresError::StatementTimeout { source: error },
                _ => PostgresError::Sqlx(error),
            },
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
                PostgresError::Unreachable { server, source: error }
            }
            sqlx::Error::PoolTimedOut => PostgresError::AcquireTimeout { server, timeout: self.acquire_timeout },
            other => PostgresError::Sqlx(other),
        };
        if is_transient(&source) {
            EventStoreError::unavailable(operation, source)
        } else {
            EventStoreError::backend(operation, source)
        }
    }

    /// Maps a migration failure: schema problems as [`EventStoreError::Schema`], the rest as backend errors.
    pub(crate) fn map_migrate(&self, error: MigrateError) -> EventStoreError {
        let fix = "finish or undo it by hand, then delete its row in _sqlx_migrations and run migrate() again";
        composable_rust_sql::migrate_error(&self.server, error, fix, |operation, e| self.map(operation, e))
    }
}

impl PostgresError {
    /// The driver's error this one wraps, if any.
    fn sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            Self::Unreachable { source, .. }
            | Self::LoginRefused { source, .. }
            | Self::StatementTimeout { source } => Some(source),
            Self::Sqlx(source) => Some(source),
            Self::InvalidUrl { .. } | Self::AcquireTimeout { .. } => None,
        }
    }
}

/// Whether `error` says the server could not be reached or asked to retry, so that running the same call
/// again may succeed (see the module docs for the list).
fn is_transient(error: &PostgresError) -> bool {
    match error {
        PostgresError::AcquireTimeout { .. } => true,
        other => other.sqlx().is_some_and(is_transient_sqlx),
    }
}

/// As [`is_transient`], for a driver error.
pub(crate) fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    connection_lost(error)
        || match error {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| matches!(code.as_ref(), "40001" | "40P01")),
            _ => false,
        }
}

/// Whether `error` says the connection itself broke (I/O, SQLSTATE class 08, the server shutting down).
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// When a store last saw one of its connections break.
///
/// A server restart breaks every idle connection in the pool at once, and the pool does not ping on acquire
/// (that costs ~30% of a single append), so a retry would draw one dead connection after another. Instead
/// the pool drops, on acquire, every connection opened before the last break the store heard of.
#[derive(Debug)]
pub(crate) struct ConnectionHealth {
    base: Instant,
    /// Milliseconds after `base` of the last break; `u64::MAX` if none.
    last_loss_ms: AtomicU64,
}

impl Default for ConnectionHealth {
    fn default() -> Self {
        Self { base: Instant::now(), last_loss_ms: AtomicU64::new(u64::MAX) }
    }
}

impl ConnectionHealth {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Records that a connection broke now.
    fn note_lost(&self) {
        self.last_loss_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether a pooled connection of this age was opened before the last break: probably dead too.
    pub(crate) fn opened_before_last_loss(&self, age: Duration) -> bool {
        let lost_at = self.last_loss_ms.load(Ordering::Relaxed);
        lost_at != u64::MAX && age > Duration::from_millis(self.now_ms().saturating_sub(lost_at))
    }
}

/// Maps a driver error where no [`ErrorContext`] is at hand (leases, transactional handlers), keeping it as
/// the source: [`EventStoreError::Unavailable`] when it is transient, [`EventStoreError::Backend`] otherwise.
pub(crate) fn map_sqlx(operation: impl Into<String>, error: sqlx::Error) -> EventStoreError {
    if is_transient_sqlx(&error) {
        EventStoreError::unavailable(operation, error)
    } else {
        EventStoreError::backend(operation, error)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A server error with only a SQLSTATE, as the driver would report it.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn mapped(error: sqlx::Error) -> EventStoreError {
        let context = ErrorContext {
            server: "db:5432/orders".into(),
            acquire_timeout: Duration::from_secs(1),
            health: Arc::default(),
        };
        context.map("append to stream order-1", error)
    }

    #[test]
    fn connection_failures_and_retry_requests_are_unavailable() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        let transient = [
            ("connection refused", io(std::io::ErrorKind::ConnectionRefused)),
            ("connection reset", io(std::io::ErrorKind::ConnectionReset)),
            ("connection lost mid-reply", io(std::io::ErrorKind::UnexpectedEof)),
            ("pool timeout", sqlx::Error::PoolTimedOut),
        ]
        .into_iter()
        .map(|(what, e)| (what.to_owned(), e))
        .chain(
            ["08000", "08003", "08006", "08001", "08004", "40001", "40P01", "57P01", "57P02", "57P03"]
                .map(|code| (format!("SQLSTATE {code}"), sqlx::Error::Database(Box::new(ServerError(code))))),
        );
        for (what, error) in transient {
            let error = mapped(error);
            assert!(matches!(error, EventStoreError::Unavailable { .. }), "{what} must be Unavailable: {error:?}");
            assert!(error.is_transient(), "{what}");
        }
    }

    #[test]
    fn other_failures_stay_backend_errors() {
        let permanent = ["23505", "23514", "42501", "53100", "57014", "XX000", "28P01", "3D000"]
            .map(|code| (format!("SQLSTATE {code}"), sqlx::Error::Database(Box::new(ServerError(code)))))
            .into_iter()
            .chain([
                ("a closed pool".to_owned(), sqlx::Error::PoolClosed),
                ("a protocol error".to_owned(), sqlx::Error::Protocol("unexpected message".into())),
            ]);
        for (what, error) in permanent {
            let error = mapped(error);
            assert!(!error.is_transient(), "{what} must not be transient: {error:?}");
        }
    }
}
