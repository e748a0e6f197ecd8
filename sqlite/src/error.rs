//! How driver errors are recognised.

use sqlx::error::ErrorKind;

/// Whether a statement failed on a UNIQUE (or primary key) constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.kind() == ErrorKind::UniqueViolation)
}
