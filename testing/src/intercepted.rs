//! [`Intercepted`]: an event store that forwards every call to another one, except the calls an
//! [`Intercept`] takes over. For fault-injection tests: conflicts on demand, failing reads, lost leases.

use std::fmt::Debug;
use std::ops::Deref;
use std::sync::Arc;

use composable_rust_core::backend::{
    EventLog, EventRetention, HandlerLease, SnapshotStore, StoreLifecycle, SubscriptionStore,
};
use composable_rust_core::{
    AppendResult, EventId, EventStore, EventStoreError, EventStream, ExpectedVersion, GlobalPosition, HealthReport,
    LogCursor, LogFilter, NewEvent, RecordedEvent, RemovalBatch, RemovalOutcome, RetentionRun, Snapshot, StoreStats,
    StreamId, StreamInfo, StreamRange, Version, async_trait,
};
use futures::stream::BoxStream;

/// The calls a test may take over; each default forwards to `inner` unchanged. Add a hook here when a
/// test needs to intercept another call, rather than writing another forwarding store.
#[async_trait]
pub trait Intercept: Send + Sync + Debug + 'static {
    /// Called for every [`EventLog::append`].
    ///
    /// # Errors
    /// Whatever the test wants the caller to see.
    async fn append(
        &self,
        inner: &dyn EventStore,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        inner.append(stream_id, expected, events).await
    }

    /// Called for every read of the global log oldest first ([`EventLog::read_all`], and
    /// [`EventLog::read_log`] with [`LogCursor::After`]): what subscriptions read. Newest-first reads go to
    /// `inner` unchanged.
    ///
    /// # Errors
    /// Whatever the test wants the caller to see.
    async fn read_all(
        &self,
        inner: &dyn EventStore,
        after: GlobalPosition,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        inner.read_all(after, filter, limit).await
    }

    /// Called for every [`SubscriptionStore::try_acquire_lease`].
    ///
    /// # Errors
    /// Whatever the test wants the caller to see.
    async fn try_acquire_lease(
        &self,
        inner: &dyn EventStore,
        handler: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        inner.try_acquire_lease(handler, ttl).await
    }
}

/// `inner` with some calls taken over by `intercept`; derefs to the intercept, so a test can reach the
/// switches it holds (`store.failures.store(3, ..)`).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use composable_rust_core::backend::EventLog;
/// use composable_rust_core::{EventStore, EventStoreError, GlobalPosition, LogFilter, RecordedEvent, async_trait};
/// use composable_rust_testing::{InMemoryEventStore, Intercept, Intercepted};
///
/// #[derive(Debug, Default)]
/// struct Offline(AtomicBool);
///
/// #[async_trait]
/// impl Intercept for Offline {
///     async fn read_all(
///         &self,
///         inner: &dyn EventStore,
///         after: GlobalPosition,
///         filter: &LogFilter,
///         limit: usize,
///     ) -> Result<Vec<RecordedEvent>, EventStoreError> {
///         if self.0.load(Ordering::SeqCst) {
///             return Err(EventStoreError::backend("read the global log", "connection reset"));
///         }
///         inner.read_all(after, filter, limit).await
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let store = Intercepted::new(Arc::new(InMemoryEventStore::new()), Offline::default());
/// store.0.store(true, Ordering::SeqCst);
/// assert!(store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.is_err());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Intercepted<I> {
    inner: Arc<dyn EventStore>,
    intercept: I,
}

impl<I: Intercept> Intercepted<I> {
    /// Forwards to `inner`, except what `intercept` takes over.
    pub fn new(inner: Arc<dyn EventStore>, intercept: I) -> Self {
        Self { inner, intercept }
    }

    /// The store calls are forwarded to.
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }
}

impl<I> Deref for Intercepted<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.intercept
    }
}

#[async_trait]
impl<I: Intercept> EventLog for Intercepted<I> {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        self.intercept.append(&*self.inner, stream_id, expected, events).await
    }

    async fn append_atomic(
        &self,
        append: composable_rust_core::AtomicAppend,
    ) -> Result<Vec<AppendResult>, EventStoreError> {
        self.inner.append_atomic(append).await
    }

    async fn read_query(
        &self,
        query: &composable_rust_core::EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<composable_rust_core::QueryPage, EventStoreError> {
        self.inner.read_query(query, after, limit).await
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        self.inner.read_stream(stream_id, range)
    }

    async fn visit_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
        visit: &mut (dyn for<'e> FnMut(&'e RecordedEvent) -> std::ops::ControlFlow<()> + Send),
    ) -> Result<(), EventStoreError> {
        self.inner.visit_stream(stream_id, range, visit).await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        self.inner.stream_version(stream_id).await
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        self.inner.load_event(id).await
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        match cursor {
            LogCursor::After(after) => self.intercept.read_all(&*self.inner, after, filter, limit).await,
            LogCursor::Before(_) | LogCursor::Newest => self.inner.read_log(cursor, filter, limit).await,
        }
    }

    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError> {
        self.inner.list_streams(prefix, after, limit).await
    }

    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        self.inner.import(events).await
    }
}

#[async_trait]
impl<I: Intercept> SnapshotStore for Intercepted<I> {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.inner.save_snapshot(snapshot).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<(), EventStoreError> {
        self.inner.save_snapshots(snapshots).await
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        self.inner.load_snapshot(stream_id).await
    }

    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        self.inner.load_snapshots(streams).await
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        self.inner.delete_snapshot(stream_id).await
    }
}

#[async_trait]
impl<I: Intercept> SubscriptionStore for Intercepted<I> {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.inner.load_checkpoint(handler).await
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        self.inner.save_checkpoint(handler, position).await
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        self.inner.delete_checkpoint(handler).await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        self.inner.list_checkpoints().await
    }

    async fn try_acquire_lease(
        &self,
        handler: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        self.intercept.try_acquire_lease(&*self.inner, handler, ttl).await
    }

    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        self.inner.commit_notifications()
    }
}

#[async_trait]
impl<I: Intercept> StoreLifecycle for Intercepted<I> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        self.inner.health_check().await
    }

    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        self.inner.stats().await
    }

    async fn close(&self) -> Result<(), EventStoreError> {
        self.inner.close().await
    }
}

#[async_trait]
impl<I: Intercept> EventRetention for Intercepted<I> {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        self.inner.remove_events(batch).await
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.inner.removal_horizon().await
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        self.inner.removed_between(after, through, filter).await
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        self.inner.first_retained_version(stream_id).await
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        self.inner.retention_runs().await
    }
}
