//! Retention: which old events may be removed, and the [`EventRetention`] capability every backend
//! implements to remove them without breaking event sourcing.
//!
//! Nothing is ever removed unless an operator configured a policy and ran it: the default
//! ([`RetentionRule::Forever`]) keeps everything, and no application write path removes anything. A policy
//! says which events are *eligible* ([`RetentionRule`]); the [plan](RetentionPlan) then keeps every
//! eligible event whose removal would break a load, and says why.
//!
//! # The invariants (stated here, checked by the plan and again by every backend in its transaction)
//! 1. **A stream's last event is never removed.** Its version, and so every [`ExpectedVersion`](crate::ExpectedVersion)
//!    check and the next append's version, survive retention unchanged.
//! 2. **A stream that aggregates replay loses only what a snapshot covers.** Unless its category is
//!    declared replay-free ([`CategoryPolicy::replay_free`], an audit log that nothing rebuilds state
//!    from), version `v` of a stream may be removed only when the stream's snapshot is at version `S >= v`
//!    at the moment of removal. A load starts from that snapshot and reads versions `S + 1..`, all of
//!    which are retained, so it yields the same state as before the removal. Equivalently: removing the
//!    versions below `V` needs a snapshot at or above `V - 1`.
//! 3. **Nothing is removed without a policy**, and every removal is recorded: each batch writes, in its
//!    own transaction, the removed events' positions and its run's audit row ([`RetentionRun`]).
//! 4. **The removal horizon only grows**: [`EventRetention::removal_horizon`] is the greatest global
//!    position ever removed. A subscription whose checkpoint lies below it may have missed events, so it
//!    stops with a clear error unless it opted in to skipping them (see the runtime's subscriptions).
//!
//! Loading a stream whose early versions are gone starts at its snapshot; without a usable snapshot the
//! runtime's repository fails with an error naming the missing versions, never a wrong state.

mod plan;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

use crate::error::{EventStoreError, InvalidInput};
use crate::event::RecordedEvent;
use crate::event_store::LogFilter;
use crate::stream::{GlobalPosition, StreamId, Version};

pub use plan::{CategoryPlan, KeptReason, KeptStream, RetentionPlan, StreamFacts, StreamPlan};

/// Which events of a category are eligible for removal. The default keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RetentionRule {
    /// Keep every event (the default).
    #[default]
    Forever,
    /// Events recorded more than `days` days before the plan's time are eligible (KurrentDB's `$maxAge`).
    MaxAge {
        /// The age in days, at least 1.
        days: u32,
    },
    /// Keep the last `keep` versions of each stream; the earlier ones are eligible (KurrentDB's
    /// `$maxCount`).
    MaxCount {
        /// How many of the latest versions to keep, at least 1.
        keep: u64,
    },
    /// Keep the events that match the criteria; every other event is eligible.
    Keep(KeepCriteria),
}

impl fmt::Display for RetentionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::MaxAge { days } => write!(f, "max age {days} days"),
            Self::MaxCount { keep } => write!(f, "keep the last {keep} events of each stream"),
            Self::Keep(criteria) => write!(f, "keep only {criteria}"),
        }
    }
}

/// Which events a [`RetentionRule::Keep`] keeps: an event is kept when it matches **any** criterion given
/// (each one can only keep more, the safe direction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepCriteria {
    /// Events of these types (`OrderPlaced.v1`).
    pub event_types: Vec<String>,
    /// Events of streams in these categories.
    pub categories: Vec<String>,
    /// Events whose metadata has these values: `actor`, `correlation_id` and `causation_id` name the
    /// fields of [`Metadata`](crate::Metadata); any other key names a top-level field of its free-form JSON,
    /// compared as text (a JSON string by its contents, anything else by its JSON form).
    pub metadata: BTreeMap<String, String>,
}

impl KeepCriteria {
    /// Whether no criterion is given (such a rule would keep nothing, which [`RetentionPolicies::validate`]
    /// refuses as a likely mistake).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty() && self.categories.is_empty() && self.metadata.is_empty()
    }

    /// Whether `event` is kept.
    #[must_use]
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.event_types.iter().any(|t| t == event.event_type.as_str())
            || self.categories.iter().any(|c| c == event.stream_id.category())
            || self.metadata.iter().any(|(key, value)| metadata_matches(event, key, value))
    }
}

fn metadata_matches(event: &RecordedEvent, key: &str, value: &str) -> bool {
    let metadata = &event.metadata;
    match key {
        "actor" => metadata.actor.as_deref() == Some(value),
        "correlation_id" => metadata.correlation_id.is_some_and(|id| id.to_string() == value),
        "causation_id" => metadata.causation_id.is_some_and(|id| id.to_string() == value),
        _ => match metadata.extra_value() {
            Some(Ok(serde_json::Value::Object(fields))) => fields.get(key).is_some_and(|found| match found {
                serde_json::Value::String(text) => text == value,
                other => serde_json::from_str::<serde_json::Value>(value).is_ok_and(|parsed| parsed == *other),
            }),
            _ => false,
        },
    }
}

impl fmt::Display for KeepCriteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.event_types.is_empty() {
            parts.push(format!("event types {}", self.event_types.join(", ")));
        }
        if !self.categories.is_empty() {
            parts.push(format!("categories {}", self.categories.join(", ")));
        }
        for (key, value) in &self.metadata {
            parts.push(format!("metadata {key} = {value}"));
        }
        f.write_str(&parts.join(" or "))
    }
}

/// The policy of one category: its rule, and whether nothing replays its streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryPolicy {
    /// Which events are eligible.
    pub rule: RetentionRule,
    /// The category's streams are never replayed into state (an audit log): eligible events are removed
    /// without a snapshot. Declare it only when no aggregate loads these streams; an aggregate that does
    /// then fails to load with an error naming the removed versions.
    pub replay_free: bool,
}

/// The retention policies of a store: a rule per category and a default for the others.
///
/// ```
/// use composable_rust_core::{CategoryPolicy, RetentionPolicies, RetentionRule};
///
/// let policies = RetentionPolicies::default()
///     .category("audit", CategoryPolicy { rule: RetentionRule::MaxAge { days: 365 }, replay_free: true })
///     .category("order", CategoryPolicy { rule: RetentionRule::MaxCount { keep: 100 }, replay_free: false });
/// policies.validate()?;
/// assert_eq!(policies.for_category("cart").rule, RetentionRule::Forever);
/// # Ok::<(), composable_rust_core::PolicyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicies {
    /// The rule of every category not listed in `categories` (default: [`RetentionRule::Forever`]).
    pub default: RetentionRule,
    /// Policies by category name (`order` for `order-42`).
    pub categories: BTreeMap<String, CategoryPolicy>,
}

impl RetentionPolicies {
    /// Sets the policy of `category`.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>, policy: CategoryPolicy) -> Self {
        self.categories.insert(category.into(), policy);
        self
    }

    /// Sets the rule of the categories without their own policy.
    #[must_use]
    pub fn default_rule(mut self, rule: RetentionRule) -> Self {
        self.default = rule;
        self
    }

    /// The policy that applies to `category`.
    #[must_use]
    pub fn for_category(&self, category: &str) -> CategoryPolicy {
        self.categories
            .get(category)
            .cloned()
            .unwrap_or_else(|| CategoryPolicy { rule: self.default.clone(), replay_free: false })
    }

    /// Whether every policy keeps everything (nothing can be planned for removal).
    #[must_use]
    pub fn is_forever(&self) -> bool {
        self.default == RetentionRule::Forever && self.categories.values().all(|p| p.rule == RetentionRule::Forever)
    }

    /// Checks the policies for mistakes.
    ///
    /// # Errors
    /// [`PolicyError`] for a zero age or count, a `keep` rule with no criterion, or an empty category name or
    /// one containing `-`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_rule("the default", &self.default)?;
        for (category, policy) in &self.categories {
            if category.is_empty() || category.contains(StreamId::CATEGORY_SEPARATOR) {
                return Err(PolicyError::Category { category: category.clone() });
            }
            validate_rule(&format!("category {category:?}"), &policy.rule)?;
        }
        Ok(())
    }
}

impl fmt::Display for RetentionPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "default: {}", self.default)?;
        for (category, policy) in &self.categories {
            write!(f, "; {category}: {}", policy.rule)?;
            if policy.replay_free {
                f.write_str(" (replay-free)")?;
            }
        }
        Ok(())
    }
}

fn validate_rule(scope: &str, rule: &RetentionRule) -> Result<(), PolicyError> {
    let problem = match rule {
        RetentionRule::MaxAge { days: 0 } => "max_age_days is 0; use at least 1, or remove the rule to keep everything",
        RetentionRule::MaxCount { keep: 0 } => {
            "max_count is 0; use at least 1 (a stream's last event is always kept), or remove the rule"
        }
        RetentionRule::Keep(criteria) if criteria.is_empty() => {
            "keep has no criterion, so it would keep nothing; name event_types, categories or metadata to keep"
        }
        _ => return Ok(()),
    };
    Err(PolicyError::Rule { scope: scope.to_owned(), problem })
}

/// A retention policy that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A rule is meaningless as written.
    #[error("the retention rule of {scope} is invalid: {problem}")]
    Rule {
        /// `the default` or `category "order"`.
        scope: String,
        /// What is wrong and what to do.
        problem: &'static str,
    },
    /// A category name is empty or holds the category separator.
    #[error("invalid retention category {category:?}: name a category as the part of a stream id before its first `-`")]
    Category {
        /// The name given.
        category: String,
    },
}

/// The identity of one retention run: every batch of the run carries it, and its audit row is keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetentionRunId(Uuid);

impl RetentionRunId {
    /// A new run id (a time-ordered UUID).
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id as a UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for RetentionRunId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for RetentionRunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The versions to remove from one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRemoval {
    /// The stream.
    pub stream_id: StreamId,
    /// The versions to remove, ascending, each once.
    pub versions: Vec<Version>,
    /// The stream's category is declared replay-free: no snapshot is needed (the last event is still kept).
    pub replay_free: bool,
}

/// One bounded batch of a retention run: removed in one transaction, with the run's audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalBatch {
    /// The run this batch belongs to.
    pub run: RetentionRunId,
    /// Who runs it (an operator, a scheduler), recorded in the audit row.
    pub actor: String,
    /// The policy applied, as text, recorded in the audit row (the first batch of a run sets it).
    pub policy: String,
    /// Where the removed events were archived, if anywhere, recorded in the audit row.
    pub archive: Option<String>,
    /// The streams and versions, each stream once; at most [`RemovalBatch::MAX_EVENTS`] versions in all.
    pub streams: Vec<StreamRemoval>,
}

impl RemovalBatch {
    /// The most versions one batch may name: a batch is one transaction, and a bounded one.
    pub const MAX_EVENTS: usize = 1000;

    /// How many versions the batch names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.streams.iter().map(|s| s.versions.len()).sum()
    }

    /// Whether the batch names no version.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks what every backend refuses before touching storage: no actor, too many versions, a stream
    /// named twice, versions not ascending, version 0.
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] naming the problem.
    pub fn validate(&self) -> Result<(), EventStoreError> {
        let invalid = |text: String| Err(EventStoreError::InvalidInput(InvalidInput::Other(text)));
        if self.actor.trim().is_empty() {
            return invalid("a removal batch needs an actor (who runs retention) for its audit row".to_owned());
        }
        if self.len() > Self::MAX_EVENTS {
            return invalid(format!(
                "a removal batch names {} versions, more than the {} one transaction may remove: split it",
                self.len(),
                Self::MAX_EVENTS
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for stream in &self.streams {
            if !seen.insert(&stream.stream_id) {
                return invalid(format!("stream {} is named twice in one removal batch", stream.stream_id));
            }
            let ascending = stream.versions.windows(2).all(|pair| pair[0] < pair[1]);
            if !ascending || stream.versions.first().is_some_and(|v| *v == Version::INITIAL) {
                return invalid(format!(
                    "the versions to remove from stream {} must be ascending, distinct and at least 1",
                    stream.stream_id
                ));
            }
        }
        Ok(())
    }
}

/// Why a backend refused to remove an event: removing it would break event sourcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalRefusal {
    /// It is the stream's last event, which carries the stream's version.
    LastEvent,
    /// The stream has no snapshot and its category is not replay-free.
    NoSnapshot,
    /// The stream's snapshot is below the version, so a load would need the event.
    AboveSnapshot {
        /// The snapshot's version.
        snapshot: Version,
    },
    /// The stream has no such version.
    BeyondStream {
        /// The stream's version.
        stream_version: Version,
    },
}

impl fmt::Display for RemovalRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LastEvent => f.write_str("it is the stream's last event, which retention always keeps"),
            Self::NoSnapshot => f.write_str(
                "the stream has no snapshot and its category is not replay-free; save a snapshot first, or \
                 declare the category replay-free if nothing loads it",
            ),
            Self::AboveSnapshot { snapshot } => write!(
                f,
                "the stream's snapshot is at version {snapshot}, below it, so loads still need the event; save a \
                 newer snapshot first"
            ),
            Self::BeyondStream { stream_version } => write!(f, "the stream is only at version {stream_version}"),
        }
    }
}

/// Checks the invariants of retention for one stream of a batch, as a backend sees the stream inside the
/// removal's transaction: never the last event, never above the snapshot unless replay-free.
///
/// # Errors
/// [`EventStoreError::RemovalRefused`] for the first version that may not go; nothing of the batch may be
/// removed then.
pub fn check_stream_removal(
    removal: &StreamRemoval,
    stream_version: Version,
    snapshot: Option<Version>,
) -> Result<(), EventStoreError> {
    for &version in &removal.versions {
        let refusal = if version > stream_version {
            Some(RemovalRefusal::BeyondStream { stream_version })
        } else if version == stream_version {
            Some(RemovalRefusal::LastEvent)
        } else if removal.replay_free {
            None
        } else {
            match snapshot {
                None => Some(RemovalRefusal::NoSnapshot),
                Some(snapshot) if snapshot < version => Some(RemovalRefusal::AboveSnapshot { snapshot }),
                Some(_) => None,
            }
        };
        if let Some(reason) = refusal {
            return Err(EventStoreError::RemovalRefused { stream_id: removal.stream_id.clone(), version, reason });
        }
    }
    Ok(())
}

/// Whether a removed event of `stream_id` and `event_type` passes `filter`, as far as a store can tell: the
/// stream prefix and the event types; the rest of a removed event is not kept (see
/// [`EventRetention::removed_between`]).
#[must_use]
pub fn removed_event_matches(filter: &LogFilter, stream_id: &str, event_type: &str) -> bool {
    filter.matches_type(event_type) && filter.stream_prefix.as_deref().is_none_or(|p| stream_id.starts_with(p))
}

/// What one batch removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemovalOutcome {
    /// Events removed by this batch.
    pub removed: u64,
    /// Versions the batch named that were already gone (a batch re-run after a failure).
    pub already_removed: u64,
}

/// The audit row of one retention run: who ran it, when, with what policy, and how much it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRun {
    /// The run.
    pub id: RetentionRunId,
    /// Who ran it.
    pub actor: String,
    /// The policy it applied, as text.
    pub policy: String,
    /// Where its events were archived, if anywhere.
    pub archive: Option<String>,
    /// When its first batch committed.
    pub started_at: DateTime<Utc>,
    /// When its last batch committed.
    pub finished_at: DateTime<Utc>,
    /// Events it removed.
    pub events_removed: u64,
    /// Batches (transactions) it committed.
    pub batches: u64,
}

/// Removing old events, the one way anything leaves an event store: an explicit, audited administrative
/// operation that keeps the invariants of [this module](self). Part of every
/// [`EventStore`](crate::EventStore).
#[async_trait]
pub trait EventRetention: Send + Sync + std::fmt::Debug {
    /// Removes the versions `batch` names, in one transaction, and records them with the run's audit row
    /// (created by the run's first batch, its counts and time updated by each batch).
    ///
    /// Each stream is checked with [`check_stream_removal`] against its version and snapshot inside the
    /// transaction, so a snapshot deleted since the plan is noticed. Versions already removed are skipped
    /// and counted, so a run re-run after a failure finishes the work.
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for a batch [`RemovalBatch::validate`] refuses;
    /// [`EventStoreError::RemovalRefused`] when a version may not go (nothing is removed);
    /// [`EventStoreError::Unavailable`] and [`EventStoreError::Backend`] as for appends.
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError>;

    /// The greatest global position ever removed; `None` when nothing was.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError>;

    /// How many removed events had a position in `(after, through]` and match `filter`'s stream prefix and
    /// event types. A store keeps only the position, stream and type of a removed event, so the filter's
    /// other restrictions (correlation id, times) are not applied: such events are counted (the safe side
    /// for a subscription that asks whether it missed anything).
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError>;

    /// The lowest version of `stream_id` still stored; `None` for a stream without events. It is above
    /// [`Version::FIRST`] when retention removed the stream's first events.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError>;

    /// Every retention run's audit row, oldest first.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError>;
}
