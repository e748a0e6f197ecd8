//! [`Aggregate`]: a consistency boundary whose state is a pure fold over its events.
//!
//! An aggregate has two pure functions. [`Aggregate::decide`] checks a command against the current
//! state and returns the events it causes (or a domain error); [`Aggregate::apply`] folds one event into
//! the state. Nothing here touches storage: the runtime's `Repository` loads the state (snapshot plus
//! replay), calls `decide`, appends the events with optimistic concurrency and takes snapshots.

use std::fmt;

use crate::error::InvalidInput;
use crate::event::Event;
use crate::stream::StreamId;

/// An event-sourced aggregate: its state, the events that change it and the commands it accepts.
///
/// The implementing type *is* the state; [`Default`] is the state of an aggregate with no events.
///
/// Rules that keep replay correct:
/// - [`apply`](Aggregate::apply) is deterministic and infallible: it reads nothing but the state and
///   the event (no clock, no random numbers, no I/O). Validation belongs in `decide`; an event is a
///   fact that already happened.
/// - [`decide`](Aggregate::decide) does not mutate: it returns the events, and the caller applies them.
///   Returning no events is a valid answer (the command changes nothing) and appends nothing.
/// - [`SNAPSHOT_SCHEMA_VERSION`](Aggregate::SNAPSHOT_SCHEMA_VERSION) goes up whenever the state's
///   serialized shape changes, so that older snapshots are ignored instead of misread.
///
/// ```
/// use composable_rust_core::{Aggregate, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum AccountEvent {
///     Deposited { amount: u64 },
///     Withdrawn { amount: u64 },
/// }
///
/// impl Event for AccountEvent {
///     fn event_type(&self) -> &'static str {
///         match self {
///             Self::Deposited { .. } => "Deposited.v1",
///             Self::Withdrawn { .. } => "Withdrawn.v1",
///         }
///     }
/// }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum AccountCommand {
///     Deposit(u64),
///     Withdraw(u64),
/// }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("insufficient funds: balance {balance}, requested {requested}")]
/// struct InsufficientFunds {
///     balance: u64,
///     requested: u64,
/// }
///
/// #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
/// struct Account {
///     balance: u64,
/// }
///
/// impl Aggregate for Account {
///     const CATEGORY: &'static str = "account";
///     const EVENT_TYPES: &'static [&'static str] = &["Deposited.v1", "Withdrawn.v1"];
///     const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
///     type Event = AccountEvent;
///     type Command = AccountCommand;
///     type Error = InsufficientFunds;
///
///     fn apply(&mut self, event: &AccountEvent) {
///         match event {
///             AccountEvent::Deposited { amount } => self.balance += amount,
///             AccountEvent::Withdrawn { amount } => self.balance -= amount,
///         }
///     }
///
///     fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, InsufficientFunds> {
///         match *command {
///             AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount }]),
///             AccountCommand::Withdraw(amount) if amount > self.balance => {
///                 Err(InsufficientFunds { balance: self.balance, requested: amount })
///             }
///             AccountCommand::Withdraw(amount) => Ok(vec![AccountEvent::Withdrawn { amount }]),
///         }
///     }
/// }
///
/// // Given / when / then, without any store:
/// let mut account = Account::from_events(&[AccountEvent::Deposited { amount: 10 }]);
/// assert_eq!(account.handle(&AccountCommand::Withdraw(4)), Ok(vec![AccountEvent::Withdrawn { amount: 4 }]));
/// assert_eq!(account.balance, 6);
/// assert!(account.handle(&AccountCommand::Withdraw(7)).is_err());
/// assert_eq!(account.balance, 6, "a rejected command changes nothing");
/// assert_eq!(Account::stream_id(42)?.as_str(), "account-42");
/// # Ok::<(), composable_rust_core::InvalidInput>(())
/// ```
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The stream category: the aggregate with id `42` lives in stream `{CATEGORY}-42`.
    ///
    /// Must be non-empty and must not contain `-` (see [`StreamId::for_entity`]).
    const CATEGORY: &'static str;

    /// Every event type name (with its schema version) that [`Aggregate::Event`] decodes today, e.g.
    /// `["OrderPlaced.v2", "OrderCancelled.v1"]`.
    ///
    /// Loading uses it to tell an unknown event type (a clear error naming the stream, version and type)
    /// from a payload that does not decode. Older type names handled by an upcaster need not be listed.
    const EVENT_TYPES: &'static [&'static str];

    /// The schema version of the state as stored in snapshots. Raise it whenever the state's serialized
    /// shape changes: snapshots with another schema version are ignored and the state is rebuilt.
    const SNAPSHOT_SCHEMA_VERSION: u32;

    /// The events of this aggregate (usually one enum).
    type Event: Event;

    /// The commands this aggregate accepts.
    type Command: Send + Sync + 'static;

    /// Why a command is rejected (insufficient funds, order already shipped, ...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds one event into the state. Pure, deterministic and infallible.
    fn apply(&mut self, event: &Self::Event);

    /// Checks `command` against the current state and returns the events it causes.
    ///
    /// Called again with the reloaded state when an append hits a concurrency conflict, which is why it
    /// takes the command by reference.
    ///
    /// # Errors
    /// [`Aggregate::Error`] when the command is not allowed in the current state; nothing is appended.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// The stream of the aggregate with this id: `{CATEGORY}-{id}`.
    ///
    /// # Errors
    /// [`InvalidInput::StreamId`] when the category or the resulting id is not a valid stream id.
    fn stream_id(id: impl fmt::Display) -> Result<StreamId, InvalidInput> {
        StreamId::for_entity(Self::CATEGORY, id)
    }

    /// The state after applying `events` to the empty aggregate, in order.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Decides `command` and applies the resulting events to this state; returns the events.
    ///
    /// The in-memory version of what the repository does, for unit tests of an aggregate.
    ///
    /// # Errors
    /// [`Aggregate::Error`] from [`Aggregate::decide`]; the state is unchanged then.
    fn handle(&mut self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error> {
        let events = self.decide(command)?;
        for event in &events {
            self.apply(event);
        }
        Ok(events)
    }
}
