//! The wiring: orders driven through a runtime [`Store`](composable_rust_runtime::Store), the way a
//! Composable Architecture application is.
//!
//! [`OrderApp`] is a reducer. Its actions are a command for an order ([`AppAction::Execute`]) and the
//! outcome fed back when the command has run ([`AppAction::Executed`]). For a command it does no I/O: it
//! returns an [`Effect::EventStore`] built by [`Repository::execute_operation`], and the store's runtime
//! runs it against the event store it was built with: load the order (latest snapshot plus the events
//! after it), [`Aggregate::decide`](composable_rust_core::Aggregate::decide), append the events with
//! optimistic concurrency (retrying on a conflict), maybe take a snapshot. The result comes back as an
//! [`AppAction::Executed`], which the reducer records in [`AppState`].

use std::collections::BTreeMap;
use std::error::Error as StdError;

use composable_rust_core::{Effect, Metadata, Reducer, Version};
use composable_rust_runtime::{Executed, Repository, RepositoryError};
use uuid::Uuid;

use crate::domain::{Order, OrderCommand, OrderEvent, OrderId, Rejection};

/// The name stored as the actor of every event this program writes.
pub const ACTOR: &str = "order-processing";

/// What [`OrderApp`] handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppAction {
    /// Run `command` on `order`; the events it causes carry `correlation_id` in their metadata.
    Execute {
        /// The order the command is for.
        order: OrderId,
        /// What to do.
        command: OrderCommand,
        /// Groups the events of one user request; `history` shows it.
        correlation_id: Uuid,
    },
    /// The outcome of an [`AppAction::Execute`], fed back by the event store effect.
    Executed {
        /// The order the command was for.
        order: OrderId,
        /// What happened.
        outcome: Outcome,
    },
}

/// What became of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The order accepted the command and its events were appended.
    Accepted {
        /// The order after the new events.
        order: Order,
        /// The stream's version after the append.
        version: Version,
        /// The events appended, in order.
        events: Vec<OrderEvent>,
        /// The version a snapshot was started for, when the snapshot policy asked for one.
        snapshot: Option<Version>,
    },
    /// The order refused the command; nothing was written.
    Rejected(Rejection),
    /// The event store failed, or other writers kept winning; nothing was written. The message names the
    /// cause and what to do.
    Failed(String),
}

impl Outcome {
    /// Turns the repository's result into an outcome a reducer can store and a test can compare.
    #[must_use]
    pub fn from_result(result: Result<Executed<Order>, RepositoryError<Rejection>>) -> Self {
        match result {
            Ok(executed) => Self::Accepted {
                order: executed.state,
                version: executed.version,
                events: executed.events,
                snapshot: executed.snapshot_started,
            },
            Err(RepositoryError::Domain(rejection)) => Self::Rejected(rejection),
            Err(error) => Self::Failed(error_chain(&error)),
        }
    }
}

/// An error and its sources, joined with `: `, so that no cause is lost when it is printed.
#[must_use]
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their source's message; print it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An order as this process last saw it, with the stream version that state reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownOrder {
    /// The order's state.
    pub order: Order,
    /// The version of its stream (its number of events).
    pub version: Version,
}

/// The state of [`OrderApp`]: what this process has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppState {
    /// Commands sent whose outcome has not come back yet.
    pub in_flight: usize,
    /// Every order a command of this process changed, as the repository returned it.
    pub orders: BTreeMap<OrderId, KnownOrder>,
    /// Every outcome, in the order they came back.
    pub outcomes: Vec<(OrderId, Outcome)>,
}

/// What [`OrderApp`] needs from the outside world: the repository that runs commands.
#[derive(Debug, Clone)]
pub struct AppEnvironment {
    /// Loads, changes and snapshots orders. Its effects run against the `Store`'s event store.
    pub repository: Repository<Order>,
}

/// The reducer of the order-processing application. Pure: all I/O is in the effects it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderApp;

impl Reducer for OrderApp {
    type State = AppState;
    type Action = AppAction;
    type Environment = AppEnvironment;

    fn reduce(&self, state: &mut AppState, action: AppAction, env: &AppEnvironment) -> Effect<AppAction> {
        match action {
            AppAction::Execute { order, command, correlation_id } => {
                state.in_flight += 1;
                let stream = order.stream_id().clone();
                let metadata = Metadata::correlated(correlation_id).with_actor(ACTOR);
                Effect::event_store(env.repository.execute_operation(stream, command, metadata, move |result| {
                    AppAction::Executed { order, outcome: Outcome::from_result(result) }
                }))
            }
            AppAction::Executed { order, outcome } => {
                state.in_flight = state.in_flight.saturating_sub(1);
                if let Outcome::Accepted { order: accepted, version, .. } = &outcome {
                    state.orders.insert(order.clone(), KnownOrder { order: accepted.clone(), version: *version });
                }
                state.outcomes.push((order, outcome));
                Effect::None
            }
        }
    }
}
