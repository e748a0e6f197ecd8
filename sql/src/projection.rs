//! [`SqlProjection`]: a read model kept in the event store's own database, and [`Writes`], the statements
//! it stages for each event.

use std::fmt;

use composable_rust_core::{BoxError, RecordedEvent, async_trait};
use sqlx::Database;
use sqlx::query::Query;

/// One SQL statement with its arguments, as `sqlx::query("...").bind(..)` builds it, owning everything it
/// needs: the text is `&'static str` and the bound values are owned (bind a `String`, not a borrowed `&str`).
pub type Statement<DB> = Query<'static, DB, <DB as Database>::Arguments<'static>>;

/// The statements one event (or a reset) writes to the read model, run later, in order, in the
/// transaction that also records the checkpoint.
pub struct Writes<DB: Database> {
    statements: Vec<Statement<DB>>,
}

impl<DB: Database> Writes<DB> {
    /// No statements yet.
    #[must_use]
    pub fn new() -> Self {
        Self { statements: Vec::new() }
    }

    /// Adds `statement` after the ones staged so far.
    pub fn push(&mut self, statement: Statement<DB>) -> &mut Self {
        self.statements.push(statement);
        self
    }

    /// How many statements are staged.
    #[must_use]
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether nothing is staged (the event changes nothing in the read model).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub(crate) fn into_statements(self) -> Vec<Statement<DB>> {
        self.statements
    }
}

impl<DB: Database> Default for Writes<DB> {
    fn default() -> Self {
        Self::new()
    }
}

impl<DB: Database> fmt::Debug for Writes<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writes").field("statements", &self.statements.len()).finish()
    }
}

/// A read model kept in the event store's database, written with exactly-once effects by
/// [`Transactional`](crate::Transactional).
///
/// For each event, [`apply`](SqlProjection::apply) decides what changes and stages it as statements in
/// [`Writes`]; the statements of a whole page then run, with the checkpoint update, in one short
/// transaction. No connection is held and no lock is taken while `apply` runs, so it may take its time,
/// call other services, or append to the same event store (on SQLite, whose single writer would otherwise
/// wait for the projection that waits for it).
///
/// The statements are run, not read back: a decision that depends on the read model is written in SQL
/// (`count = count + 1`, `INSERT ... ON CONFLICT`, `UPDATE ... WHERE`), or kept in the projection's own
/// state. Statements use `$1`, `$2`, ... placeholders on both PostgreSQL and SQLite.
#[async_trait]
pub trait SqlProjection<DB: Database>: Send + 'static {
    /// Stages in `writes` what `event` changes in the read model.
    ///
    /// A page whose transaction fails (a lost connection, a lock that stayed busy) is handed to `apply`
    /// again, event by event: state the projection keeps in memory must tolerate that.
    ///
    /// # Errors
    /// Any error stops the subscription, naming this event; nothing of the page is written. A staged
    /// statement that the database refuses (a constraint, a missing table) does the same; one that fails
    /// because the connection failed or the database asked to retry rolls the page back and retries it.
    async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<DB>) -> Result<(), BoxError>;

    /// Stages in `writes` what clears the read model for a rebuild; they run in the transaction that also
    /// resets the checkpoint.
    ///
    /// # Errors
    /// Any error (or a staged statement the database refuses) leaves the read model and the checkpoint
    /// as they were.
    async fn reset(&mut self, writes: &mut Writes<DB>) -> Result<(), BoxError>;
}
