//! Local-file event store for composable-rust: events as append-only JSONL files in a directory, which
//! people can read with `zcat`, `jq` and `grep`.
//!
//! [`FileEventStore`] implements the [`EventStore`](composable_rust_core::EventStore) contract of
//! `composable-rust-core` (the same versions, positions, errors, idempotent retries, tags and conditional
//! appends, snapshots, checkpoints, leases and commit notifications as the other backends, pinned by the
//! conformance and subscription suites). `backend = "file"` in the facade's configuration opens it.
//!
//! **When to use it.** Development, demos, tests that want real files, and single-process services whose
//! log fits in memory. One process at a time opens a directory (a lock file enforces it), and the whole
//! log is held in memory after the open. For several processes or a log larger than memory, use SQLite or
//! PostgreSQL; moving between them is an export and an import.
//!
//! # Example
//!
//! ```
//! use composable_rust_core::backend::EventLog;
//! use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange};
//! use composable_rust_file::{Durability, FileConfig, FileEventStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut config = FileConfig::default();
//! config.durability = Durability::Normal; // survive a process crash, not a power loss
//! let store = FileEventStore::open_with(dir.path().join("events"), config).await?;
//!
//! let order = StreamId::new("order-42")?;
//! let placed = NewEvent::new("OrderPlaced.v1", CodecId::Json, br#"{"customer":"ada"}"#.to_vec(), Metadata::default());
//! let written = store.append(&order, ExpectedVersion::NoStream, vec![placed]).await?;
//! assert_eq!(written.stream_version.get(), 1);
//!
//! // A second store on the same directory is refused while this one is open.
//! let second = FileEventStore::open(dir.path().join("events")).await;
//! assert!(second.is_err_and(|e| e.to_string().contains("is open in this process")));
//!
//! let events = store.load_stream(&order, StreamRange::all()).await?;
//! assert_eq!(events[0].event_type, "OrderPlaced.v1");
//! # Ok(())
//! # }
//! ```
//!
//! # On disk
//!
//! ```text
//! events/
//!   LOCK                                     the single-writer lock (holds the owner's process id)
//!   events-00000000000000000001.jsonl.gz     closed segments, compressed, named by their first position
//!   events-00000000000000052113.jsonl        the open segment: appends go here
//!   snapshots.jsonl                          the latest snapshot per stream
//!   checkpoints.jsonl                        the position per subscription handler
//!   retention.jsonl                          the removals retention recorded, one line per batch
//! ```
//!
//! A segment starts with a header line, then holds one event per line in position order; the last event
//! of each commit carries `"commit": n`. The segments are the only source of truth: the index for stream,
//! id, tag and global reads is rebuilt from them on every open, checking every line (dense positions and
//! versions, unique ids, valid names). Damage gets an error that names the file and the line.
//!
//! # Settings ([`FileConfig`])
//!
//! | setting | default | what |
//! |---|---|---|
//! | [`durability`](FileConfig::durability) | [`Durability::Full`] | `Full`: each commit is flushed to disk before the append returns; `Normal`: written to the OS, which survives a process crash |
//! | [`segment_size`](FileConfig::segment_size) | 64 MiB | when a segment is closed and compressed |
//! | [`max_line_len`](FileConfig::max_line_len) | 16 MiB | the largest encoded event, written or read |
//!
//! # Crashes
//!
//! An append returns once its commit line is written, so after a crash whatever follows the last complete
//! commit of the newest segment was never acknowledged: the next open cuts it, with a warning, and every
//! acknowledged append is there. The rule, the lock and the layout are described in docs/operations.md
//! ("The file backend") and argued in docs/decisions.md.

mod config;
mod index;
mod line;
mod lock;
mod retention;
mod segment;
mod state;
mod store;

pub use composable_rust_core::Durability;
pub use config::FileConfig;
pub use store::FileEventStore;
