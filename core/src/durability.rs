//! [`Durability`]: how hard a commit of a backend that writes local files works to survive a crash.

/// How hard a commit works to survive a crash, for the backends that write local files (SQLite, the file
/// backend). PostgreSQL has its own setting (`synchronous_commit`), chosen by the server's operator.
///
/// Both settings keep every acknowledged append across a **process** crash (`kill -9`, a panic that aborts):
/// the commit has reached the operating system before `append` returns. They differ on a power loss or an
/// operating system crash. Each backend's config says what the setting does there: SQLite maps it to
/// `synchronous` in WAL mode, the file backend to an `fdatasync` per commit.
///
/// ```
/// use composable_rust_core::Durability;
///
/// assert_eq!(Durability::default(), Durability::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is flushed to disk before `append` returns, so acknowledged events also survive a power
    /// loss: the promise PostgreSQL makes by default.
    #[default]
    Full,
    /// Commits are written to the operating system and flushed to disk later (at a checkpoint, when a file
    /// is closed, when the store is closed). Acknowledged events survive a process crash, but the last
    /// commits may be lost on a power loss or an operating system crash; the store stays consistent.
    /// Faster for one-event appends.
    Normal,
}
