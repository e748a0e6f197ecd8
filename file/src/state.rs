//! The small keyed files beside the segments: `snapshots.jsonl` (the latest snapshot per stream) and
//! `checkpoints.jsonl` (the position per handler).
//!
//! Each is an append-only log of `{"key": .., "value": ..}` lines where the last line of a key wins and a
//! `null` value deletes it; the whole map is kept in memory. A torn last line (a crash mid-write) is cut on
//! open. When the file holds many more lines than live keys, open rewrites it with one line per key
//! (to a temporary file, flushed, then renamed over the old one).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use composable_rust_core::{CodecId, EventStoreError, GlobalPosition, Snapshot, StreamId, Version};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::segment::{Line, read_line, sync_dir, unreadable};
use composable_rust_core::Durability;

/// One line of a state file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateLine<K, V> {
    key: K,
    value: Option<V>,
}

/// A snapshot as a state file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredSnapshot {
    version: u64,
    schema_version: u32,
    codec: CodecId,
    payload_base64: String,
    taken_at: DateTime<Utc>,
}

impl StoredSnapshot {
    pub(crate) fn from_snapshot(snapshot: &Snapshot) -> Self {
        Self {
            version: snapshot.version.get(),
            schema_version: snapshot.schema_version,
            codec: snapshot.codec,
            payload_base64: BASE64.encode(&snapshot.payload),
            taken_at: snapshot.taken_at,
        }
    }

    pub(crate) fn version(&self) -> Version {
        Version::new(self.version)
    }

    /// The snapshot of `stream`, or why this record cannot be one.
    pub(crate) fn to_snapshot(&self, stream: &str) -> Result<Snapshot, String> {
        Ok(Snapshot {
            stream_id: StreamId::new(stream).map_err(|e| e.to_string())?,
            version: self.version(),
            schema_version: self.schema_version,
            codec: self.codec,
            payload: BASE64.decode(&self.payload_base64).map_err(|e| format!("payload_base64 is not base64: {e}"))?,
            taken_at: self.taken_at,
        })
    }
}

/// One retention batch as `retention.jsonl` stores it, keyed by `RUN/N` (the run id and the batch's
/// number in it): written as one line, so a batch is recorded whole or (a torn last line, cut on open) not
/// at all, and with it the removal of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredBatch {
    pub(crate) run: uuid::Uuid,
    pub(crate) actor: String,
    pub(crate) policy: String,
    pub(crate) archive: Option<String>,
    pub(crate) at: DateTime<Utc>,
    pub(crate) removed: Vec<StoredRemoval>,
}

/// One removed event of a [`StoredBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredRemoval {
    pub(crate) position: u64,
    pub(crate) stream: String,
    pub(crate) version: u64,
}

impl StoredBatch {
    /// Why this record cannot belong to a log of `len` events, if it cannot.
    pub(crate) fn check(&self, len: usize) -> Result<(), String> {
        match self.removed.iter().find(|r| r.position == 0 || usize::try_from(r.position).map_or(true, |p| p > len)) {
            Some(bad) => Err(format!("removes position {}, which the segments do not hold", bad.position)),
            None => Ok(()),
        }
    }
}

/// A checkpoint as a state file stores it.
pub(crate) type StoredCheckpoint = GlobalPosition;

/// A keyed file and its map. The map has its own lock, never held during file I/O, so reads never wait
/// for a write's flush; writes take the file's lock for the whole check-write-update.
#[derive(Debug)]
pub(crate) struct StateFile<V> {
    path: PathBuf,
    file: Mutex<File>,
    entries: RwLock<HashMap<String, V>>,
    durability: Durability,
}

impl<V: Serialize + DeserializeOwned + Clone> StateFile<V> {
    /// Opens (or creates) the state file at `path`, reading every line of at most `max_line_len` bytes;
    /// `check` refuses a value that cannot be what it claims (e.g. a snapshot of an invalid stream id).
    ///
    /// # Errors
    /// [`SchemaError::Unreadable`](composable_rust_core::SchemaError::Unreadable) naming the line of a
    /// damaged record that is not the torn last line; [`EventStoreError::Backend`] when the file cannot be
    /// read or written.
    pub(crate) fn open(
        path: PathBuf,
        max_line_len: usize,
        durability: Durability,
        check: impl Fn(&str, &V) -> Result<(), String>,
    ) -> Result<Self, EventStoreError> {
        let failed = |e: std::io::Error| EventStoreError::backend(format!("open {}", path.display()), e);
        let mut entries = HashMap::new();
        let mut lines = 0_usize;
        let mut keep_len = 0_u64;
        if path.exists() {
            let mut reader = BufReader::new(File::open(&path).map_err(failed)?);
            let mut buf = Vec::new();
            let mut offset = 0_u64;
            loop {
                let (line, consumed) = read_line(&mut reader, &mut buf, max_line_len).map_err(failed)?;
                let number = lines + 1;
                let problem = match line {
                    Line::End => break,
                    Line::Complete => match serde_json::from_slice::<StateLine<String, V>>(&buf) {
                        Ok(record) => match record.value.as_ref().map_or(Ok(()), |v| check(&record.key, v)) {
                            Ok(()) => {
                                match record.value {
                                    Some(value) => entries.insert(record.key, value),
                                    None => entries.remove(&record.key),
                                };
                                lines = number;
                                offset += consumed;
                                keep_len = offset;
                                continue;
                            }
                            Err(problem) => problem,
                        },
                        Err(error) => format!("is not a record of this file: {error}"),
                    },
                    Line::Unterminated => "is cut short".to_owned(),
                    Line::TooLong => format!("is longer than {max_line_len} bytes"),
                };
                // A bad last line is a write that never returned; damage followed by more lines is not.
                let (rest, _) = read_line(&mut reader, &mut buf, max_line_len).map_err(failed)?;
                if rest != Line::End {
                    return Err(unreadable(&path, Some(number), problem));
                }
                tracing::warn!(file = %path.display(), line = number, problem, "cutting a torn last record");
                break;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(failed)?;
        if file.metadata().map_err(failed)?.len() > keep_len {
            file.set_len(keep_len).map_err(failed)?;
        }
        let compact = lines > 2 * entries.len() + 64;
        let location = path.display().to_string();
        let state = Self { path, file: Mutex::new(file), entries: RwLock::new(entries), durability };
        if compact {
            state.compact().map_err(|e| EventStoreError::backend(format!("compact {location}"), e))?;
        }
        Ok(state)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    /// Every key and its value, in key order.
    pub(crate) fn all(&self) -> Vec<(String, V)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(String, V)> = entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Changes the value of `key` as `decide` says, given the current one: `None` leaves it, `Some(Some(v))`
    /// sets it, `Some(None)` deletes it. The line is written (and flushed, by the durability) before the map
    /// changes; returns whether anything was written.
    ///
    /// # Errors
    /// The I/O error; the map is unchanged then.
    pub(crate) fn update(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&V>) -> Option<Option<V>>,
    ) -> std::io::Result<bool> {
        // A panic cannot leave the file half-written (a failed write is cut back below), so poison is ignored.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.get(key);
        let Some(value) = decide(current.as_ref()) else { return Ok(false) };
        let mut line = serde_json::to_vec(&StateLine { key, value: value.as_ref() })?;
        line.push(b'\n');
        let before = file.metadata()?.len();
        let written = file.write_all(&line).and_then(|()| match self.durability {
            Durability::Full => file.sync_data(),
            Durability::Normal => Ok(()),
        });
        if let Err(error) = written {
            // Take back what part of the line was written, so the next line does not follow a torn one.
            let _ = file.set_len(before);
            return Err(error);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match value {
            Some(value) => entries.insert(key.to_owned(), value),
            None => entries.remove(key),
        };
        Ok(true)
    }

    /// Flushes the file to disk (on close).
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner).sync_data()
    }

    /// Rewrites the file with one line per live key (on open, before anyone else holds the state).
    fn compact(&self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let temporary = self.path.with_extension("jsonl.tmp");
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&String> = entries.keys().collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            serde_json::to_writer(&mut out, &StateLine { key: key.as_str(), value: entries.get(key) })?;
            out.push(b'\n');
        }
        let mut file = File::create(&temporary)?;
        file.write_all(&out)?;
        file.sync_all()?;
        fs::rename(&temporary, &self.path)?;
        sync_dir(dir)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }
}
