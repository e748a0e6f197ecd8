//! The metrics composable-rust records, through the [`metrics`] crate's facade: their names (one
//! constant each), their labels, and [`describe`], which gives an installed recorder their units and help
//! texts.
//!
//! Nothing is recorded anywhere until the application installs a recorder (for example
//! `metrics-exporter-prometheus`); without one every call goes to the facade's no-op recorder. Where
//! each metric comes from:
//! - the store operations, by [`InstrumentedStore`](crate::InstrumentedStore) (which
//!   `composable_rust::config::open` puts around every store it opens);
//! - loads, by the [`Repository`](crate::Repository) and by a [`Store`](crate::Store)'s event store requests;
//! - subscriptions, by the [`Subscription`](crate::Subscription) loop.
//!
//! Labels are bounded: `backend` (`sqlite`, `postgres`, `file`, `in-memory`, or `unknown` for a store
//! that does not name itself), `category` (the part of the stream id before its first `-`, see
//! [`StreamId::category`](composable_rust_core::StreamId::category)) and `subscription` (a subscription's
//! name). Never a stream id, an event id or a payload: their number has no bound. The table with every
//! metric is in `docs/operations.md` ("Metrics and tracing").

use std::time::Duration;

use metrics::{
    Key, Label, Level, Metadata, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// Counter: successful appends (an atomic append counts once per stream it wrote), by `backend` and
/// `category`.
pub const APPENDS: &str = "composable_appends_total";
/// Counter: events written by successful appends, by `backend` and `category`.
pub const EVENTS_APPENDED: &str = "composable_events_appended_total";
/// Counter: appends refused because the stream moved or a condition matched (a concurrency conflict), by
/// `backend` and `category`.
pub const APPEND_CONFLICTS: &str = "composable_append_conflicts_total";
/// Counter: appends that failed for any other reason (the store unavailable, invalid input), by `backend`
/// and `category`.
pub const APPEND_ERRORS: &str = "composable_append_errors_total";
/// Histogram: events per successful append, by `backend` and `category`.
pub const APPEND_BATCH_SIZE: &str = "composable_append_batch_size";
/// Histogram: seconds an append took, whatever its outcome, by `backend` and `category`.
pub const APPEND_DURATION: &str = "composable_append_duration_seconds";
/// Counter: aggregate loads that started from a snapshot, by `backend` and `category`.
pub const SNAPSHOT_HITS: &str = "composable_snapshot_hits_total";
/// Counter: aggregate loads that replayed from the first event (no snapshot, or one that could not be
/// used), by `backend` and `category`.
pub const SNAPSHOT_MISSES: &str = "composable_snapshot_misses_total";
/// Histogram: seconds an aggregate load took (snapshot read, events read and replayed), by `backend` and
/// `category`.
pub const LOAD_DURATION: &str = "composable_load_duration_seconds";
/// Histogram: events replayed by one aggregate load, by `backend` and `category`.
pub const LOAD_EVENTS_REPLAYED: &str = "composable_load_events_replayed";
/// Counter: events a subscription's handler failed on (each stops the subscription), by `subscription`.
pub const HANDLER_ERRORS: &str = "composable_handler_errors_total";
/// Gauge: events after a subscription's checkpoint, as its last read saw them, by `subscription`. Exact
/// when that read returned less than a page; while catching up it is a lower bound (one page).
pub const SUBSCRIPTION_LAG_EVENTS: &str = "composable_subscription_lag_events";
/// Gauge: age in seconds of the oldest event a subscription's last read returned (0 when it found none:
/// the subscription is live), by `subscription`.
pub const SUBSCRIPTION_LAG_SECONDS: &str = "composable_subscription_lag_seconds";

/// The label naming the backend.
pub const BACKEND_LABEL: &str = "backend";
/// The label naming the stream category.
pub const CATEGORY_LABEL: &str = "category";
/// The label naming a subscription.
pub const SUBSCRIPTION_LABEL: &str = "subscription";

/// Gives the installed recorder the unit and help text of every metric above. Call it once, after
/// installing the recorder; metrics work without it, only with no description.
pub fn describe() {
    describe_counter!(APPENDS, Unit::Count, "successful appends (an atomic append counts once per stream)");
    describe_counter!(EVENTS_APPENDED, Unit::Count, "events written by successful appends");
    describe_counter!(APPEND_CONFLICTS, Unit::Count, "appends refused by a concurrency conflict or a failed condition");
    describe_counter!(APPEND_ERRORS, Unit::Count, "appends that failed otherwise (store unavailable, invalid input)");
    describe_histogram!(APPEND_BATCH_SIZE, Unit::Count, "events per successful append");
    describe_histogram!(APPEND_DURATION, Unit::Seconds, "time an append took, whatever its outcome");
    describe_counter!(SNAPSHOT_HITS, Unit::Count, "aggregate loads that started from a snapshot");
    describe_counter!(SNAPSHOT_MISSES, Unit::Count, "aggregate loads that replayed from the first event");
    describe_histogram!(LOAD_DURATION, Unit::Seconds, "time an aggregate load took (snapshot, read, replay)");
    describe_histogram!(LOAD_EVENTS_REPLAYED, Unit::Count, "events replayed by one aggregate load");
    describe_counter!(HANDLER_ERRORS, Unit::Count, "events a subscription's handler failed on");
    describe_gauge!(
        SUBSCRIPTION_LAG_EVENTS,
        Unit::Count,
        "events after the checkpoint at the last read (a lower bound while catching up)"
    );
    describe_gauge!(
        SUBSCRIPTION_LAG_SECONDS,
        Unit::Seconds,
        "age of the oldest event the last read returned (0 when live)"
    );
}

/// What one append did, for [`record_append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    /// Stored (or found stored by an idempotent retry): this many events.
    Stored(usize),
    /// Refused by a concurrency conflict or a failed condition.
    Conflict,
    /// Failed otherwise.
    Failed,
}

/// Where the metric calls of this crate come from, for recorders that filter by target or level.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of the append metrics of one backend and category, built once and reused by every append to
/// that category: building a key (its labels and their hash) costs more than an append to memory.
#[derive(Debug)]
pub(crate) struct AppendKeys {
    duration: Key,
    appends: Key,
    events: Key,
    batch: Key,
    conflicts: Key,
    errors: Key,
}

impl AppendKeys {
    /// The keys labelled with `backend` and `category`.
    pub(crate) fn new(backend: &'static str, category: &str) -> Self {
        let labels = vec![Label::new(BACKEND_LABEL, backend), Label::new(CATEGORY_LABEL, category.to_owned())];
        let key = |name: &'static str| Key::from_parts(name, labels.clone());
        Self {
            duration: key(APPEND_DURATION),
            appends: key(APPENDS),
            events: key(EVENTS_APPENDED),
            batch: key(APPEND_BATCH_SIZE),
            conflicts: key(APPEND_CONFLICTS),
            errors: key(APPEND_ERRORS),
        }
    }
}

/// Records one append, under `keys`. The recorder is looked up at each call, so a recorder installed after
/// the store was opened still sees every append.
pub(crate) fn record_append(keys: &AppendKeys, outcome: AppendOutcome, took: Duration) {
    metrics::with_recorder(|recorder| {
        recorder.register_histogram(&keys.duration, &METADATA).record(took.as_secs_f64());
        match outcome {
            AppendOutcome::Stored(events) => {
                recorder.register_counter(&keys.appends, &METADATA).increment(1);
                recorder.register_counter(&keys.events, &METADATA).increment(events as u64);
                recorder.register_histogram(&keys.batch, &METADATA).record(events as f64);
            }
            AppendOutcome::Conflict => recorder.register_counter(&keys.conflicts, &METADATA).increment(1),
            AppendOutcome::Failed => recorder.register_counter(&keys.errors, &METADATA).increment(1),
        }
    });
}

/// Records one aggregate load of a stream of `category` that replayed `replayed` events.
pub(crate) fn record_load(backend: &'static str, category: &str, from_snapshot: bool, replayed: u64, took: Duration) {
    let labels = [(BACKEND_LABEL, backend.to_owned()), (CATEGORY_LABEL, category.to_owned())];
    counter!(if from_snapshot { SNAPSHOT_HITS } else { SNAPSHOT_MISSES }, &labels).increment(1);
    histogram!(LOAD_DURATION, &labels).record(took.as_secs_f64());
    histogram!(LOAD_EVENTS_REPLAYED, &labels).record(replayed as f64);
}

/// Records that the handler of `subscription` failed on an event.
pub(crate) fn record_handler_error(subscription: &str) {
    counter!(HANDLER_ERRORS, SUBSCRIPTION_LABEL => subscription.to_owned()).increment(1);
}

/// Records what the last read of `subscription` found: `events` after its checkpoint, the oldest of them
/// `age` old.
pub(crate) fn record_lag(subscription: &str, events: usize, age: Duration) {
    gauge!(SUBSCRIPTION_LAG_EVENTS, SUBSCRIPTION_LABEL => subscription.to_owned()).set(events as f64);
    gauge!(SUBSCRIPTION_LAG_SECONDS, SUBSCRIPTION_LABEL => subscription.to_owned()).set(age.as_secs_f64());
}
