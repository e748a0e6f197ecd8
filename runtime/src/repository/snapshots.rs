//! Snapshots: saved in the background after a command when the policy says so, counted from the newest
//! one still being written, and flushed on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::Utc;
use composable_rust_core::{Aggregate, EventStoreError, Snapshot, StreamId, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::Repository;
use crate::replay::encode_snapshot;

/// Background snapshot writes of a repository and its clones.
#[derive(Default)]
struct PendingState {
    tasks: Vec<JoinHandle<()>>,
    /// The version of the newest snapshot being written per stream, until its write finishes. The policy
    /// counts from it, so commands that arrive before the write lands do not start more snapshots.
    in_flight: HashMap<StreamId, Version>,
}

#[derive(Clone, Default)]
pub(super) struct PendingSnapshots(Arc<Mutex<PendingState>>);

impl PendingSnapshots {
    fn lock(&self) -> MutexGuard<'_, PendingState> {
        // The state stays consistent even if a holder panicked: every update is a single insert or remove.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn in_flight(&self, stream_id: &StreamId) -> Option<Version> {
        self.lock().in_flight.get(stream_id).copied()
    }

    fn finished(&self, stream_id: &StreamId, version: Version) {
        let mut state = self.lock();
        if state.in_flight.get(stream_id) == Some(&version) {
            state.in_flight.remove(stream_id);
        }
    }
}

impl<A> Repository<A>
where
    A: Aggregate + Serialize + DeserializeOwned,
{
    /// Saves a snapshot of `state` at `version` now and waits for the write.
    ///
    /// The policy normally takes care of snapshots; this is for tools and tests (e.g. after
    /// [`Repository::load_without_snapshot`] to replace an outdated snapshot). `state` must be the
    /// aggregate's state after exactly the events up to `version`. A stored snapshot at a newer version is
    /// kept: snapshots never go back in time (see
    /// [`SnapshotStore::save_snapshot`](composable_rust_core::backend::SnapshotStore::save_snapshot)).
    ///
    /// # Errors
    /// [`EventStoreError::Codec`] when the state does not encode, or the store's error.
    pub async fn save_snapshot(
        &self,
        stream_id: &StreamId,
        state: &A,
        version: Version,
    ) -> Result<(), EventStoreError> {
        let snapshot = self.encode_snapshot(stream_id, state, version)?;
        self.store.save_snapshot(&snapshot).await
    }

    /// Waits until every snapshot write started so far by this repository (or its clones) has finished.
    ///
    /// Call it before a short-lived process exits, or in tests before asserting on snapshots: background
    /// writes still running when the tokio runtime shuts down are lost (harmlessly: the next load
    /// replays more events, and the next write takes a new snapshot).
    pub async fn flush_snapshots(&self) {
        loop {
            let handles = std::mem::take(&mut self.pending.lock().tasks);
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if let Err(error) = handle.await {
                    tracing::warn!(%error, "a snapshot task did not finish");
                }
            }
        }
    }

    fn encode_snapshot(&self, stream_id: &StreamId, state: &A, version: Version) -> Result<Snapshot, EventStoreError> {
        encode_snapshot(stream_id, state, version, self.shared.config.codec, Utc::now())
    }

    /// Encodes the snapshot now (the state is borrowed) and writes it in the background.
    pub(super) async fn start_snapshot(&self, stream_id: &StreamId, state: &A, version: Version) -> Option<Version> {
        let snapshot = match self.encode_snapshot(stream_id, state, version) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(stream_id = %stream_id, %version, %error, "could not encode a snapshot; skipping it");
                return None;
            }
        };
        let store = Arc::clone(&self.store);
        let pending = self.pending.clone();
        let write = async move {
            let result = store.save_snapshot(&snapshot).await;
            pending.finished(&snapshot.stream_id, snapshot.version);
            if let Err(error) = result {
                tracing::warn!(
                    stream_id = %snapshot.stream_id,
                    version = %snapshot.version,
                    error = &error as &dyn std::error::Error,
                    "could not save a snapshot; loads replay more events until the next one"
                );
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let mut pending = self.pending.lock();
                let newest = pending.in_flight.entry(stream_id.clone()).or_insert(version);
                *newest = (*newest).max(version);
                pending.tasks.retain(|task| !task.is_finished());
                pending.tasks.push(runtime.spawn(write));
            }
            // Outside tokio (another executor) there is nowhere to spawn: write before returning.
            Err(_) => write.await,
        }
        Some(version)
    }
}
