//! Opening a database file: checks made before SQLite touches it, the connection settings (pragmas),
//! and the embedded migrations.
//!
//! A file that is not an SQLite database, or one that is visibly truncated, is refused before any
//! connection is made, so a wrong path can never be "repaired" into an empty event store.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use composable_rust_core::{Durability, EventStoreError, SchemaError};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::config::SqliteConfig;
use crate::error::{SQLITE_CORRUPT, SQLITE_NOTADB, driver_error, sqlite_code};

/// The schema, embedded in the binary. `_sqlx_migrations` records what was applied.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// The newest migration this build embeds: the schema version it expects.
pub(crate) fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The connections a store uses: one writer, and a pool of readers for a file.
pub(crate) struct Connections {
    /// The only connection this store writes with; every write of the process queues for it.
    pub(crate) writer: SqliteConnection,
    /// Read connections; `None` in memory, where the writer is the only connection to the database.
    pub(crate) readers: Option<SqlitePool>,
}

/// Opens (creating if needed) the database at `path`, applies the migrations and connects.
pub(crate) async fn open_file(path: &Path, config: &SqliteConfig) -> Result<Connections, EventStoreError> {
    prepare_path(path)?;
    let synchronous = match config.durability {
        Durability::Full => SqliteSynchronous::Full,
        Durability::Normal => SqliteSynchronous::Normal,
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(config.busy_timeout)
        .statement_cache_capacity(256);

    let mut writer = options.connect().await.map_err(|e| open_error(path, e))?;
    migrate(&mut writer, path).await?;

    // Readers never write; `query_only` makes that a guarantee rather than a habit. The pool does not
    // ping connections on acquire: a local file connection does not go stale, and the ping costs a
    // round trip to the connection's worker thread on every read.
    let readers = SqlitePoolOptions::new()
        .max_connections(config.read_connections.max(1))
        .min_connections(0)
        .test_before_acquire(false)
        .connect_with(options.pragma("query_only", "ON"))
        .await
        .map_err(|e| open_error(path, e))?;
    Ok(Connections { writer, readers: Some(readers) })
}

/// Opens a private in-memory database with the schema applied. It lives as long as its one connection.
pub(crate) async fn open_in_memory() -> Result<Connections, EventStoreError> {
    let location = Path::new(":memory:");
    let options = SqliteConnectOptions::new().in_memory(true).foreign_keys(true).statement_cache_capacity(256);
    let mut writer = options.connect().await.map_err(|e| open_error(location, e))?;
    migrate(&mut writer, location).await?;
    Ok(Connections { writer, readers: None })
}

/// Creates the parent folder and refuses a file that is not, or no longer, an SQLite database.
///
/// These are a few metadata calls and one 100-byte read at open time, so plain `std::fs` is used.
fn prepare_path(path: &Path) -> Result<(), EventStoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            EventStoreError::backend(format!("create the folder {} for the SQLite event store", parent.display()), e)
        })?;
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EventStoreError::backend(format!("open {}", path.display()), e)),
    };
    let read_error = |e| EventStoreError::backend(format!("read the header of {}", path.display()), e);
    // Header first, then the length: a file that grows in between (another process checkpointing) can
    // only look longer than its header says, never shorter.
    let mut header = Vec::with_capacity(100);
    file.by_ref().take(100).read_to_end(&mut header).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    if header.is_empty() {
        // SQLite treats an empty file as a new, empty database (tempfile creates them like this).
        return Ok(());
    }
    if header.len() < 100 || !header.starts_with(SQLITE_MAGIC) {
        return Err(not_a_database(path));
    }
    // Committed pages may still sit in a non-empty write-ahead log (a connection is open, or a crash
    // left them there); the main file may then legitimately be shorter. Only a file at rest is checked.
    let wal_len = std::fs::metadata(wal_path(path)).map(|m| m.len()).unwrap_or(0);
    if wal_len == 0 {
        if let Some(expected) = expected_file_len(&header) {
            if len < expected || len % page_size(&header) != 0 {
                return Err(SchemaError::Unreadable {
                    location: path.display().to_string(),
                    problem: format!(
                        "is truncated or damaged: its header describes {expected} bytes but the file has {len}"
                    ),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// `path` with `-wal` appended: where SQLite keeps the write-ahead log.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The page size recorded at offset 16 (big-endian; 1 means 65536).
fn page_size(header: &[u8]) -> u64 {
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size).max(1),
    }
}

/// The file length the header promises, when the in-header page count is valid (its change counter at
/// offset 24 equals the "version valid for" number at offset 92, as the file format specifies).
fn expected_file_len(header: &[u8]) -> Option<u64> {
    let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let page_count = be32(28);
    (page_count > 0 && be32(24) == be32(92)).then(|| u64::from(page_count) * page_size(header))
}

fn not_a_database(path: &Path) -> EventStoreError {
    SchemaError::Unreadable {
        location: path.display().to_string(),
        problem: "is not an SQLite database (or is corrupt or encrypted)".to_owned(),
    }
    .into()
}

/// Maps a failure while connecting or migrating: a file SQLite cannot read is a schema problem; a lock
/// held too long by another process is transient.
fn open_error(path: &Path, error: sqlx::Error) -> EventStoreError {
    match sqlite_code(&error) {
        Some(SQLITE_NOTADB) => not_a_database(path),
        Some(SQLITE_CORRUPT) => {
            SchemaError::Unreadable { location: path.display().to_string(), problem: format!("is damaged ({error})") }
                .into()
        }
        _ => driver_error(format!("open the SQLite event store at {}", path.display()), error),
    }
}

/// Applies the embedded migrations inside one `BEGIN IMMEDIATE` transaction, so two processes opening a
/// new file at the same time take turns instead of both creating the tables.
async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), EventStoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| open_error(path, e))?;
    MIGRATOR.run_direct(&mut *tx).await.map_err(|e| migrate_error(path, e))?;
    tx.commit().await.map_err(|e| open_error(path, e))
}

fn migrate_error(file: &Path, error: MigrateError) -> EventStoreError {
    let fix = "restore the file from a backup";
    composable_rust_sql::migrate_error(&file.display().to_string(), error, fix, |_, e| open_error(file, e))
}
