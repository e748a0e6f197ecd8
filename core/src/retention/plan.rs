//! The retention plan: from the policies and what the store holds, which events would go, stream by stream,
//! and which eligible events are kept and why. Pure: the caller reads the store and feeds each stream in.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::{RemovalBatch, RetentionPolicies, RetentionRule, RetentionRunId, StreamRemoval};
use crate::event::RecordedEvent;
use crate::stream::{StreamId, Version};

/// What the planner needs to know of one stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamFacts<'a> {
    /// The stream.
    pub stream_id: &'a StreamId,
    /// Its version (the version of its last event).
    pub version: Version,
    /// The version of its snapshot, if it has one.
    pub snapshot: Option<Version>,
    /// Its stored events, in version order (retention may have removed some before).
    pub events: &'a [RecordedEvent],
}

/// Why eligible events of a stream are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeptReason {
    /// The stream has no snapshot, so a load replays every event (and the category is not replay-free).
    NoSnapshot,
    /// The stream's snapshot is below the events, so a load still replays them.
    BelowSnapshot {
        /// The snapshot's version.
        snapshot: Version,
    },
    /// The stream's last event always stays: it carries the stream's version.
    LastEvent,
}

impl fmt::Display for KeptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSnapshot => {
                f.write_str("no snapshot: a load replays them (save a snapshot, or declare the category replay-free)")
            }
            Self::BelowSnapshot { snapshot } => {
                write!(
                    f,
                    "the snapshot at version {snapshot} is below them: a load replays them (save a newer snapshot)"
                )
            }
            Self::LastEvent => f.write_str("the stream's last event, which carries its version, always stays"),
        }
    }
}

/// The plan for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlan {
    /// The stream.
    pub stream_id: StreamId,
    /// The versions to remove, ascending.
    pub remove: Vec<Version>,
    /// Whether its category is replay-free.
    pub replay_free: bool,
    /// Eligible events kept, by reason (at most one entry per reason).
    pub kept: Vec<(KeptReason, u64)>,
    /// Stored events that stay.
    pub retained: u64,
    /// The earliest `recorded_at` of the events that stay.
    pub oldest_kept: Option<DateTime<Utc>>,
    /// Bytes the removed events take in the archive.
    pub archive_bytes: u64,
}

impl StreamPlan {
    /// Plans one stream under `policies` at time `now`; `archive_size` gives the bytes an event takes in
    /// the archive.
    #[must_use]
    pub fn new(
        policies: &RetentionPolicies,
        facts: StreamFacts<'_>,
        now: DateTime<Utc>,
        archive_size: &dyn Fn(&RecordedEvent) -> u64,
    ) -> Self {
        let policy = policies.for_category(facts.stream_id.category());
        let eligible = |event: &RecordedEvent| match &policy.rule {
            RetentionRule::Forever => false,
            RetentionRule::MaxAge { days } => event.recorded_at < now - Duration::days(i64::from(*days)),
            RetentionRule::MaxCount { keep } => event.version.get().saturating_add(*keep) <= facts.version.get(),
            RetentionRule::Keep(criteria) => !criteria.matches(event),
        };
        let mut plan = Self {
            stream_id: facts.stream_id.clone(),
            remove: Vec::new(),
            replay_free: policy.replay_free,
            kept: Vec::new(),
            retained: 0,
            oldest_kept: None,
            archive_bytes: 0,
        };
        for event in facts.events {
            if eligible(event) {
                let kept = if event.version >= facts.version {
                    Some(KeptReason::LastEvent)
                } else if policy.replay_free {
                    None
                } else {
                    match facts.snapshot {
                        None => Some(KeptReason::NoSnapshot),
                        Some(snapshot) if snapshot < event.version => Some(KeptReason::BelowSnapshot { snapshot }),
                        Some(_) => None,
                    }
                };
                match kept {
                    None => {
                        plan.remove.push(event.version);
                        plan.archive_bytes += archive_size(event);
                        continue;
                    }
                    Some(reason) => match plan.kept.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, count)) => *count += 1,
                        None => plan.kept.push((reason, 1)),
                    },
                }
            }
            plan.retained += 1;
            plan.oldest_kept = Some(plan.oldest_kept.map_or(event.recorded_at, |t| t.min(event.recorded_at)));
        }
        plan
    }
}

/// The plan of one category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryPlan {
    /// Streams of the category.
    pub streams: u64,
    /// Events stored now.
    pub events: u64,
    /// Events the plan removes.
    pub remove: u64,
    /// Eligible events kept because removing them would break a load (no or an older snapshot).
    pub kept_without_snapshot: u64,
    /// The earliest `recorded_at` of the events that stay.
    pub oldest_kept: Option<DateTime<Utc>>,
    /// Bytes the removed events take in the archive.
    pub archive_bytes: u64,
}

/// A stream whose eligible events are kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptStream {
    /// The stream.
    pub stream_id: StreamId,
    /// Why.
    pub reason: KeptReason,
    /// How many eligible events are kept for that reason.
    pub events: u64,
}

/// What a retention run would remove from a store: counts per category, the removals, and the streams
/// whose eligible events are kept against the policy.
///
/// ```
/// use chrono::Utc;
/// use composable_rust_core::{RetentionPlan, RetentionPolicies};
///
/// let plan = RetentionPlan::new(&RetentionPolicies::default(), Utc::now());
/// assert_eq!(plan.events_to_remove(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// The time the ages were measured from.
    pub planned_at: DateTime<Utc>,
    /// The policies, as text (what the audit row records).
    pub policy: String,
    /// Per category.
    pub categories: BTreeMap<String, CategoryPlan>,
    /// What to remove, stream by stream, in the order the streams were added.
    pub removals: Vec<StreamRemoval>,
    /// Streams whose eligible events stay, with the reason (the last-event rule is not listed).
    pub kept: Vec<KeptStream>,
}

impl RetentionPlan {
    /// An empty plan for `policies` at `now`; add the store's streams with [`RetentionPlan::add`].
    #[must_use]
    pub fn new(policies: &RetentionPolicies, now: DateTime<Utc>) -> Self {
        Self {
            planned_at: now,
            policy: policies.to_string(),
            categories: BTreeMap::new(),
            removals: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Adds the plan of one stream.
    pub fn add(&mut self, stream: StreamPlan) {
        let category = self.categories.entry(stream.stream_id.category().to_owned()).or_default();
        let removing = stream.remove.len() as u64;
        category.streams += 1;
        category.events += stream.retained + removing;
        category.remove += removing;
        category.archive_bytes += stream.archive_bytes;
        if let Some(oldest) = stream.oldest_kept {
            category.oldest_kept = Some(category.oldest_kept.map_or(oldest, |t| t.min(oldest)));
        }
        for &(reason, events) in &stream.kept {
            if reason != KeptReason::LastEvent {
                category.kept_without_snapshot += events;
                self.kept.push(KeptStream { stream_id: stream.stream_id.clone(), reason, events });
            }
        }
        if !stream.remove.is_empty() {
            self.removals.push(StreamRemoval {
                stream_id: stream.stream_id,
                versions: stream.remove,
                replay_free: stream.replay_free,
            });
        }
    }

    /// Events the plan removes.
    #[must_use]
    pub fn events_to_remove(&self) -> u64 {
        self.categories.values().map(|c| c.remove).sum()
    }

    /// Bytes the removed events take in the archive.
    #[must_use]
    pub fn archive_bytes(&self) -> u64 {
        self.categories.values().map(|c| c.archive_bytes).sum()
    }

    /// The removals cut into batches of at most [`RemovalBatch::MAX_EVENTS`] versions, each naming a stream
    /// at most once, for run `run` by `actor`.
    #[must_use]
    pub fn batches(&self, run: RetentionRunId, actor: &str, archive: Option<&str>) -> Vec<RemovalBatch> {
        let empty = || RemovalBatch {
            run,
            actor: actor.to_owned(),
            policy: self.policy.clone(),
            archive: archive.map(str::to_owned),
            streams: Vec::new(),
        };
        let mut batches = Vec::new();
        let mut current = empty();
        let mut room = RemovalBatch::MAX_EVENTS;
        for removal in &self.removals {
            for chunk in removal.versions.chunks(RemovalBatch::MAX_EVENTS) {
                if chunk.len() > room {
                    batches.push(std::mem::replace(&mut current, empty()));
                    room = RemovalBatch::MAX_EVENTS;
                }
                current.streams.push(StreamRemoval {
                    stream_id: removal.stream_id.clone(),
                    versions: chunk.to_vec(),
                    replay_free: removal.replay_free,
                });
                room -= chunk.len();
            }
        }
        if !current.streams.is_empty() {
            batches.push(current);
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::retention::{CategoryPolicy, KeepCriteria, check_stream_removal};
    use crate::{CodecId, EventId, GlobalPosition, Metadata};

    fn event(stream: &StreamId, version: u64, day: i64, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            id: EventId::generate(),
            stream_id: stream.clone(),
            version: Version::new(version),
            position: GlobalPosition::new(version),
            event_type: event_type.into(),
            codec: CodecId::Json,
            payload: b"{}".to_vec().into(),
            metadata: Metadata::default(),
            recorded_at: Utc.timestamp_opt(0, 0).single().unwrap_or_default() + Duration::days(day),
            tags: Vec::new(),
        }
    }

    fn rule() -> impl Strategy<Value = RetentionRule> {
        prop_oneof![
            Just(RetentionRule::Forever),
            (1u32..40).prop_map(|days| RetentionRule::MaxAge { days }),
            (1u64..40).prop_map(|keep| RetentionRule::MaxCount { keep }),
            Just(RetentionRule::Keep(KeepCriteria { event_types: vec!["Kept.v1".into()], ..KeepCriteria::default() })),
        ]
    }

    /// A stream of `len` events, one per day, every third of type `Kept.v1`, with some removed already.
    fn stream() -> impl Strategy<Value = (u64, Option<u64>, Vec<bool>)> {
        (1u64..40).prop_flat_map(|len| {
            (Just(len), proptest::option::of(0..=len), proptest::collection::vec(any::<bool>(), len as usize))
        })
    }

    fn facts_events(id: &StreamId, len: u64, gone: &[bool]) -> Vec<RecordedEvent> {
        (1..=len)
            .filter(|v| *v == len || !gone[(*v - 1) as usize])
            .map(|v| event(id, v, v as i64, if v % 3 == 0 { "Kept.v1" } else { "Other.v1" }))
            .collect()
    }

    proptest! {
        #[test]
        fn the_plan_keeps_every_invariant_of_retention(
            (len, snapshot, gone) in stream(), rule in rule(), replay_free in any::<bool>(), now_day in 0i64..80,
        ) {
            let id = StreamId::new("order-1").unwrap_or_else(|_| unreachable!());
            let events = facts_events(&id, len, &gone);
            let policies = RetentionPolicies::default()
                .category("order", CategoryPolicy { rule: rule.clone(), replay_free });
            let now = Utc.timestamp_opt(0, 0).single().unwrap_or_default() + Duration::days(now_day);
            let facts = StreamFacts { stream_id: &id, version: Version::new(len), snapshot: snapshot.map(Version::new), events: &events };
            let plan = StreamPlan::new(&policies, facts, now, &|_| 1);
            // Never the last event.
            prop_assert!(plan.remove.iter().all(|v| v.get() < len));
            // Never above the snapshot unless replay-free.
            if !replay_free {
                let covered = snapshot.unwrap_or(0);
                prop_assert!(plan.remove.iter().all(|v| v.get() <= covered));
            }
            // Nothing with the default policy.
            if rule == RetentionRule::Forever {
                prop_assert!(plan.remove.is_empty());
            }
            // Only stored events, each once, ascending: what the backends accept.
            prop_assert!(plan.remove.windows(2).all(|p| p[0] < p[1]));
            prop_assert!(plan.remove.iter().all(|v| events.iter().any(|e| e.version == *v)));
            let removal = StreamRemoval { stream_id: id.clone(), versions: plan.remove.clone(), replay_free };
            prop_assert!(check_stream_removal(&removal, Version::new(len), snapshot.map(Version::new)).is_ok());
            prop_assert_eq!(plan.retained + plan.remove.len() as u64, events.len() as u64);
        }

        #[test]
        fn the_default_policies_remove_nothing((len, snapshot, gone) in stream(), now_day in 0i64..1000) {
            let id = StreamId::new("anything-1").unwrap_or_else(|_| unreachable!());
            let events = facts_events(&id, len, &gone);
            let now = Utc.timestamp_opt(0, 0).single().unwrap_or_default() + Duration::days(now_day);
            let facts = StreamFacts { stream_id: &id, version: Version::new(len), snapshot: snapshot.map(Version::new), events: &events };
            let mut plan = RetentionPlan::new(&RetentionPolicies::default(), now);
            plan.add(StreamPlan::new(&RetentionPolicies::default(), facts, now, &|_| 1));
            prop_assert_eq!(plan.events_to_remove(), 0);
            prop_assert!(plan.batches(RetentionRunId::generate(), "test", None).is_empty());
        }

        #[test]
        fn batches_cover_the_removals_once_and_stay_bounded(lens in proptest::collection::vec(1usize..2500, 1..6)) {
            let mut plan = RetentionPlan::new(&RetentionPolicies::default(), Utc::now());
            for (i, len) in lens.iter().enumerate() {
                let stream_id = StreamId::new(format!("s-{i}")).unwrap_or_else(|_| unreachable!());
                let versions = (1..=*len as u64).map(Version::new).collect();
                plan.removals.push(StreamRemoval { stream_id, versions, replay_free: true });
            }
            let batches = plan.batches(RetentionRunId::generate(), "test", None);
            let total: usize = batches.iter().map(RemovalBatch::len).sum();
            prop_assert_eq!(total, lens.iter().sum::<usize>());
            for batch in &batches {
                prop_assert!(batch.validate().is_ok());
            }
        }
    }

    #[test]
    fn a_stream_without_a_snapshot_keeps_its_old_events_and_says_why() {
        let id = StreamId::new("order-7").unwrap_or_else(|_| unreachable!());
        let events: Vec<_> = (1..=5).map(|v| event(&id, v, 0, "Placed.v1")).collect();
        let policies = RetentionPolicies::default().default_rule(RetentionRule::MaxCount { keep: 2 });
        let facts = StreamFacts { stream_id: &id, version: Version::new(5), snapshot: None, events: &events };
        let mut plan = RetentionPlan::new(&policies, Utc::now());
        plan.add(StreamPlan::new(&policies, facts, Utc::now(), &|_| 10));
        assert_eq!(plan.events_to_remove(), 0);
        assert_eq!(plan.kept, vec![KeptStream { stream_id: id.clone(), reason: KeptReason::NoSnapshot, events: 3 }]);

        let with_snapshot = StreamFacts { snapshot: Some(Version::new(4)), ..facts };
        let mut plan = RetentionPlan::new(&policies, Utc::now());
        plan.add(StreamPlan::new(&policies, with_snapshot, Utc::now(), &|_| 10));
        assert_eq!(plan.removals[0].versions, vec![Version::new(1), Version::new(2), Version::new(3)]);
        assert_eq!(plan.archive_bytes(), 30);
        assert_eq!(plan.categories["order"].oldest_kept, Some(events[3].recorded_at));
    }
}
