//! Retention on the file backend ([`EventRetention`]). Segments are append-only and compressed once
//! closed, so a removal is recorded, not cut out: each batch is one line of `retention.jsonl` (its run,
//! actor, policy, archive, time and the removed positions), written and flushed before the index drops
//! the events from every read. On open the index applies the record again. The removed events' bytes stay
//! in their segments until a compaction rewrites them, which this backend does not do yet
//! (docs/decisions.md, "Retention"; plans/README.md).

use std::collections::BTreeMap;

use chrono::{SubsecRound, Utc};
use composable_rust_core::backend::{EventRetention, check_stream_removal};
use composable_rust_core::{
    EventStoreError, GlobalPosition, LogFilter, RemovalBatch, RemovalOutcome, RetentionRun, RetentionRunId, StreamId,
    Version, async_trait,
};

use crate::FileEventStore;
use crate::state::{StoredBatch, StoredRemoval};
use crate::store::{lock, read, write};

#[async_trait]
impl EventRetention for FileEventStore {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        batch.validate()?;
        let batch = batch.clone();
        let operation = format!("remove {} events (retention run {})", batch.len(), batch.run);
        self.blocking(operation.clone(), move |inner| {
            // The writer's lock first, as commits take it: no append interleaves with the check and the record.
            let guard = lock(&inner.writer);
            if guard.is_none() {
                return Err(EventStoreError::unavailable(operation, "the store was closed: open it again"));
            }
            let mut index = write(&inner.index);
            for removal in &batch.streams {
                let snapshot = inner.snapshots.get(removal.stream_id.as_str()).map(|s| s.version());
                check_stream_removal(removal, index.version_of(&removal.stream_id), snapshot)?;
            }
            let mut outcome = RemovalOutcome::default();
            let mut removed = Vec::new();
            for removal in &batch.streams {
                for &version in &removal.versions {
                    match index.position_at(&removal.stream_id, version) {
                        Some((position, false)) => removed.push(StoredRemoval {
                            position: position.get(),
                            stream: removal.stream_id.to_string(),
                            version: version.get(),
                        }),
                        _ => outcome.already_removed += 1,
                    }
                }
            }
            outcome.removed = removed.len() as u64;
            let run = batch.run.as_uuid();
            let number = inner.retention.all().iter().filter(|(_, b)| b.run == run).count() + 1;
            let record = StoredBatch {
                run,
                actor: batch.actor.clone(),
                policy: batch.policy.clone(),
                archive: batch.archive.clone(),
                at: Utc::now().trunc_subsecs(6),
                removed,
            };
            let positions: Vec<u64> = record.removed.iter().map(|r| r.position).collect();
            inner
                .retention
                .update(&format!("{run}/{number:08}"), |_| Some(Some(record)))
                .map_err(|e| EventStoreError::backend(operation, e))?;
            for position in positions {
                index.remove(GlobalPosition::new(position));
            }
            Ok(outcome)
        })
        .await
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        Ok(read(&self.inner().index).removal_horizon())
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        Ok(read(&self.inner().index).removed_between(after, through, filter))
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        Ok(read(&self.inner().index).first_retained(stream_id))
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        let mut runs: BTreeMap<uuid::Uuid, RetentionRun> = BTreeMap::new();
        for (_, batch) in self.inner().retention.all() {
            let removed = batch.removed.len() as u64;
            runs.entry(batch.run)
                .and_modify(|run| {
                    run.started_at = run.started_at.min(batch.at);
                    run.finished_at = run.finished_at.max(batch.at);
                    run.events_removed += removed;
                    run.batches += 1;
                })
                .or_insert_with(|| RetentionRun {
                    id: RetentionRunId::from(batch.run),
                    actor: batch.actor.clone(),
                    policy: batch.policy.clone(),
                    archive: batch.archive.clone(),
                    started_at: batch.at,
                    finished_at: batch.at,
                    events_removed: removed,
                    batches: 1,
                });
        }
        let mut runs: Vec<RetentionRun> = runs.into_values().collect();
        runs.sort_by_key(|run| (run.started_at, run.id));
        Ok(runs)
    }
}
