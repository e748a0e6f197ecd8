//! [`PostgresError`]: what went wrong talking to PostgreSQL, with what to do about it, and the mapping of
//! sqlx errors onto the contract's [`EventStoreError`].
//!
//! Errors never include the connection URL or the password: the server is named as `host:port/database`.

use std::time::Duration;

use composable_rust_core::EventStoreError;
use sqlx::migrate::MigrateError;
use thiserror::Error;

/// The source of an [`EventStoreError::Backend`] raised by this crate; downcast to inspect it.
#[derive(Debug, Error)]
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
    /// The database named in the URL does not exist.
    #[error("the database {server} does not exist: create it (see docs/database-setup.md) or fix the database name")]
    UnknownDatabase {
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
}

/// The hint for a missing schema.
pub(crate) const MISSING_SCHEMA_HINT: &str =
    "run PostgresEventStore::migrate() or the SQL in migrations/postgres (see docs/database-setup.md)";

impl ErrorContext {
    /// Maps a sqlx error during `operation` onto the contract's error.
    pub(crate) fn map(&self, operation: impl Into<String>, error: sqlx::Error) -> EventStoreError {
        let operation = operation.into();
        let server = self.server.clone();
        let source = match error {
            sqlx::Error::Database(ref db) => match db.code().as_deref() {
                // undefined_table, undefined_function: the schema was never created here.
                Some("42P01" | "42883") => {
                    return EventStoreError::Schema(format!(
                        "the event store tables are missing in {server} (needed to {operation}): {MISSING_SCHEMA_HINT}; server said: {}",
                        db.message()
                    ));
                }
                Some(code) if code.starts_with("28") => PostgresError::LoginRefused { server, source: error },
                Some("3D000") => PostgresError::UnknownDatabase { server, source: error },
                Some("57014") => PostgresError::StatementTimeout { source: error },
                _ => PostgresError::Sqlx(error),
            },
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
                PostgresError::Unreachable { server, source: error }
            }
            sqlx::Error::PoolTimedOut => PostgresError::AcquireTimeout { server, timeout: self.acquire_timeout },
            other => PostgresError::Sqlx(other),
        };
        EventStoreError::backend(operation, source)
    }

    /// Maps a migration failure: schema problems as [`EventStoreError::Schema`], the rest as backend errors.
    pub(crate) fn map_migrate(&self, error: MigrateError) -> EventStoreError {
        let server = &self.server;
        match error {
            MigrateError::Execute(e) => self.map("migrate the event store schema", e),
            MigrateError::ExecuteMigration(e, version) => self.map(format!("apply event store migration {version}"), e),
            MigrateError::VersionMissing(version) => EventStoreError::Schema(format!(
                "{server} has migration {version} applied, which this build does not know: the schema is newer than this code; upgrade the application"
            )),
            MigrateError::VersionMismatch(version) => EventStoreError::Schema(format!(
                "migration {version} applied in {server} differs from the one in this build: migrations must never be edited after release; restore the original file"
            )),
            MigrateError::Dirty(version) => EventStoreError::Schema(format!(
                "migration {version} in {server} was only partly applied: finish or undo it by hand, then delete its row in _sqlx_migrations and run migrate() again"
            )),
            other => EventStoreError::Schema(format!("could not migrate the event store schema in {server}: {other}")),
        }
    }
}
