//! The reducer wrapper that records, for every action a [`TestStore`](super::TestStore) reduces, the
//! state after it, and whether the test sent the action or an effect fed it back.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use composable_rust_core::{Effect, EffectId, Reducer};
use tokio::sync::Notify;

/// An action as the recorder sees it: sent by the test, fed back by an effect, or the test store's own
/// request to cancel every effect in flight.
#[derive(Debug)]
pub(super) enum Tagged<A> {
    /// Sent by the test.
    Sent(A),
    /// Fed back by an effect.
    Received(A),
    /// Cancel every effect in flight (`TestStore::skip_in_flight_effects`); the reducer under test never
    /// sees it.
    CancelInFlight,
}

/// The scope every effect of the reducer under test runs in, so that the test store can cancel them all.
/// Nested scopes are children of this one, so the reducer's own ids keep working.
fn in_flight() -> EffectId {
    EffectId::new("composable_rust_testing::TestStore::in_flight")
}

/// Wraps the reducer under test and records the state after every action it reduces.
pub(super) struct Recorder<R: Reducer> {
    pub(super) inner: R,
    pub(super) log: Arc<Log<R::Action, R::State>>,
}

impl<R> Reducer for Recorder<R>
where
    R: Reducer,
    R::State: Clone,
    R::Action: Clone + Send + 'static,
{
    type State = R::State;
    type Action = Tagged<R::Action>;
    type Environment = R::Environment;

    fn reduce(&self, state: &mut R::State, tagged: Self::Action, env: &R::Environment) -> Effect<Self::Action> {
        let effect = match tagged {
            Tagged::Received(action) => {
                let effect = self.inner.reduce(state, action.clone(), env);
                self.log.record_received(action, state.clone());
                effect
            }
            Tagged::Sent(action) => {
                let effect = self.inner.reduce(state, action, env);
                self.log.record_sent(state.clone());
                effect
            }
            Tagged::CancelInFlight => return Effect::cancel(in_flight()),
        };
        effect.map(Tagged::Received).cancellable(in_flight())
    }
}

/// What the recorder saw and the test has not asserted yet.
pub(super) struct Log<A, S> {
    steps: Mutex<Steps<A, S>>,
    /// Woken whenever an action is received.
    pub(super) arrived: Notify,
    /// Every reduction so far, to tell when effects stop making progress.
    pub(super) reductions: AtomicU64,
}

struct Steps<A, S> {
    sent: Option<S>,
    received: VecDeque<(A, S)>,
}

impl<A, S> Default for Log<A, S> {
    fn default() -> Self {
        Self {
            steps: Mutex::new(Steps { sent: None, received: VecDeque::new() }),
            arrived: Notify::new(),
            reductions: AtomicU64::new(0),
        }
    }
}

impl<A, S> Log<A, S> {
    fn lock(&self) -> MutexGuard<'_, Steps<A, S>> {
        self.steps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn record_sent(&self, state: S) {
        self.lock().sent = Some(state);
        self.reductions.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn record_received(&self, action: A, state: S) {
        self.lock().received.push_back((action, state));
        self.reductions.fetch_add(1, Ordering::AcqRel);
        self.arrived.notify_one();
    }

    pub(super) fn take_sent(&self) -> Option<S> {
        self.lock().sent.take()
    }

    pub(super) fn pop_received(&self) -> Option<(A, S)> {
        self.lock().received.pop_front()
    }

    pub(super) fn take_received(&self) -> Vec<(A, S)> {
        self.lock().received.drain(..).collect()
    }
}

impl<A: Clone + Debug, S> Log<A, S> {
    pub(super) fn peek_received(&self) -> Vec<A> {
        self.lock().received.iter().map(|(a, _)| a.clone()).collect()
    }

    pub(super) fn peek_received_debug(&self) -> Vec<String> {
        self.lock().received.iter().map(|(a, _)| format!("{a:?}")).collect()
    }
}
