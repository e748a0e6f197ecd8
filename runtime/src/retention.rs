//! Running retention against a store: [`plan_retention`] reads what the store holds and computes the
//! [`RetentionPlan`] (pure, in `core`); [`apply_retention`] removes what a plan names, one bounded
//! transaction per batch. Archiving the events first is the caller's job (the admin CLI writes and verifies
//! a JSONL archive before it calls [`apply_retention`]).

use chrono::{DateTime, Utc};
use composable_rust_core::{
    EventStore, EventStoreError, RecordedEvent, RetentionPlan, RetentionPolicies, RetentionRule, RetentionRunId,
    StreamFacts, StreamId, StreamPlan, StreamRange,
};

/// Streams listed per page while planning.
const STREAM_PAGE: usize = 500;

/// Plans retention of `store` under `policies` at `now`: every stream of a category whose rule is not
/// [`RetentionRule::Forever`] is read (its events and snapshot), one stream at a time; the others are not
/// read and do not appear in the plan. `archive_size` gives the bytes an event takes in the archive.
///
/// # Errors
/// The store's errors.
pub async fn plan_retention(
    store: &dyn EventStore,
    policies: &RetentionPolicies,
    now: DateTime<Utc>,
    archive_size: &(dyn Fn(&RecordedEvent) -> u64 + Sync),
) -> Result<RetentionPlan, EventStoreError> {
    let mut plan = RetentionPlan::new(policies, now);
    if policies.is_forever() {
        return Ok(plan);
    }
    let mut after: Option<StreamId> = None;
    loop {
        let page = store.list_streams("", after.as_ref(), STREAM_PAGE).await?;
        for info in &page {
            if policies.for_category(info.stream_id.category()).rule == RetentionRule::Forever {
                continue;
            }
            let snapshot = store.load_snapshot(&info.stream_id).await?.map(|s| s.version);
            let events = store.load_stream(&info.stream_id, StreamRange::all()).await?;
            let facts = StreamFacts { stream_id: &info.stream_id, version: info.version, snapshot, events: &events };
            plan.add(StreamPlan::new(policies, facts, now, archive_size));
        }
        match page.last() {
            Some(last) if page.len() == STREAM_PAGE => after = Some(last.stream_id.clone()),
            _ => break,
        }
    }
    Ok(plan)
}

/// What [`apply_retention`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The run's id (its audit row).
    pub run: RetentionRunId,
    /// Events removed.
    pub removed: u64,
    /// Events the plan named that were already gone (a run repeated after a failure).
    pub already_removed: u64,
    /// Batches (transactions) committed.
    pub batches: u64,
}

/// Removes what `plan` names from `store` as run `run` (a new [`RetentionRunId::generate`], or the id the
/// archive of the removed events was written under), in batches of at most
/// [`RemovalBatch::MAX_EVENTS`](composable_rust_core::RemovalBatch::MAX_EVENTS) events, each one transaction
/// that also records the run's audit row (`actor`, the plan's policy, `archive`). The store checks every
/// invariant again in each transaction.
///
/// # Errors
/// The store's errors, [`EventStoreError::RemovalRefused`] included (for instance, a snapshot was deleted
/// since the plan). The batches committed before the error stay removed and audited; plan again and apply
/// to finish.
pub async fn apply_retention(
    store: &dyn EventStore,
    plan: &RetentionPlan,
    run: RetentionRunId,
    actor: &str,
    archive: Option<&str>,
) -> Result<Applied, EventStoreError> {
    let mut applied = Applied { run, removed: 0, already_removed: 0, batches: 0 };
    for batch in plan.batches(run, actor, archive) {
        let outcome = store.remove_events(&batch).await?;
        applied.removed += outcome.removed;
        applied.already_removed += outcome.already_removed;
        applied.batches += 1;
        tracing::info!(run = %run, removed = outcome.removed, batch = applied.batches, "retention batch removed");
    }
    Ok(applied)
}
