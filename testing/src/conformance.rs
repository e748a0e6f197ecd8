//! The conformance suite: the event store contract as executable cases that every backend runs.
//!
//! Each case is a public `async fn case(store: Arc<dyn EventStore>)` that panics with a message naming the
//! broken rule. A backend runs them all with one line in an integration test:
//!
//! ```
//! use composable_rust_testing::InMemoryEventStore;
//! use composable_rust_testing::conformance::StoreUnderTest;
//!
//! async fn in_memory() -> StoreUnderTest {
//!     StoreUnderTest::new(InMemoryEventStore::new())
//! }
//!
//! composable_rust_testing::event_store_conformance_tests!(in_memory);
//! # fn main() {}
//! ```
//!
//! The macro generates one `#[test]` per case, named after it, that builds a fresh store with the factory
//! and runs the case on a multi-threaded tokio runtime with two workers ([`run_case`]). A factory returns a
//! [`StoreUnderTest`]: the store plus anything that must live as long as the test (a temporary directory, a
//! test database), attached with [`StoreUnderTest::with_guard`].
//!
//! Every case names its streams, categories and handlers with a random prefix and only looks at its own
//! data, so the cases also pass against a store shared by tests running in parallel. A fresh store per case
//! is still the better fixture: failures are easier to read.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use composable_rust_core::{
    AppendResult, CodecId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter,
    Metadata, NewEvent, RecordedEvent, StreamId, Version,
};
use uuid::Uuid;

mod dcb;
mod ids;
mod import;
mod log;
mod storage;
mod streams;

pub use dcb::{
    a_condition_fails_only_on_a_matching_event_after_its_position,
    a_plain_tagged_append_racing_a_decision_is_never_missed,
    a_query_paged_by_its_horizon_sees_every_event_of_concurrent_writers,
    a_read_of_nothing_and_a_condition_beyond_the_log_vouch_for_nothing,
    atomic_appends_across_streams_are_all_or_nothing,
    conditional_appends_in_any_interleaving_never_commit_on_a_stale_read,
    invalid_tags_are_invalid_input_and_write_nothing, malformed_atomic_appends_are_invalid_input_and_write_nothing,
    racing_bookings_never_exceed_the_capacity, racing_claims_of_one_tag_under_none_exist_exactly_one_wins,
    racing_conditional_appends_never_commit_on_a_stale_read, read_query_matches_types_or_tags_and_items_or,
    read_query_pages_by_after_and_limit_with_a_horizon, tags_round_trip_in_order_through_every_read,
    writers_with_disjoint_queries_never_fail_each_other,
};
pub use ids::{
    a_batch_stored_only_in_part_is_an_error_and_writes_nothing,
    an_append_retried_after_its_reply_was_lost_is_stored_once, an_id_repeated_within_a_batch_is_invalid_input,
    event_ids_round_trip_through_loads_reads_and_lookups,
    retrying_an_append_with_the_same_ids_returns_the_original_result, reusing_an_id_for_another_event_is_an_error,
    the_same_batch_appended_concurrently_is_stored_once,
};
pub use import::{
    an_import_out_of_version_order_is_a_conflict_and_writes_nothing,
    an_import_rerun_skips_what_is_stored_and_writes_the_rest,
    an_import_reusing_an_id_or_malformed_is_refused_and_writes_nothing,
    import_keeps_ids_versions_times_tags_and_the_order_given, list_checkpoints_returns_every_handler_in_name_order,
    stats_count_events_streams_snapshots_checkpoints_and_times,
};
pub use log::{
    every_filter_reads_the_same_events_newest_first, filter_by_actor_matches_only_that_actor,
    filter_by_correlation_id_matches_only_that_correlation, filter_by_event_type_matches_only_those_types,
    filter_by_recorded_time_is_a_half_open_window, filter_by_stream_prefix_and_category_matches_only_those_streams,
    filter_fields_must_all_match, global_log_orders_events_by_strictly_increasing_position,
    list_streams_pages_by_prefix_after_and_limit_in_byte_order,
    newest_first_reads_the_log_backwards_and_pages_by_before, paging_the_global_log_covers_each_event_once,
    read_all_limit_counts_matching_events, tailing_reader_sees_every_event_committed_by_concurrent_writers,
};
pub use storage::{
    a_lower_checkpoint_save_does_not_move_it_back, a_snapshot_at_the_same_version_replaces_the_stored_one,
    an_older_snapshot_never_replaces_a_newer_one, checkpoints_are_per_handler_and_move_forward,
    concurrent_snapshot_saves_keep_the_newest, delete_checkpoint_moves_it_back_to_the_start,
    delete_snapshot_reports_whether_one_existed, health_check_answers, invalid_handler_names_are_invalid_input,
    load_snapshot_of_unknown_stream_is_none, load_snapshots_returns_each_existing_snapshot_in_the_order_asked,
    saving_many_snapshots_keeps_what_saving_them_one_by_one_keeps, snapshot_round_trips_every_field,
    snapshot_save_replaces_the_previous_one, snapshots_are_isolated_per_stream,
};
pub use streams::{
    a_stream_range_limit_reads_at_most_that_many_events, append_reports_stream_version_and_positions,
    conflicting_batch_writes_nothing, empty_batch_is_invalid_input, event_fields_round_trip_exactly,
    expected_any_appends_at_every_version, expected_exact_conflicts_for_stale_and_future_versions,
    expected_no_stream_conflicts_once_the_stream_exists, expected_stream_exists_conflicts_on_an_empty_stream,
    first_event_is_version_one_and_versions_are_dense, invalid_events_are_invalid_input_and_write_nothing,
    long_stream_loads_in_order, partial_ranges_load_the_requested_versions,
    racing_writers_at_one_expected_version_exactly_one_wins, recorded_at_is_near_now_with_microsecond_precision,
    stream_version_is_zero_until_the_first_append, streams_are_isolated,
};

/// What a factory returns: the store under test plus whatever must outlive the test (temp dir, database).
pub struct StoreUnderTest {
    /// The store the cases run against.
    pub store: Arc<dyn EventStore>,
    /// Dropped after the case finishes, still inside the runtime.
    guard: Option<Box<dyn Any + Send + Sync>>,
}

impl StoreUnderTest {
    /// Wraps a store that needs nothing else kept alive.
    pub fn new(store: impl EventStore + 'static) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// Wraps a store that is already behind an `Arc`.
    #[must_use]
    pub fn from_shared(store: Arc<dyn EventStore>) -> Self {
        Self { store, guard: None }
    }

    /// Keeps `guard` alive until the case has finished, e.g. a `tempfile::TempDir` holding the database file.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

impl fmt::Debug for StoreUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUnderTest")
            .field("store", &self.store)
            .field("guard", &self.guard.as_ref().map(|_| "..."))
            .finish()
    }
}

/// Runs one case on a fresh store from `factory`, on a multi-threaded tokio runtime with two workers.
///
/// This is what each test generated by [`event_store_conformance_tests!`](crate::event_store_conformance_tests)
/// does; call it directly to run a single case from a hand-written test.
///
/// # Panics
/// When the tokio runtime cannot be built, and whenever the case finds a violation of the contract.
pub fn run_case<F, FFut, C, CFut>(factory: F, case: C)
where
    F: FnOnce() -> FFut,
    FFut: Future<Output = StoreUnderTest>,
    C: FnOnce(Arc<dyn EventStore>) -> CFut,
    CFut: Future<Output = ()>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("could not build the tokio runtime for a conformance case: {error}"),
    };
    runtime.block_on(async move {
        let under_test = factory().await;
        case(Arc::clone(&under_test.store)).await;
        drop(under_test);
    });
}

/// Generates one test per conformance case, each on a fresh store from `$factory`.
///
/// `$factory` is the path of an `async fn() -> StoreUnderTest`. Every generated test is named after its
/// case (see [`conformance`](crate::conformance)), so a failure names the rule that broke. Invoke the macro
/// once per module; wrap it in a `mod` to run the suite against two configurations in one file.
///
/// ```
/// use composable_rust_testing::InMemoryEventStore;
/// use composable_rust_testing::conformance::StoreUnderTest;
///
/// async fn fresh_store() -> StoreUnderTest {
///     StoreUnderTest::new(InMemoryEventStore::new())
/// }
///
/// composable_rust_testing::event_store_conformance_tests!(fresh_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! event_store_conformance_tests {
    ($factory:path) => {
        $crate::event_store_conformance_tests!(@cases $factory;
            first_event_is_version_one_and_versions_are_dense,
            stream_version_is_zero_until_the_first_append,
            append_reports_stream_version_and_positions,
            conflicting_batch_writes_nothing,
            expected_any_appends_at_every_version,
            expected_no_stream_conflicts_once_the_stream_exists,
            expected_stream_exists_conflicts_on_an_empty_stream,
            expected_exact_conflicts_for_stale_and_future_versions,
            racing_writers_at_one_expected_version_exactly_one_wins,
            event_fields_round_trip_exactly,
            recorded_at_is_near_now_with_microsecond_precision,
            partial_ranges_load_the_requested_versions,
            a_stream_range_limit_reads_at_most_that_many_events,
            long_stream_loads_in_order,
            streams_are_isolated,
            empty_batch_is_invalid_input,
            invalid_events_are_invalid_input_and_write_nothing,
            global_log_orders_events_by_strictly_increasing_position,
            paging_the_global_log_covers_each_event_once,
            read_all_limit_counts_matching_events,
            filter_by_event_type_matches_only_those_types,
            filter_by_stream_prefix_and_category_matches_only_those_streams,
            filter_by_correlation_id_matches_only_that_correlation,
            filter_by_recorded_time_is_a_half_open_window,
            filter_fields_must_all_match,
            filter_by_actor_matches_only_that_actor,
            newest_first_reads_the_log_backwards_and_pages_by_before,
            every_filter_reads_the_same_events_newest_first,
            tailing_reader_sees_every_event_committed_by_concurrent_writers,
            list_streams_pages_by_prefix_after_and_limit_in_byte_order,
            snapshot_save_replaces_the_previous_one,
            an_older_snapshot_never_replaces_a_newer_one,
            a_snapshot_at_the_same_version_replaces_the_stored_one,
            concurrent_snapshot_saves_keep_the_newest,
            saving_many_snapshots_keeps_what_saving_them_one_by_one_keeps,
            snapshot_round_trips_every_field,
            load_snapshot_of_unknown_stream_is_none,
            load_snapshots_returns_each_existing_snapshot_in_the_order_asked,
            delete_snapshot_reports_whether_one_existed,
            snapshots_are_isolated_per_stream,
            checkpoints_are_per_handler_and_move_forward,
            a_lower_checkpoint_save_does_not_move_it_back,
            delete_checkpoint_moves_it_back_to_the_start,
            invalid_handler_names_are_invalid_input,
            health_check_answers,
            event_ids_round_trip_through_loads_reads_and_lookups,
            retrying_an_append_with_the_same_ids_returns_the_original_result,
            reusing_an_id_for_another_event_is_an_error,
            a_batch_stored_only_in_part_is_an_error_and_writes_nothing,
            an_id_repeated_within_a_batch_is_invalid_input,
            the_same_batch_appended_concurrently_is_stored_once,
            an_append_retried_after_its_reply_was_lost_is_stored_once,
            tags_round_trip_in_order_through_every_read,
            invalid_tags_are_invalid_input_and_write_nothing,
            malformed_atomic_appends_are_invalid_input_and_write_nothing,
            read_query_matches_types_or_tags_and_items_or,
            read_query_pages_by_after_and_limit_with_a_horizon,
            a_condition_fails_only_on_a_matching_event_after_its_position,
            a_read_of_nothing_and_a_condition_beyond_the_log_vouch_for_nothing,
            atomic_appends_across_streams_are_all_or_nothing,
            racing_claims_of_one_tag_under_none_exist_exactly_one_wins,
            racing_bookings_never_exceed_the_capacity,
            writers_with_disjoint_queries_never_fail_each_other,
            a_query_paged_by_its_horizon_sees_every_event_of_concurrent_writers,
            a_plain_tagged_append_racing_a_decision_is_never_missed,
            conditional_appends_in_any_interleaving_never_commit_on_a_stale_read,
            racing_conditional_appends_never_commit_on_a_stale_read,
            import_keeps_ids_versions_times_tags_and_the_order_given,
            an_import_rerun_skips_what_is_stored_and_writes_the_rest,
            an_import_out_of_version_order_is_a_conflict_and_writes_nothing,
            an_import_reusing_an_id_or_malformed_is_refused_and_writes_nothing,
            stats_count_events_streams_snapshots_checkpoints_and_times,
            list_checkpoints_returns_every_handler_in_name_order,
        );
    };
    (@cases $factory:path; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(|| $factory(), $crate::conformance::$case);
            }
        )+
    };
}

/// Names for one case's data: a random category so that cases never see each other's streams.
struct Names {
    category: String,
}

impl Names {
    fn new() -> Self {
        let random = Uuid::new_v4().simple().to_string();
        Self { category: format!("conf{}", &random[..12]) }
    }

    /// `conf<random>-<name>`.
    fn stream(&self, name: &str) -> StreamId {
        match StreamId::new(format!("{}-{name}", self.category)) {
            Ok(id) => id,
            Err(error) => panic!("the conformance suite built an invalid stream id: {error}"),
        }
    }

    /// The prefix shared by every stream of this case: `conf<random>-`.
    fn prefix(&self) -> String {
        format!("{}-", self.category)
    }

    /// A filter for this case's events only.
    fn filter(&self) -> LogFilter {
        LogFilter::all().stream_prefix(self.prefix())
    }

    /// A handler name unique to this case.
    fn handler(&self, name: &str) -> String {
        format!("{}-{name}", self.category)
    }
}

/// An event with a bincode payload of `n` (so payloads differ) and no metadata.
fn numbered(event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: event_type.to_owned(),
        codec: CodecId::Bincode,
        payload: n.to_le_bytes().to_vec(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

/// `count` events numbered from `first`.
fn batch(event_type: &str, first: u64, count: u64) -> Vec<NewEvent> {
    (first..first + count).map(|n| numbered(event_type, n)).collect()
}

/// Unwraps a result the case needs, naming the step that failed.
#[track_caller]
fn ok<T>(result: Result<T, EventStoreError>, step: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{step} failed: {error} ({error:?})"),
    }
}

/// Appends and unwraps.
async fn append(
    store: &dyn EventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendResult {
    let result = store.append(stream, expected, events).await;
    ok(result, &format!("append to {stream} expecting {expected}"))
}

/// Loads the whole stream and unwraps.
async fn load_all(store: &dyn EventStore, stream: &StreamId) -> Vec<RecordedEvent> {
    let result = store.load_stream(stream, composable_rust_core::StreamRange::all()).await;
    ok(result, &format!("load stream {stream}"))
}

/// Every event matching `filter`, read through the global log in pages of `page` events.
async fn read_log(store: &dyn EventStore, filter: &LogFilter, page: usize) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let got = ok(store.read_all(after, filter, page).await, "read the global log");
        assert!(got.len() <= page, "read_all returned {} events for a limit of {page}", got.len());
        let Some(last) = got.last() else { break };
        after = last.position;
        let short = got.len() < page;
        events.extend(got);
        if short {
            break;
        }
    }
    events
}

/// Every event matching `filter`, read newest first in pages of `page` events.
async fn read_newest_first(store: &dyn EventStore, filter: &LogFilter, page: usize) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut cursor = LogCursor::Newest;
    loop {
        let got = ok(store.read_log(cursor, filter, page).await, "read the global log newest first");
        assert!(got.len() <= page, "read_log returned {} events for a limit of {page}", got.len());
        assert!(
            got.iter().all(|e| cursor.admits(e.position)) && got.windows(2).all(|w| w[0].position > w[1].position),
            "a newest-first page must hold only positions below its cursor {cursor:?}, decreasing"
        );
        cursor = cursor.next(&got);
        let short = got.len() < page;
        events.extend(got);
        if short {
            break;
        }
    }
    events
}

/// Checks that `result` is the conflict the contract demands, with exactly these values.
#[track_caller]
fn assert_conflict<T: fmt::Debug>(
    result: Result<T, EventStoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: Version,
) {
    match result {
        Err(EventStoreError::ConcurrencyConflict { stream_id, expected: e, actual: a }) => {
            assert_eq!(&stream_id, stream, "the conflict must name the stream that was written to");
            assert_eq!(e, expected, "the conflict must report the expectation the writer passed");
            assert_eq!(a, actual, "the conflict must report the stream's actual version");
        }
        other => panic!(
            "appending to {stream} expecting {expected} while it is at version {actual} must fail with \
             ConcurrencyConflict {{ expected: {expected:?}, actual: {actual:?} }}, got {other:?}"
        ),
    }
}

/// Checks that `result` is an `InvalidInput` error (not a backend error, not success).
#[track_caller]
fn assert_invalid_input<T: fmt::Debug>(result: Result<T, EventStoreError>, what: &str) {
    match result {
        Err(EventStoreError::InvalidInput(_)) => {}
        other => panic!("{what} must be rejected with EventStoreError::InvalidInput, got {other:?}"),
    }
}

/// The versions of `events`, as numbers.
fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version.get()).collect()
}
