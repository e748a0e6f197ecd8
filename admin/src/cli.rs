//! The command line, declared with clap: where the store is (the application's configuration) and one
//! subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Look inside a composable-rust event store, back it up and restore it.
///
/// The store is the one the application's configuration names: `--config FILE` (table `[event_store]`), then the
/// environment (`DATABASE_URL`, `COMPOSABLE_EVENT_STORE_BACKEND`, `COMPOSABLE_SQLITE_PATH`), then `--database-url`.
/// With none of them, the SQLite store in `data/events.db`.
#[derive(Debug, Parser)]
#[command(name = "eventstore-admin", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// Which store, and how to print.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The exit codes, printed under `--help` (docs/operations.md has the same table).
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  done
  2  usage error (a bad option or value); nothing was changed
  3  the event store failed, refused, or is not there (read commands never create one); or bad configuration
  4  the archive is invalid (verify, import): the error names the line; import wrote nothing
  5  no such stream (show-stream)
  6  a file could not be read or written (export, import, verify); export leaves no partial file";

/// The options every subcommand takes; they may go before or after it.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The application's configuration file (TOML, table `[event_store]`).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The store's URL: `postgres://user@host:port/database` or `sqlite:path/to/events.db`. Overrides the
    /// configuration and `DATABASE_URL`.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,

    /// Print JSON for scripts (one object per line) instead of text, and no progress bar.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// One job.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List streams with their event counts (a stream's version is its number of events).
    Streams(StreamsArgs),
    /// Print the events of one stream.
    ShowStream(ShowStreamArgs),
    /// Print the last events of the global log; with -f, keep printing new ones as they are committed.
    Tail(TailArgs),
    /// Query the global log: by category, type, actor, correlation id and time, oldest or newest first.
    Events(EventsArgs),
    /// Write the store (or a category, or a position range) to a JSONL archive.
    Export(ExportArgs),
    /// Write the events, snapshots and checkpoints of an archive into the store; verified first, resumable.
    Import(ImportArgs),
    /// Check an archive: structure, dense versions, unique ids, positions, counts and checksum.
    Verify(VerifyArgs),
    /// Count events, streams, snapshots and checkpoints; bytes on disk; oldest and newest event.
    Stats,
    /// Create or update the store's schema (the application does this at start too), then check it.
    Migrate,
    /// Remove old events under the `[retention]` policies of the configuration: plan, apply, list runs.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

/// `retention`.
#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
    /// Show what the policies would remove: counts per category, the oldest event kept, the archive's size,
    /// and the streams whose old events stay because no snapshot covers them. Changes nothing.
    Plan,
    /// Archive what the plan removes to a JSONL file, verify the archive, then remove the events in
    /// bounded transactions recorded in the audit table.
    Apply(ApplyArgs),
    /// List the audit rows of past runs: who, when, which policy, the archive, how many events.
    Runs,
}

/// `retention apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The archive to write the removed events to (written to `FILE.partial`, verified, renamed). With
    /// `--every`, each run writes `FILE` with its run id before the extension.
    #[arg(long, value_name = "FILE")]
    pub(crate) archive: PathBuf,
    /// Who runs retention, for the audit row [default: $USER, else `eventstore-admin`].
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: Option<String>,
    /// Replace the archive file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// Keep running, applying the plan again after each interval (`30m`, `1h`, `1d`), until interrupted.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub(crate) every: Option<std::time::Duration>,
}

/// An interval: a whole number and a unit, `s`, `m`, `h` or `d`.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("{text:?} is not an interval: write a whole number and a unit, e.g. 30m, 1h, 1d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    if number == 0 {
        return Err(format!("{text:?} is no interval: use at least 1"));
    }
    Ok(std::time::Duration::from_secs(number.saturating_mul(seconds)))
}

/// `streams`.
#[derive(Debug, Args)]
pub(crate) struct StreamsArgs {
    /// Only streams whose id starts with this text.
    #[arg(long, value_name = "TEXT", conflicts_with = "category")]
    pub(crate) prefix: Option<String>,
    /// Only the streams of this category (`order` lists `order-1`, `order-2`, ...).
    #[arg(long, value_name = "NAME")]
    pub(crate) category: Option<String>,
    /// Only streams with at least this many events.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) min_events: u64,
    /// List at most this many streams.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) limit: usize,
}

/// `show-stream`.
#[derive(Debug, Args)]
pub(crate) struct ShowStreamArgs {
    /// The stream, e.g. `order-42`.
    pub(crate) stream: String,
    /// The first version to print.
    #[arg(long, value_name = "VERSION", default_value_t = 1)]
    pub(crate) from: u64,
    /// The last version to print [default: the stream's last].
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<u64>,
}

/// `tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Keep printing new events as they are committed, until interrupted.
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// How many of the last events to print first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub(crate) lines: usize,
    /// Only the events of this category.
    #[arg(long, value_name = "NAME")]
    pub(crate) category: Option<String>,
    /// Only the events whose metadata names this actor.
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: Option<String>,
    /// Only the events of this type, e.g. `OrderPlaced.v1` (repeat for several).
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) types: Vec<String>,
    /// With -f, how often to look for new events when the store sends no commit notification, in
    /// milliseconds (a store in another process may not).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub(crate) poll_ms: u64,
}

/// `events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only the events of this category (`order` selects `order-1`, `order-2`, ...).
    #[arg(long, value_name = "NAME", conflicts_with = "prefix")]
    pub(crate) category: Option<String>,
    /// Only the events of streams whose id starts with this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) prefix: Option<String>,
    /// Only the events of this type, e.g. `OrderPlaced.v1` (repeat for several).
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) types: Vec<String>,
    /// Only the events whose metadata names this actor.
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: Option<String>,
    /// Only the events with this correlation id.
    #[arg(long, value_name = "UUID")]
    pub(crate) correlation_id: Option<uuid::Uuid>,
    /// Only the events recorded at or after this time (RFC 3339, e.g. `2026-11-30T18:00:00Z`).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only the events recorded before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<chrono::DateTime<chrono::Utc>>,
    /// Newest first, from the newest event (oldest first without it).
    #[arg(long)]
    pub(crate) newest_first: bool,
    /// Oldest first, after this global position (the last position of the previous page).
    #[arg(long, value_name = "POSITION", conflicts_with_all = ["before", "newest_first"])]
    pub(crate) after: Option<u64>,
    /// Newest first, below this global position (the last position of the previous page).
    #[arg(long, value_name = "POSITION")]
    pub(crate) before: Option<u64>,
    /// Print at most this many events.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) limit: usize,
}

/// `export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The archive to write (`-`: standard output). Written to `FILE.partial` and renamed when complete.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    /// Only the streams of this category (with their snapshots; no checkpoints).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["after", "up_to"])]
    pub(crate) category: Option<String>,
    /// Only events after this global position (an incremental backup; no snapshots or checkpoints).
    #[arg(long, value_name = "POSITION")]
    pub(crate) after: Option<u64>,
    /// Only events up to and including this global position.
    #[arg(long, value_name = "POSITION")]
    pub(crate) up_to: Option<u64>,
}

/// `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The archive to read.
    pub(crate) input: PathBuf,
    /// The longest line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = composable_rust_archive::ReadLimits::DEFAULT_MAX_LINE_BYTES)]
    pub(crate) max_line_bytes: usize,
}

/// `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The archive to read.
    pub(crate) input: PathBuf,
    /// The longest line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = composable_rust_archive::ReadLimits::DEFAULT_MAX_LINE_BYTES)]
    pub(crate) max_line_bytes: usize,
}
