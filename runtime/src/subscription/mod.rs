//! Subscriptions: a named handler reads the global log from its checkpoint (catch-up), then follows new
//! events as they commit (live), in global position order.
//!
//! How a run goes (see [`Subscription`]):
//! 1. Lease the handler name ([`SubscriptionStore::try_acquire_lease`](composable_rust_core::backend::SubscriptionStore::try_acquire_lease)), so that two instances never interleave.
//!    A second instance waits for the lease or fails with [`SubscriptionError::AlreadyRunning`]
//!    ([`WhenLocked`]). The lease lives [`SubscriptionConfig::lease_ttl`] (three check intervals) and is
//!    renewed every [`SubscriptionConfig::lease_check_interval`] for as long as the session runs, while a
//!    page is being handled too; a renewal that finds the lease lost stops the session at once, in the
//!    middle of a page if need be.
//! 2. Subscribe to [`SubscriptionStore::commit_notifications`](composable_rust_core::backend::SubscriptionStore::commit_notifications) (before the first read, so that no commit between a
//!    read and the wait goes unnoticed), then load the checkpoint.
//! 3. Loop: read a page after the checkpoint ([`EventLog::read_all`](composable_rust_core::backend::EventLog::read_all)), hand it to the
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
//! checkpoint. The save is fenced ([`SubscriptionStore::save_checkpoint`](composable_rust_core::backend::SubscriptionStore::save_checkpoint) only moves forward), so an instance
//! that lost its lease mid-page never moves the checkpoint back; only a reset does. The database backends provide [`CheckpointedHandler`]s that write the read model and the
//! checkpoint in one transaction (exactly-once effects); pass those to [`Subscription::checkpointed`].
//!
//! Files: `handler.rs` (what a subscription feeds), `config.rs`, `run.rs` (the loop), `lease.rs` (keeping
//! the lease while the loop runs), `progress.rs`, `handle.rs` (a spawned subscription), `error.rs`.

mod config;
mod error;
mod handle;
mod handler;
mod lease;
mod progress;
mod run;

use std::fmt;
use std::sync::Arc;

use composable_rust_core::{CheckpointedHandler, EventStore, LogFilter};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use config::{ArchivedEvents, Backoff, SubscriptionConfig, WhenLocked};
pub use error::{SubscriptionError, SubscriptionStopped};
pub use handle::SubscriptionHandle;
pub use handler::{AtLeastOnce, EventHandler, FnHandler, handler_fn};
use lease::while_renewing;
pub use progress::{Phase, Progress, RunReport};
use run::Follow;

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
    /// Events retention removed after the checkpoint that this subscription skipped ([`ArchivedEvents::Skip`]).
    skipped_archived: u64,
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
        let progress = Progress { phase: Phase::Starting, checkpoint: None, handled: 0, skipped_archived: 0 };
        Self {
            store,
            name: name.into(),
            handler,
            config: SubscriptionConfig::default(),
            reset_first: false,
            handled: 0,
            skipped_archived: 0,
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
        let every = self.config.lease_renewal_interval();
        let result = match lease {
            Some(mut lease) => {
                let reset = while_renewing(&mut lease, every, self.handler.reset(&self.name)).await;
                let _ = lease.release().await;
                reset.map_err(|lost| self.error_of(run::Failure::Retry(lost)))?
            }
            None => self.handler.reset(&self.name).await,
        };
        result.map_err(|e| self.error_of(self.apply_failure(e, &[])))?;
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
        SubscriptionHandle::new(name, progress, cancel, task)
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
