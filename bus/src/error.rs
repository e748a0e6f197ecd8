//! [`BusError`]: what can go wrong between the event store and the bus.

use composable_rust_core::{BoxError, EventId};
use thiserror::Error;

/// An event bus operation failed. Every variant says what was being done; the source says why.
#[derive(Debug, Error)]
pub enum BusError {
    /// No NATS server answered at the address.
    #[error("could not connect to NATS at {url}\nstart one (`nats-server -js`) or point NATS_URL at a running server")]
    Connect {
        /// The address tried.
        url: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The JetStream stream could not be created or read (JetStream disabled, a conflicting stream).
    #[error("could not set up the JetStream stream {stream}\nis JetStream enabled (`nats-server -js`)?")]
    Setup {
        /// The stream's name.
        stream: String,
        /// The server's or client's error.
        #[source]
        source: BoxError,
    },
    /// An event was not acknowledged by the bus; the outbox publishes it again from its checkpoint.
    #[error("could not publish the event {event_id} to {subject}")]
    Publish {
        /// The subject it went to.
        subject: String,
        /// Its id (its `Nats-Msg-Id`).
        event_id: EventId,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A consumer (group) could not be created or read.
    #[error("could not read the bus as the consumer group {group}")]
    Consume {
        /// The group's name.
        group: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A message on the bus is not an event of composable-rust; it is terminated, never redelivered.
    #[error("the message {sequence} on the bus is not a composable-rust event: {reason}")]
    Malformed {
        /// Its sequence in the bus's stream.
        sequence: u64,
        /// What is missing or wrong.
        reason: String,
    },
    /// A delivery could not be acknowledged; the bus delivers it again after its ack wait.
    #[error("could not acknowledge the delivery of event {event_id}")]
    Ack {
        /// The event.
        event_id: EventId,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A name given to the bus cannot be a subject token or a consumer name.
    #[error("{what} {value:?} cannot be used: {reason}")]
    InvalidName {
        /// What the name is for (`subject prefix`, `consumer group`).
        what: &'static str,
        /// The name.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// Checks a subject prefix or a consumer group name: NATS forbids separators and wildcards in them.
pub(crate) fn check_name(what: &'static str, value: &str, dots_allowed: bool) -> Result<(), BusError> {
    let invalid = |reason| Err(BusError::InvalidName { what, value: value.to_owned(), reason });
    if value.is_empty() {
        return invalid("it is empty");
    }
    if value.chars().any(|c| c.is_whitespace() || c == '*' || c == '>') {
        return invalid("it holds a space, `*` or `>`");
    }
    if !dots_allowed && value.contains('.') {
        return invalid("it holds a `.`");
    }
    if value.split('.').any(str::is_empty) {
        return invalid("it has an empty token (`..`, or a `.` at an end)");
    }
    Ok(())
}
