//! [`TestStoreBuilder`]: the event store, clock, exhaustivity and wait limit of a [`TestStore`], and
//! the wiring of the recorder, the held requests and the runtime [`Store`] it drives.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{EventStore, Reducer};
use composable_rust_runtime::Store;

use super::recorder::{Log, Recorder};
use super::{Exhaustivity, TestStore};
use crate::InMemoryEventStore;
use crate::held_requests::HeldRequests;
use crate::test_clock::TestClock;

/// Builds a [`TestStore`] with a specific event store, clock, exhaustivity or wait limit.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::{Effect, reducer_fn};
/// use composable_rust_testing::{Exhaustivity, InMemoryEventStore, TestClock, TestStore};
///
/// let events = Arc::new(InMemoryEventStore::new());
/// let mut store = TestStore::builder(reducer_fn(|n: &mut u8, (): (), _: &()| { *n += 1; Effect::<()>::None }), 0, ())
///     .event_store(events.clone())
///     .clock(TestClock::new())
///     .exhaustivity(Exhaustivity::On)
///     .timeout(Duration::from_secs(2))
///     .build();
/// store.send((), |n| *n = 1);
/// store.finish();
/// ```
pub struct TestStoreBuilder<R: Reducer> {
    pub(super) reducer: R,
    pub(super) state: R::State,
    pub(super) environment: R::Environment,
    pub(super) event_store: Option<Arc<dyn EventStore>>,
    pub(super) clock: Option<TestClock>,
    pub(super) exhaustivity: Exhaustivity,
    pub(super) timeout: Duration,
}

impl<R> TestStoreBuilder<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// The event store that [`Effect::EventStore`] operations run against (default: an empty
    /// [`InMemoryEventStore`]).
    ///
    /// [`Effect::EventStore`]: composable_rust_core::Effect::EventStore
    #[must_use]
    pub fn event_store(mut self, event_store: Arc<dyn EventStore>) -> Self {
        self.event_store = Some(event_store);
        self
    }

    /// The clock that drives delays (default: [`TestClock::new`]).
    #[must_use]
    pub fn clock(mut self, clock: TestClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How strict the assertions are (default: [`Exhaustivity::On`]).
    #[must_use]
    pub fn exhaustivity(mut self, exhaustivity: Exhaustivity) -> Self {
        self.exhaustivity = exhaustivity;
        self
    }

    /// How long `receive` and `finish` wait in real time for effects (default: one second).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the test store.
    ///
    /// # Panics
    /// When called inside a tokio runtime (e.g. from `#[tokio::test]`), or when the test store's own
    /// runtime cannot be started.
    #[track_caller]
    pub fn build(self) -> TestStore<R> {
        if tokio::runtime::Handle::try_current().is_ok() {
            panic!(
                "a TestStore drives its own tokio runtime and cannot be created inside another one: write the \
                 test as a plain #[test] fn instead of #[tokio::test], and run async setup with \
                 `TestStore::block_on`"
            );
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => panic!("could not start the TestStore's tokio runtime: {error}"),
        };
        let clock = self.clock.unwrap_or_default();
        let event_store = self.event_store.unwrap_or_else(|| Arc::new(InMemoryEventStore::new()));
        let log = Arc::new(Log::default());
        let recorder = Recorder { inner: self.reducer, log: Arc::clone(&log) };
        let requests = Arc::new(HeldRequests::new(Arc::clone(&event_store), self.exhaustivity == Exhaustivity::On));
        let store = {
            let _runtime = runtime.enter();
            Store::builder(recorder, self.state.clone(), self.environment)
                .clock(Arc::new(clock.clone()))
                .event_store(Arc::clone(&event_store))
                .request_handler(Arc::clone(&requests) as Arc<dyn composable_rust_core::backend::RequestHandler>)
                .build()
        };
        TestStore {
            store,
            log,
            state: self.state,
            clock,
            event_store,
            requests,
            exhaustivity: self.exhaustivity,
            timeout: self.timeout,
            done: false,
            created_at: std::panic::Location::caller(),
            last_step: None,
            runtime,
        }
    }
}

impl<R: Reducer> Debug for TestStoreBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStoreBuilder")
            .field("event_store", &self.event_store)
            .field("clock", &self.clock)
            .field("exhaustivity", &self.exhaustivity)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
