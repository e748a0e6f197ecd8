//! How a schema migration that could not be applied becomes an [`EventStoreError`], for every SQL backend.

use composable_rust_core::{EventStoreError, SchemaError};
use sqlx::migrate::MigrateError;

/// Maps a failure of `sqlx::migrate::Migrator::run` on `database` (a file path, or `host:port/database`;
/// never a URL with a password) onto the contract's error.
///
/// A schema newer than this build, an applied migration edited since, and a half-applied migration are
/// [`EventStoreError::Schema`]: retrying cannot fix them, and the database is left as it was.
/// `partly_applied_fix` says what to do about the last one (it differs between a server and a file).
/// A statement that failed while migrating goes through `driver_error`, the backend's mapping of driver
/// errors, so that a lost connection or a locked file stays transient.
pub fn migrate_error(
    database: &str,
    error: MigrateError,
    partly_applied_fix: &'static str,
    driver_error: impl FnOnce(String, sqlx::Error) -> EventStoreError,
) -> EventStoreError {
    match error {
        MigrateError::Execute(e) => driver_error(format!("migrate the event store schema in {database}"), e),
        MigrateError::ExecuteMigration(e, version) => {
            driver_error(format!("apply event store migration {version} to {database}"), e)
        }
        MigrateError::VersionMissing(version) => SchemaError::Newer { location: database.to_owned(), version }.into(),
        MigrateError::VersionMismatch(version) => SchemaError::Edited { location: database.to_owned(), version }.into(),
        MigrateError::Dirty(version) => {
            SchemaError::Dirty { location: database.to_owned(), version, fix: partly_applied_fix }.into()
        }
        other => SchemaError::MigrationFailed { location: database.to_owned(), source: other.into() }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable_driver(operation: String, error: sqlx::Error) -> EventStoreError {
        EventStoreError::unavailable(operation, error)
    }

    #[test]
    fn schema_problems_are_schema_errors_that_name_the_database_and_the_fix() {
        let newer = migrate_error("events.db", MigrateError::VersionMissing(9), "restore it", unreachable_driver);
        let message = newer.to_string();
        assert!(matches!(newer, EventStoreError::Schema(SchemaError::Newer { version: 9, .. })), "{newer:?}");
        assert!(message.contains("events.db") && message.contains("newer than this code"), "{message}");

        let dirty = migrate_error("db:5432/orders", MigrateError::Dirty(2), "finish it by hand", unreachable_driver);
        let message = dirty.to_string();
        assert!(matches!(dirty, EventStoreError::Schema(SchemaError::Dirty { version: 2, .. })), "{dirty:?}");
        assert!(message.contains("migration 2") && message.ends_with("finish it by hand"), "{message}");
    }

    #[test]
    fn a_statement_that_failed_while_migrating_keeps_the_backends_mapping() {
        let error =
            migrate_error("events.db", MigrateError::Execute(sqlx::Error::PoolTimedOut), "", unreachable_driver);
        assert!(error.is_transient(), "the backend's mapping decides: {error:?}");
        assert!(error.to_string().contains("events.db"), "{error}");
    }
}
