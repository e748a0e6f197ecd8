//! How a schema migration that could not be applied becomes an [`EventStoreError`], for every SQL backend.

use composable_rust_core::EventStoreError;
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
    partly_applied_fix: &str,
    driver_error: impl FnOnce(String, sqlx::Error) -> EventStoreError,
) -> EventStoreError {
    match error {
        MigrateError::Execute(e) => driver_error(format!("migrate the event store schema in {database}"), e),
        MigrateError::ExecuteMigration(e, version) => {
            driver_error(format!("apply event store migration {version} to {database}"), e)
        }
        MigrateError::VersionMissing(version) => EventStoreError::Schema(format!(
            "{database} has schema migration {version} applied, which this build does not know: the schema was \
             written by a newer version of composable-rust; upgrade the application (the database was not changed)"
        )),
        MigrateError::VersionMismatch(version) => EventStoreError::Schema(format!(
            "schema migration {version} applied in {database} differs from the one in this build: the migration \
             was edited after it was applied; restore the original migration (the database was not changed)"
        )),
        MigrateError::Dirty(version) => EventStoreError::Schema(format!(
            "schema migration {version} in {database} was only partly applied; {partly_applied_fix}"
        )),
        other => EventStoreError::Schema(format!("could not migrate the event store schema in {database}: {other}")),
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
        let EventStoreError::Schema(message) = newer else { panic!("a newer schema is a schema error: {newer:?}") };
        assert!(message.contains("events.db") && message.contains("newer version"), "{message}");

        let dirty = migrate_error("db:5432/orders", MigrateError::Dirty(2), "finish it by hand", unreachable_driver);
        let EventStoreError::Schema(message) = dirty else { panic!("a dirty migration is a schema error: {dirty:?}") };
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
