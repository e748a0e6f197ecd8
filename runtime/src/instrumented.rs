//! [`InstrumentedStore`]: an event store wrapped so that every operation has a tracing span and every
//! append is counted and timed ([`crate::metric`]), whatever the backend underneath.
//!
//! One decorator instead of the same lines in four backends: the backends stay free of metrics, and an
//! application gets the same names and labels whichever backend it configures. `composable_rust::config::open`
//! wraps every store it opens; a program that builds a backend by hand wraps it with
//! [`InstrumentedStore::new`].

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use composable_rust_core::backend::{EventLog, HandlerLease, SnapshotStore, StoreLifecycle, SubscriptionStore};
use composable_rust_core::{
    AppendResult, AtomicAppend, EventId, EventQuery, EventRetention, EventStore, EventStoreError, EventStoreReply,
    EventStoreRequest, ExpectedVersion, GlobalPosition, HealthReport, LogCursor, LogFilter, NewEvent, QueryPage,
    RecordedEvent, RemovalBatch, RemovalOutcome, RetentionRun, Snapshot, StoreStats, StreamId, StreamInfo, StreamRange,
    Version, async_trait,
};
use composable_rust_core::{EventStream, backend::RequestHandler, backend::execute_request, backend::load_history};
use futures::StreamExt;
use futures::stream::BoxStream;
use tracing::field::Empty;
use tracing::{Instrument, Span, debug_span};

use crate::metric::{AppendKeys, AppendOutcome, record_append, record_load};

/// An event store that forwards every call to the store it wraps, inside a `debug` tracing span, and
/// records the append metrics of [`crate::metric`]: appends, events appended, conflicts, errors, batch
/// size and latency, labelled by backend and stream category.
///
/// Spans carry the operation's stream, versions, counts, positions and handler names, never a payload or
/// any part of a connection string. Their names start with `event_store.`: `event_store.append`,
/// `event_store.read_log`, and so on.
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::{CodecId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
/// use composable_rust_runtime::InstrumentedStore;
/// use composable_rust_testing::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InstrumentedStore::shared(Arc::new(InMemoryEventStore::new()), "in-memory");
/// let event = NewEvent::new("OrderPlaced.v1", CodecId::Json, b"{}".to_vec(), Metadata::default());
/// store.append(&StreamId::new("order-1")?, ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(store.backend(), "in-memory");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct InstrumentedStore {
    inner: Arc<dyn EventStore>,
    backend: &'static str,
    /// The append metrics' keys per category, built on the first append to each.
    append_keys: Arc<RwLock<HashMap<String, Arc<AppendKeys>>>>,
}

impl fmt::Debug for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedStore")
            .field("backend", &self.backend)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl InstrumentedStore {
    /// Wraps `store`, labelling its metrics and spans with `backend` (`sqlite`, `postgres`, `file`,
    /// `in-memory`, or the name of your own backend).
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>, backend: &'static str) -> Self {
        Self { inner: store, backend, append_keys: Arc::default() }
    }

    /// Wraps `store` as [`InstrumentedStore::new`] does, ready to share.
    #[must_use]
    pub fn shared(store: Arc<dyn EventStore>, backend: &'static str) -> Arc<dyn EventStore> {
        Arc::new(Self::new(store, backend))
    }

    /// The store underneath.
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    /// Records one append to `stream_id`.
    fn record(&self, stream_id: &StreamId, outcome: AppendOutcome, took: Duration) {
        let category = stream_id.category();
        let cached = self.append_keys.read().unwrap_or_else(PoisonError::into_inner).get(category).cloned();
        let keys = cached.unwrap_or_else(|| {
            let mut keys = self.append_keys.write().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                keys.entry(category.to_owned()).or_insert_with(|| Arc::new(AppendKeys::new(self.backend, category))),
            )
        });
        record_append(&keys, outcome, took);
    }
}

fn outcome<T>(result: &Result<T, EventStoreError>, events: usize) -> AppendOutcome {
    match result {
        Ok(_) => AppendOutcome::Stored(events),
        Err(error) if error.is_conflict() => AppendOutcome::Conflict,
        Err(_) => AppendOutcome::Failed,
    }
}

#[async_trait]
impl EventLog for InstrumentedStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        let count = events.len();
        let span = debug_span!("event_store.append", backend = self.backend, stream = %stream_id, %expected, count, version = Empty);
        let started = Instant::now();
        let result = self.inner.append(stream_id, expected, events).instrument(span.clone()).await;
        self.record(stream_id, outcome(&result, count), started.elapsed());
        if let Ok(appended) = &result {
            span.record("version", appended.stream_version.get());
        }
        result
    }

    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        // Per stream: category and number of events, to record once the append is done.
        let streams: Vec<(StreamId, usize)> =
            append.streams.iter().map(|s| (s.stream_id.clone(), s.events.len())).collect();
        let span = debug_span!(
            "event_store.append_atomic",
            backend = self.backend,
            streams = streams.len(),
            count = streams.iter().map(|(_, n)| n).sum::<usize>(),
            conditional = append.condition.is_some(),
        );
        let started = Instant::now();
        let result = self.inner.append_atomic(append).instrument(span).await;
        let took = started.elapsed();
        match &result {
            Ok(_) => {
                for (stream_id, count) in &streams {
                    self.record(stream_id, AppendOutcome::Stored(*count), took);
                }
            }
            Err(error) => {
                // One failed append, counted under the stream the error names (a stale expectation), or else
                // the first stream of the append (a failed condition concerns all of them).
                let named = match error {
                    EventStoreError::ConcurrencyConflict { stream_id, .. } => Some(stream_id),
                    _ => streams.first().map(|(stream_id, _)| stream_id),
                };
                if let Some(stream_id) = named {
                    self.record(stream_id, outcome(&result, 0), took);
                }
            }
        }
        result
    }

    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let span = debug_span!("event_store.read_query", backend = self.backend, %after, limit, count = Empty);
        let result = self.inner.read_query(query, after, limit).instrument(span.clone()).await;
        if let Ok(page) = &result {
            span.record("count", page.events.len());
        }
        result
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        let span = debug_span!("event_store.read_stream", backend = self.backend, stream = %stream_id, from = %range.from, count = Empty);
        let events = {
            let _entered = span.enter();
            self.inner.read_stream(stream_id, range)
        };
        counted(events, span)
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let span = debug_span!("event_store.load_stream", backend = self.backend, stream = %stream_id, from = %range.from, count = Empty);
        let result = self.inner.load_stream(stream_id, range).instrument(span.clone()).await;
        if let Ok(events) = &result {
            span.record("count", events.len());
        }
        result
    }

    async fn visit_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
        visit: &mut (dyn for<'e> FnMut(&'e RecordedEvent) -> ControlFlow<()> + Send),
    ) -> Result<(), EventStoreError> {
        let span = debug_span!("event_store.visit_stream", backend = self.backend, stream = %stream_id, from = %range.from, count = Empty);
        let mut count = 0_u64;
        let mut counting = |event: &RecordedEvent| {
            count += 1;
            visit(event)
        };
        let result = self.inner.visit_stream(stream_id, range, &mut counting).instrument(span.clone()).await;
        span.record("count", count);
        result
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        let span =
            debug_span!("event_store.stream_version", backend = self.backend, stream = %stream_id, version = Empty);
        let result = self.inner.stream_version(stream_id).instrument(span.clone()).await;
        if let Ok(version) = &result {
            span.record("version", version.get());
        }
        result
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        let span = debug_span!("event_store.load_event", backend = self.backend, event_id = %id);
        self.inner.load_event(id).instrument(span).await
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let span = debug_span!("event_store.read_log", backend = self.backend, ?cursor, limit, count = Empty);
        let result = self.inner.read_log(cursor, filter, limit).instrument(span.clone()).await;
        if let Ok(events) = &result {
            span.record("count", events.len());
        }
        result
    }

    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError> {
        let span = debug_span!("event_store.list_streams", backend = self.backend, prefix, limit, count = Empty);
        let result = self.inner.list_streams(prefix, after, limit).instrument(span.clone()).await;
        if let Ok(streams) = &result {
            span.record("count", streams.len());
        }
        result
    }

    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        let span = debug_span!("event_store.import", backend = self.backend, count = events.len());
        self.inner.import(events).instrument(span).await
    }
}

/// `events`, polled inside `span`, which records how many there were when they end.
fn counted(mut events: EventStream<'_>, span: Span) -> EventStream<'_> {
    let mut count = 0_u64;
    futures::stream::poll_fn(move |cx| {
        let _entered = span.enter();
        let next = events.poll_next_unpin(cx);
        match &next {
            std::task::Poll::Ready(Some(Ok(_))) => count += 1,
            std::task::Poll::Ready(None) => {
                span.record("count", count);
            }
            _ => {}
        }
        next
    })
    .boxed()
}

#[async_trait]
impl SnapshotStore for InstrumentedStore {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        let span = debug_span!("event_store.save_snapshot", backend = self.backend, stream = %snapshot.stream_id, version = snapshot.version.get());
        self.inner.save_snapshot(snapshot).instrument(span).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<(), EventStoreError> {
        let span = debug_span!("event_store.save_snapshots", backend = self.backend, count = snapshots.len());
        self.inner.save_snapshots(snapshots).instrument(span).await
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        let span =
            debug_span!("event_store.load_snapshot", backend = self.backend, stream = %stream_id, version = Empty);
        let result = self.inner.load_snapshot(stream_id).instrument(span.clone()).await;
        if let Ok(Some(snapshot)) = &result {
            span.record("version", snapshot.version.get());
        }
        result
    }

    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        let span =
            debug_span!("event_store.load_snapshots", backend = self.backend, streams = streams.len(), count = Empty);
        let result = self.inner.load_snapshots(streams).instrument(span.clone()).await;
        if let Ok(snapshots) = &result {
            span.record("count", snapshots.len());
        }
        result
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        let span = debug_span!("event_store.delete_snapshot", backend = self.backend, stream = %stream_id);
        self.inner.delete_snapshot(stream_id).instrument(span).await
    }
}

#[async_trait]
impl SubscriptionStore for InstrumentedStore {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        let span = debug_span!("event_store.load_checkpoint", backend = self.backend, handler);
        self.inner.load_checkpoint(handler).instrument(span).await
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        let span = debug_span!("event_store.save_checkpoint", backend = self.backend, handler, %position);
        self.inner.save_checkpoint(handler, position).instrument(span).await
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        let span = debug_span!("event_store.delete_checkpoint", backend = self.backend, handler);
        self.inner.delete_checkpoint(handler).instrument(span).await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        let span = debug_span!("event_store.list_checkpoints", backend = self.backend);
        self.inner.list_checkpoints().instrument(span).await
    }

    async fn try_acquire_lease(&self, handler: &str, ttl: Duration) -> Result<Option<HandlerLease>, EventStoreError> {
        let span = debug_span!("event_store.try_acquire_lease", backend = self.backend, handler);
        self.inner.try_acquire_lease(handler, ttl).instrument(span).await
    }

    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        self.inner.commit_notifications()
    }
}

#[async_trait]
impl StoreLifecycle for InstrumentedStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        let span = debug_span!("event_store.health_check", backend = self.backend);
        self.inner.health_check().instrument(span).await
    }

    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        let span = debug_span!("event_store.stats", backend = self.backend);
        self.inner.stats().instrument(span).await
    }

    async fn close(&self) -> Result<(), EventStoreError> {
        let span = debug_span!("event_store.close", backend = self.backend);
        self.inner.close().instrument(span).await
    }
}

/// The [`RequestHandler`] a [`Store`](crate::Store) built with an event store uses: runs each request
/// against the store ([`execute_request`]) and records the load metrics of an aggregate's
/// [`EventStoreRequest::Load`] (snapshot hit or miss, events read, time taken).
#[derive(Debug, Clone)]
pub(crate) struct MeasuredRequests(pub(crate) Arc<dyn EventStore>);

#[async_trait]
impl RequestHandler for MeasuredRequests {
    async fn handle(&self, request: EventStoreRequest) -> Result<EventStoreReply, EventStoreError> {
        match request {
            EventStoreRequest::Load(load) => {
                let stream_id = load.stream_id.clone();
                let started = Instant::now();
                let history = load_history(self.0.as_ref(), load).await?;
                let replayed = history.events.len() as u64;
                record_load(
                    self.0.backend(),
                    stream_id.category(),
                    history.snapshot.is_some(),
                    replayed,
                    started.elapsed(),
                );
                Ok(EventStoreReply::Loaded(history))
            }
            other => execute_request(self.0.as_ref(), other).await,
        }
    }
}

#[async_trait]
impl EventRetention for InstrumentedStore {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        let versions: usize = batch.streams.iter().map(|stream| stream.versions.len()).sum();
        let span = debug_span!(
            "event_store.remove_events",
            backend = self.backend,
            run = %batch.run,
            streams = batch.streams.len(),
            versions,
            removed = Empty
        );
        let result = self.inner.remove_events(batch).instrument(span.clone()).await;
        if let Ok(outcome) = &result {
            span.record("removed", outcome.removed);
        }
        result
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        let span = debug_span!("event_store.removal_horizon", backend = self.backend);
        self.inner.removal_horizon().instrument(span).await
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        let span = debug_span!("event_store.removed_between", backend = self.backend, %after, %through);
        self.inner.removed_between(after, through, filter).instrument(span).await
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        let span = debug_span!("event_store.first_retained_version", backend = self.backend, stream = %stream_id);
        self.inner.first_retained_version(stream_id).instrument(span).await
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        let span = debug_span!("event_store.retention_runs", backend = self.backend);
        self.inner.retention_runs().instrument(span).await
    }
}
