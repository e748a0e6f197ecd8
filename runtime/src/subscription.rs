//! Subscriptions: a named handler reads the global log from its checkpoint (catch-up), then follows new
//! events as they commit (live), in global position order.
//!
//! How a run goes (see [`Subscription`]):
//! 1. Lease the handler name ([`SubscriptionStore::try_acquire_lease`]), so that two instances never interleave.
//!    A second instance waits for the lease or fails with [`SubscriptionError::AlreadyRunning`]
//!    ([`WhenLocked`]).
//! 2. Subscribe to [`SubscriptionStore::commit_notifications`] (before the first read, so that no commit between a
//!    read and the wait goes unnoticed), then load the checkpoint.
//! 3. Loop: read a page after the checkpoint ([`EventLog::read_all`]), hand it to the
//!    [`CheckpointedHandler`], which records the page's last position as the new checkpoint. An empty page
//!    means the subscription is live: it waits for a commit notification or the poll interval, whichever
//!    comes first, and reads again. Notifications only wake the loop; what it handles always comes from a
//!    read after the checkpoint, so a lost or coalesced notification costs latency, never an event.
//!
//! Failures: a handler error stops the subscription with [`SubscriptionError::HandlerFailed`] naming the
//! event (stream, version, position); the checkpoint stays before it. A backend error (a dropped
//! connection, a lost lease) ends the session: the subscription waits with exponential backoff, then starts
//! again from step 1 with the stored checkpoint. Any other store error (a schema problem, invalid input)
//! stops it.
//!
//! Delivery: [`Subscription::new`] takes an [`EventHandler`] and saves the checkpoint after each page
//! ([`AtLeastOnce`]): an event is handled again if the process dies between the handler's write and the
//! checkpoint. The database backends provide [`CheckpointedHandler`]s that write the read model and the
//! checkpoint in one transaction (exactly-once effects); pass those to [`Subscription::checkpointed`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::backend::HandlerLease;
use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, EventStore, EventStoreError, GlobalPosition, LogFilter, RecordedEvent,
    StreamId, Version, async_trait,
};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A read model that handles events one at a time; the subscription records its checkpoint after each
/// page (at-least-once delivery, see [`AtLeastOnce`]).
///
/// ```
/// use composable_rust_core::{BoxError, RecordedEvent, async_trait};
/// use composable_rust_runtime::EventHandler;
///
/// #[derive(Debug, Default)]
/// struct PlacedCount(u64);
///
/// #[async_trait]
/// impl EventHandler for PlacedCount {
///     async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
///         if event.event_type == "OrderPlaced.v1" {
///             self.0 += 1;
///         }
///         Ok(())
///     }
///
///     async fn reset(&mut self) -> Result<(), BoxError> {
///         self.0 = 0;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EventHandler: Send + 'static {
    /// Applies one event to the read model.
    ///
    /// # Errors
    /// Any error stops the subscription with [`SubscriptionError::HandlerFailed`] naming this event; the
    /// checkpoint stays before it, so a fixed handler starts again at this event.
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError>;

    /// Clears the read model before a rebuild from the start of the log. The default does nothing.
    ///
    /// # Errors
    /// Any error fails the reset with [`SubscriptionError::Reset`].
    async fn reset(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Makes an [`EventHandler`] of a closure (a read model without a reset).
///
/// ```
/// use composable_rust_runtime::handler_fn;
///
/// let mut seen = Vec::new();
/// let handler = handler_fn(move |event| {
///     seen.push(event.position);
///     Ok(())
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F>(handle: F) -> FnHandler<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), BoxError> + Send + 'static,
{
    FnHandler(handle)
}

/// An [`EventHandler`] made of a closure by [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

#[async_trait]
impl<F> EventHandler for FnHandler<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), BoxError> + Send + 'static,
{
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        (self.0)(event)
    }
}

/// Runs an [`EventHandler`] and saves the checkpoint in the event store after it: at-least-once delivery.
///
/// After a page the checkpoint is the page's last position; when the handler fails on an event, the
/// checkpoint is saved at the event before it, so nothing is skipped and nothing handled before the
/// failure is handled again by the next run. A crash between the handler's write and the checkpoint save
/// hands the page to the handler again: make the read model's writes idempotent, or use a backend's
/// transactional handler.
pub struct AtLeastOnce<H> {
    store: Arc<dyn EventStore>,
    handler: H,
}

impl<H> AtLeastOnce<H> {
    /// Wraps `handler`; checkpoints go to `store`.
    pub fn new(store: Arc<dyn EventStore>, handler: H) -> Self {
        Self { store, handler }
    }

    /// The wrapped handler (the read model).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Unwraps the handler.
    pub fn into_handler(self) -> H {
        self.handler
    }
}

impl<H> fmt::Debug for AtLeastOnce<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtLeastOnce").field("store", &self.store).field("handler", &std::any::type_name::<H>()).finish()
    }
}

#[async_trait]
impl<H: EventHandler> CheckpointedHandler for AtLeastOnce<H> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.store.load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        for (index, event) in events.iter().enumerate() {
            if let Err(source) = self.handler.handle(event).await {
                if let Some(handled) = index.checked_sub(1).and_then(|i| events.get(i)) {
                    self.store.save_checkpoint(handler, handled.position).await?;
                }
                return Err(ApplyError::Handler { index, source });
            }
        }
        if let Some(last) = events.last() {
            self.store.save_checkpoint(handler, last.position).await?;
        }
        Ok(())
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        // Checkpoint first: if clearing the read model then fails, the next run re-applies events to the
        // old read model (at-least-once, which idempotent handlers absorb) instead of silently skipping them.
        self.store.save_checkpoint(handler, GlobalPosition::START).await?;
        self.handler.reset().await.map_err(ApplyError::Reset)
    }
}

/// What a second instance of a running handler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenLocked {
    /// Retry the lease every [`SubscriptionConfig::lease_retry`] until the other instance stops (the
    /// default): a standby that takes over.
    #[default]
    Wait,
    /// Stop at once with [`SubscriptionError::AlreadyRunning`].
    Fail,
}

/// Exponential backoff between attempts after a backend error: `initial`, doubled each time up to `max`,
/// back to `initial` after a successful read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 10 s.
    fn default() -> Self {
        Self { initial: Duration::from_millis(100), max: Duration::from_secs(10) }
    }
}

/// How a [`Subscription`] reads and waits. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Which events the handler gets (default: all). Filtering happens in the store's query.
    pub filter: LogFilter,
    /// Events per read and per [`CheckpointedHandler::apply`] call, so also per checkpoint save and per
    /// transaction (default 500).
    pub page_size: usize,
    /// How long a live subscription waits for a commit notification before reading anyway (default
    /// 500 ms). Without notifications from the store this is the polling interval; with them it bounds
    /// the delay after a missed notification.
    pub poll_interval: Duration,
    /// What a second instance does while the handler's lease is held (default [`WhenLocked::Wait`]).
    pub when_locked: WhenLocked,
    /// How often a waiting instance retries the lease (default 1 s).
    pub lease_retry: Duration,
    /// How often a running instance confirms that it still holds the lease (default 5 s); it checks
    /// between pages, so a page that takes longer delays the check.
    pub lease_check_interval: Duration,
    /// Waits between attempts after a backend error (default [`Backoff::default`]).
    pub backoff: Backoff,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            filter: LogFilter::all(),
            page_size: 500,
            poll_interval: Duration::from_millis(500),
            when_locked: WhenLocked::Wait,
            lease_retry: Duration::from_secs(1),
            lease_check_interval: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// Why a subscription stopped or a reset failed.
#[derive(Debug, Error)]
pub enum SubscriptionError {
    /// The handler failed on an event. The checkpoint stands before this event.
    #[error(
        "handler {handler:?} failed on event {event_type} at stream {stream_id} version {version} (global position \
         {position}); its checkpoint stays before this event: fix the handler or the read model and start it again, \
         or reset it to rebuild"
    )]
    HandlerFailed {
        /// The handler's name.
        handler: String,
        /// The stream of the failing event.
        stream_id: StreamId,
        /// The failing event's version in its stream.
        version: Version,
        /// The failing event's global position.
        position: GlobalPosition,
        /// The failing event's type.
        event_type: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// Another instance holds the handler's lease and the subscription was configured not to wait.
    #[error(
        "handler {handler:?} is already running in another instance (its lease is held): stop that instance, or \
         configure WhenLocked::Wait to stand by"
    )]
    AlreadyRunning {
        /// The handler's name.
        handler: String,
    },
    /// The event store refused an operation in a way that retrying does not fix (schema, invalid input).
    #[error("subscription {handler:?} stopped: the event store refused an operation")]
    Store {
        /// The handler's name.
        handler: String,
        /// The store's error.
        #[source]
        source: EventStoreError,
    },
    /// The read model could not be cleared for a rebuild.
    #[error("handler {handler:?} could not clear its read model for a rebuild; its checkpoint may already be reset")]
    Reset {
        /// The handler's name.
        handler: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// The subscription's task panicked.
    #[error("the task of subscription {handler:?} panicked; see the panic message in the log")]
    Panicked {
        /// The handler's name.
        handler: String,
    },
}

/// Where a running subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawned, not yet reading.
    Starting,
    /// Another instance holds the lease; retrying ([`WhenLocked::Wait`]).
    WaitingForLease,
    /// Reading pages behind the end of the log.
    CatchingUp,
    /// At the end of the log, waiting for commits.
    Live,
    /// Waiting to retry after a backend error.
    Retrying,
    /// Stopped (asked to, or caught up in [`Subscription::run_to_end`]).
    Stopped,
    /// Stopped by an error; [`SubscriptionHandle::join`] returns it.
    Failed,
}

/// A snapshot of a subscription's progress, from [`SubscriptionHandle::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Where the subscription is.
    pub phase: Phase,
    /// The last position the handler recorded (`None`: nothing yet).
    pub checkpoint: Option<GlobalPosition>,
    /// Events handed to the handler and recorded by this run.
    pub handled: u64,
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Events handed to the handler and recorded by this run.
    pub handled: u64,
    /// The handler's checkpoint at the end (`None`: nothing handled ever).
    pub checkpoint: Option<GlobalPosition>,
}

/// A subscription stopped before the condition a caller waited for held; [`SubscriptionHandle::join`]
/// says why.
#[derive(Debug, Clone, Error)]
#[error(
    "subscription {handler:?} stopped ({phase:?}) before the awaited condition held; join its handle for the reason"
)]
pub struct SubscriptionStopped {
    /// The handler's name.
    pub handler: String,
    /// The phase it ended in.
    pub phase: Phase,
}

/// A named handler of the global log, configured and ready to run. See the module documentation.
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::{CodecId, EventStore, ExpectedVersion, LogFilter, Metadata, NewEvent, StreamId};
/// use composable_rust_runtime::{Subscription, handler_fn};
/// use composable_rust_testing::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
/// let placed = || NewEvent::new("OrderPlaced.v1", CodecId::Json, b"{}".to_vec(), Metadata::default());
/// store.append(&StreamId::new("order-1")?, ExpectedVersion::Any, vec![placed()]).await?;
///
/// let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
/// let handle = Subscription::new(Arc::clone(&store), "placed-orders", handler_fn(move |event| {
///     tx.send(event.stream_id.to_string())?;
///     Ok(())
/// }))
/// .filter(LogFilter::all().category("order"))
/// .spawn();
///
/// // Catch-up delivers what was there; live mode delivers what commits next.
/// assert_eq!(seen.recv().await.as_deref(), Some("order-1"));
/// store.append(&StreamId::new("order-2")?, ExpectedVersion::Any, vec![placed()]).await?;
/// assert_eq!(seen.recv().await.as_deref(), Some("order-2"));
/// let report = handle.stop().await?;
/// assert_eq!(report.handled, 2);
/// # Ok(()) }
/// ```
pub struct Subscription<H> {
    store: Arc<dyn EventStore>,
    name: String,
    handler: H,
    config: SubscriptionConfig,
    reset_first: bool,
    handled: u64,
    progress: watch::Sender<Progress>,
}

impl<H: EventHandler> Subscription<AtLeastOnce<H>> {
    /// A subscription named `name` (its checkpoint and lease key) that feeds `handler` and saves the
    /// checkpoint in `store` after each page: at-least-once delivery ([`AtLeastOnce`]).
    pub fn new(store: Arc<dyn EventStore>, name: impl Into<String>, handler: H) -> Self {
        let handler = AtLeastOnce::new(Arc::clone(&store), handler);
        Self::checkpointed(store, name, handler)
    }
}

impl<H: CheckpointedHandler + 'static> Subscription<H> {
    /// A subscription named `name` whose handler records its own checkpoint, e.g. in the transaction
    /// that writes its read model (a backend's transactional handler).
    pub fn checkpointed(store: Arc<dyn EventStore>, name: impl Into<String>, handler: H) -> Self {
        let progress = Progress { phase: Phase::Starting, checkpoint: None, handled: 0 };
        Self {
            store,
            name: name.into(),
            handler,
            config: SubscriptionConfig::default(),
            reset_first: false,
            handled: 0,
            progress: watch::Sender::new(progress),
        }
    }

    /// Replaces the whole configuration.
    #[must_use]
    pub fn config(mut self, config: SubscriptionConfig) -> Self {
        self.config = config;
        self
    }

    /// Hands the handler only the events that match `filter`.
    #[must_use]
    pub fn filter(mut self, filter: LogFilter) -> Self {
        self.config.filter = filter;
        self
    }

    /// Resets the handler (read model and checkpoint) once the lease is held, before the first read: the
    /// run rebuilds the read model from the start of the log.
    #[must_use]
    pub fn rebuild(mut self) -> Self {
        self.reset_first = true;
        self
    }

    /// The handler's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handler (for example to read an in-memory read model after [`Subscription::run_to_end`]).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Resets the handler now: takes the lease (as configured by [`SubscriptionConfig::when_locked`]),
    /// clears the checkpoint and the read model, and releases the lease.
    ///
    /// # Errors
    /// [`SubscriptionError::AlreadyRunning`] when another instance runs and the configuration says not to
    /// wait; [`SubscriptionError::Reset`] when the read model could not be cleared;
    /// [`SubscriptionError::Store`] when storage fails.
    pub async fn reset(&mut self) -> Result<(), SubscriptionError> {
        let cancel = CancellationToken::new();
        let lease = self.acquire_lease(&cancel).await.map_err(|f| self.error_of(f))?;
        let result = self.handler.reset(&self.name).await.map_err(|e| self.error_of(self.apply_failure(e, &[])));
        if let Some(lease) = lease {
            let _ = lease.release().await;
        }
        result?;
        self.handled = 0;
        self.update(|p| p.checkpoint = None);
        Ok(())
    }

    /// Runs in the current task until the handler has seen the end of the log, then returns: catch-up only,
    /// for a command-line tool that brings a read model up to date before showing it.
    ///
    /// Backend errors are retried with backoff as in live mode.
    ///
    /// # Errors
    /// As [`SubscriptionHandle::join`].
    pub async fn run_to_end(&mut self) -> Result<RunReport, SubscriptionError> {
        self.run(&CancellationToken::new(), Follow::UntilCaughtUp).await
    }

    /// Starts the subscription on a tokio task and returns its handle. Dropping the handle stops it after
    /// the page in hand.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn(mut self) -> SubscriptionHandle {
        let cancel = CancellationToken::new();
        let progress = self.progress.subscribe();
        let name = self.name.clone();
        let token = cancel.clone();
        let task = tokio::spawn(async move { self.run(&token, Follow::Live).await });
        SubscriptionHandle { handler: name, progress, cancel: cancel.clone(), _stop_on_drop: cancel.drop_guard(), task }
    }

    async fn run(&mut self, cancel: &CancellationToken, follow: Follow) -> Result<RunReport, SubscriptionError> {
        let mut delay = self.config.backoff.initial;
        tracing::info!(handler = %self.name, "subscription started");
        loop {
            let mut healthy = false;
            match self.session(cancel, follow, &mut healthy).await {
                Ok(()) => {
                    self.update(|p| p.phase = Phase::Stopped);
                    tracing::info!(handler = %self.name, handled = self.handled, "subscription stopped");
                    let checkpoint = self.progress.borrow().checkpoint;
                    return Ok(RunReport { handled: self.handled, checkpoint });
                }
                Err(Failure::Fatal(error)) => {
                    self.update(|p| p.phase = Phase::Failed);
                    tracing::error!(handler = %self.name, error = %error, source = ?std::error::Error::source(&error), "subscription failed");
                    return Err(error);
                }
                Err(Failure::Retry(error)) => {
                    if healthy {
                        delay = self.config.backoff.initial;
                    }
                    self.update(|p| p.phase = Phase::Retrying);
                    tracing::warn!(
                        handler = %self.name, error = %error, source = ?std::error::Error::source(&error), retry_in = ?delay,
                        "subscription lost its connection or lease; resuming from its checkpoint after a pause"
                    );
                    if sleep_or_cancel(delay, cancel).await.is_err() {
                        self.update(|p| p.phase = Phase::Stopped);
                        let checkpoint = self.progress.borrow().checkpoint;
                        return Ok(RunReport { handled: self.handled, checkpoint });
                    }
                    delay = delay.saturating_mul(2).min(self.config.backoff.max);
                }
            }
        }
    }

    /// One lease, one checkpoint load, pages until stopped or failed.
    async fn session(&mut self, cancel: &CancellationToken, follow: Follow, healthy: &mut bool) -> Result<(), Failure> {
        let Some(mut lease) = self.acquire_lease(cancel).await? else {
            return Ok(());
        };
        let result = self.pages(&mut lease, cancel, follow, healthy).await;
        // Released here rather than on drop, so that a short-lived process (a catch-up in a command-line
        // tool) frees the name before it exits instead of leaving a lease to expire.
        if let Err(error) = lease.release().await {
            tracing::debug!(handler = %self.name, %error, "could not release the lease; it will expire");
        }
        result
    }

    /// The pages of one session, under `lease`.
    async fn pages(
        &mut self,
        lease: &mut HandlerLease,
        cancel: &CancellationToken,
        follow: Follow,
        healthy: &mut bool,
    ) -> Result<(), Failure> {
        if self.reset_first {
            self.handler.reset(&self.name).await.map_err(|e| self.apply_failure(e, &[]))?;
            self.reset_first = false;
            tracing::info!(handler = %self.name, "handler reset; rebuilding from the start of the log");
        }
        // Subscribe before the first read: a commit after that read then always leaves a signal.
        let mut wakeups = self.store.commit_notifications();
        let mut checkpoint = self.handler.load_checkpoint(&self.name).await.map_err(|e| self.store_failure(e))?;
        self.update(|p| {
            p.checkpoint = checkpoint;
            p.phase = Phase::CatchingUp;
        });
        let mut confirmed_at = Instant::now();
        let page_size = self.config.page_size.max(1);
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if confirmed_at.elapsed() >= self.config.lease_check_interval {
                lease.confirm().await.map_err(Failure::Retry)?;
                confirmed_at = Instant::now();
            }
            let after = checkpoint.unwrap_or(GlobalPosition::START);
            let page =
                self.store.read_all(after, &self.config.filter, page_size).await.map_err(|e| self.store_failure(e))?;
            *healthy = true;
            let Some(last) = page.last().map(|event| event.position) else {
                if follow == Follow::UntilCaughtUp {
                    return Ok(());
                }
                self.update(|p| p.phase = Phase::Live);
                wait_for_commit(&mut wakeups, self.config.poll_interval, cancel, &self.name).await;
                continue;
            };
            self.handler.apply(&self.name, &page).await.map_err(|e| self.apply_failure(e, &page))?;
            checkpoint = Some(last);
            self.handled += page.len() as u64;
            let handled = self.handled;
            self.update(|p| {
                p.checkpoint = checkpoint;
                p.handled = handled;
                if page.len() == page_size {
                    p.phase = Phase::CatchingUp;
                }
            });
        }
    }

    /// Takes the lease; `Ok(None)` when cancelled while waiting for it.
    async fn acquire_lease(&mut self, cancel: &CancellationToken) -> Result<Option<HandlerLease>, Failure> {
        let mut announced = false;
        loop {
            match self.store.try_acquire_lease(&self.name).await {
                Ok(Some(lease)) => return Ok(Some(lease)),
                Ok(None) if self.config.when_locked == WhenLocked::Fail => {
                    return Err(Failure::Fatal(SubscriptionError::AlreadyRunning { handler: self.name.clone() }));
                }
                Ok(None) => {
                    if !announced {
                        announced = true;
                        self.update(|p| p.phase = Phase::WaitingForLease);
                        tracing::info!(handler = %self.name, "another instance holds the lease; standing by");
                    }
                    if sleep_or_cancel(self.config.lease_retry, cancel).await.is_err() {
                        return Ok(None);
                    }
                }
                Err(error) => return Err(self.store_failure(error)),
            }
        }
    }

    fn store_failure(&self, error: EventStoreError) -> Failure {
        match error {
            EventStoreError::Backend { .. } | EventStoreError::Unavailable { .. } => Failure::Retry(error),
            other => Failure::Fatal(SubscriptionError::Store { handler: self.name.clone(), source: other }),
        }
    }

    fn apply_failure(&self, error: ApplyError, page: &[RecordedEvent]) -> Failure {
        match error {
            ApplyError::Store(error) => self.store_failure(error),
            ApplyError::Reset(source) => {
                Failure::Fatal(SubscriptionError::Reset { handler: self.name.clone(), source })
            }
            ApplyError::Handler { index, source } => match page.get(index) {
                Some(event) => Failure::Fatal(SubscriptionError::HandlerFailed {
                    handler: self.name.clone(),
                    stream_id: event.stream_id.clone(),
                    version: event.version,
                    position: event.position,
                    event_type: event.event_type.to_string(),
                    source,
                }),
                None => Failure::Fatal(SubscriptionError::Store {
                    handler: self.name.clone(),
                    source: EventStoreError::backend(
                        format!("apply a page of {} events (the handler named index {index})", page.len()),
                        source,
                    ),
                }),
            },
        }
    }

    fn error_of(&self, failure: Failure) -> SubscriptionError {
        match failure {
            Failure::Fatal(error) => error,
            Failure::Retry(source) => SubscriptionError::Store { handler: self.name.clone(), source },
        }
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(change);
    }
}

impl<H> fmt::Debug for Subscription<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("handler", &std::any::type_name::<H>())
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    Live,
    UntilCaughtUp,
}

/// How a session ended when it did not end normally.
enum Failure {
    /// Start a new session after a pause: the store or the lease failed.
    Retry(EventStoreError),
    /// Stop the subscription.
    Fatal(SubscriptionError),
}

/// Waits for a commit notification, the poll interval or cancellation, whichever comes first.
async fn wait_for_commit(
    wakeups: &mut Option<BoxStream<'static, ()>>,
    poll_interval: Duration,
    cancel: &CancellationToken,
    handler: &str,
) {
    let poll = tokio::time::sleep(poll_interval);
    match wakeups {
        Some(signals) => {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = poll => {}
                signal = signals.next() => match signal {
                    // Coalesce a burst of commits into one read.
                    Some(()) => while let Some(Some(())) = signals.next().now_or_never() {},
                    None => {
                        tracing::debug!(handler = %handler, "commit notifications ended; polling");
                        *wakeups = None;
                    }
                },
            }
        }
        None => {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = poll => {}
            }
        }
    }
}

/// `Err(())` when cancelled before `duration` passed.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        () = cancel.cancelled() => Err(()),
        () = tokio::time::sleep(duration) => Ok(()),
    }
}

/// A running subscription: its progress, and the way to stop it or learn why it stopped.
///
/// Dropping the handle stops the subscription after the page in hand (without waiting for it).
pub struct SubscriptionHandle {
    handler: String,
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
    task: JoinHandle<Result<RunReport, SubscriptionError>>,
}

impl SubscriptionHandle {
    /// The handler's name.
    #[must_use]
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The subscription's progress now.
    #[must_use]
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the handler's checkpoint is at or after `position`.
    ///
    /// # Errors
    /// [`SubscriptionStopped`] when the subscription stops first.
    pub async fn wait_until(&self, position: GlobalPosition) -> Result<Progress, SubscriptionStopped> {
        self.wait_for(|p| p.checkpoint.is_some_and(|c| c >= position)).await
    }

    /// Waits until `condition` holds for the progress.
    ///
    /// # Errors
    /// [`SubscriptionStopped`] when the subscription stops first.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&Progress) -> bool,
    ) -> Result<Progress, SubscriptionStopped> {
        let mut progress = self.progress.clone();
        let result =
            progress.wait_for(|p| condition(p) || matches!(p.phase, Phase::Stopped | Phase::Failed)).await.map(|p| *p);
        match result {
            Ok(p) if condition(&p) => Ok(p),
            Ok(p) => Err(SubscriptionStopped { handler: self.handler.clone(), phase: p.phase }),
            Err(_) => Err(SubscriptionStopped { handler: self.handler.clone(), phase: self.progress().phase }),
        }
    }

    /// Whether the subscription's task has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the subscription to stop after the page in hand and waits for it.
    ///
    /// # Errors
    /// As [`SubscriptionHandle::join`], when it had failed already.
    pub async fn stop(self) -> Result<RunReport, SubscriptionError> {
        self.cancel.cancel();
        self.join().await
    }

    /// Waits for the subscription to end on its own: it only does so with an error.
    ///
    /// # Errors
    /// [`SubscriptionError::HandlerFailed`] naming the failing event, [`SubscriptionError::AlreadyRunning`],
    /// [`SubscriptionError::Store`] for a store error that retrying does not fix, or
    /// [`SubscriptionError::Panicked`].
    pub async fn join(self) -> Result<RunReport, SubscriptionError> {
        let Self { handler, task, _stop_on_drop: guard, .. } = self;
        let result = task.await.unwrap_or_else(|_| Err(SubscriptionError::Panicked { handler }));
        drop(guard);
        result
    }

    /// Stops the task at its next await point, even in the middle of a page, like a crash would.
    /// The handler sees no more events; a transaction in flight rolls back.
    pub fn abort(self) {
        self.task.abort();
    }
}

impl fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionHandle")
            .field("handler", &self.handler)
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}
