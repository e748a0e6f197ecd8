//! The SQLite side of [`Transactional`](composable_rust_sql::Transactional): a page's transaction runs on
//! the store's write connection, taken only once the projection has staged its statements.

use chrono::Utc;
use composable_rust_core::{EventStoreError, async_trait};
use composable_rust_sql::TransactionalStore;
use sqlx::Sqlite;

use crate::SqliteEventStore;
use crate::error::is_transient;
use crate::rows::to_micros;
use crate::writer::WriteGuard;

#[async_trait]
impl TransactionalStore for SqliteEventStore {
    type Database = Sqlite;
    type Connection<'a> = WriteGuard<'a>;
    /// Microseconds since the Unix epoch, as `checkpoints.updated_at` stores them.
    type Timestamp = i64;

    /// Takes the file's write lock at once: a page never waits for it half way.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    /// The store's one write connection: the page's statements queue with the appends of the process.
    async fn write_connection<'a>(&'a self) -> Result<WriteGuard<'a>, EventStoreError> {
        self.writer().lock().await
    }

    fn now(&self) -> i64 {
        to_micros(Utc::now())
    }

    fn is_transient(&self, error: &sqlx::Error) -> bool {
        is_transient(error)
    }

    fn map_error(&self, operation: String, error: sqlx::Error) -> EventStoreError {
        self.fail(|| operation)(error)
    }
}
