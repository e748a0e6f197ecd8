//! Schema evolution while loading: [`Upcasters`] turn old stored events into today's event type, and
//! [`EventDecoder`] decodes a [`RecordedEvent`] through them. Stored events are never rewritten.
//!
//! # Why typed upcasters
//!
//! An upcaster is a plain Rust function from the old shape to the new one (`fn(OrderPlacedV1) ->
//! OrderEvent`), registered with the stored type names it maps between. The old payload is decoded
//! with the codec that wrote it, so an upcaster works the same for bincode and JSON events and never
//! sees bytes. Chains are allowed: `OrderPlaced.v1 -> OrderPlaced.v2 -> OrderPlaced.v3`, where each
//! step's output is the input of the step registered for its target type, and the last step returns
//! the current event type. A byte-level upcaster (type, codec, payload in, payload out) would need one
//! implementation per codec and a re-encode per step; the typed form has neither cost.
//!
//! # Unknown event types
//!
//! A stored type that is neither current (listed as known) nor handled by an upcaster is an
//! [`EventDecodeError::UnknownEventType`] naming the stream, version and type. Read models that only
//! care about some events can opt in to skipping them with [`EventDecoder::skip_unknown_types`];
//! aggregates never skip, because a skipped event would silently change the state.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::aggregate::Aggregate;
use crate::error::CodecError;
use crate::event::{Event, RecordedEvent};
use crate::stream::{StreamId, Version};

type AnyBox = Box<dyn Any + Send>;
type Convert = Box<dyn Fn(AnyBox) -> Result<AnyBox, AnyBox> + Send + Sync>;

/// One registered step: decode (or receive) an `Old` value and turn it into the next shape.
struct Step {
    to: Box<str>,
    input_type: &'static str,
    decode: fn(&RecordedEvent) -> Result<AnyBox, CodecError>,
    convert: Convert,
}

fn decode_boxed<T: DeserializeOwned + Send + 'static>(recorded: &RecordedEvent) -> Result<AnyBox, CodecError> {
    Ok(Box::new(recorded.decode::<T>()?))
}

/// Upcasters for events decoded as `E`, keyed by the stored event type they start from.
///
/// ```
/// use composable_rust_core::{Event, Upcasters};
/// use serde::{Deserialize, Serialize};
///
/// // Today's events: OrderPlaced gained a currency in schema version 2.
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum OrderEvent {
///     Placed { customer: String, currency: String },
/// }
/// impl Event for OrderEvent {
///     fn event_type(&self) -> &'static str {
///         "OrderPlaced.v2"
///     }
/// }
///
/// // The shape events of type OrderPlaced.v1 were written with (same variant order as then).
/// #[derive(Deserialize)]
/// enum OrderEventV1 {
///     Placed { customer: String },
/// }
///
/// let upcasters = Upcasters::<OrderEvent>::new().register(
///     "OrderPlaced.v1",
///     "OrderPlaced.v2",
///     |OrderEventV1::Placed { customer }: OrderEventV1| OrderEvent::Placed { customer, currency: "EUR".into() },
/// );
/// assert!(upcasters.handles("OrderPlaced.v1"));
/// ```
pub struct Upcasters<E> {
    steps: HashMap<Box<str>, Step>,
    _target: PhantomData<fn() -> E>,
}

impl<E: Event> Upcasters<E> {
    /// No upcasters: every stored event must already be of a current type.
    #[must_use]
    pub fn new() -> Self {
        Self { steps: HashMap::new(), _target: PhantomData }
    }

    /// Registers `upcast` for stored events of type `from`: they decode as `Old` and become a value of
    /// type `to`.
    ///
    /// If another upcaster is registered for `to`, the result is passed on to it (so `New` must be
    /// that upcaster's `Old` type); otherwise `New` must be `E` and its
    /// [`event_type`](Event::event_type) must be `to`. A later registration for the same `from`
    /// replaces the earlier one. Mistakes in a chain are reported as [`EventDecodeError::Upcast`] when
    /// an affected event is loaded.
    #[must_use]
    pub fn register<Old, New, F>(mut self, from: &str, to: &str, upcast: F) -> Self
    where
        Old: DeserializeOwned + Send + 'static,
        New: Send + 'static,
        F: Fn(Old) -> New + Send + Sync + 'static,
    {
        let convert: Convert =
            Box::new(move |value: AnyBox| value.downcast::<Old>().map(|old| Box::new(upcast(*old)) as AnyBox));
        let step =
            Step { to: to.into(), input_type: std::any::type_name::<Old>(), decode: decode_boxed::<Old>, convert };
        self.steps.insert(from.into(), step);
        self
    }

    /// Whether stored events of type `event_type` are upcast.
    #[must_use]
    pub fn handles(&self, event_type: &str) -> bool {
        self.steps.contains_key(event_type)
    }

    /// Whether no upcaster is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the chain that starts at `recorded`'s type, or returns `None` when none does.
    fn upcast(&self, recorded: &RecordedEvent) -> Option<Result<E, EventDecodeError>> {
        let first = self.steps.get(recorded.event_type.as_str())?;
        Some(self.run_chain(first, recorded))
    }

    fn run_chain(&self, first: &Step, recorded: &RecordedEvent) -> Result<E, EventDecodeError> {
        let fail = |reason: String| EventDecodeError::Upcast {
            stream_id: recorded.stream_id.clone(),
            version: recorded.version,
            event_type: recorded.event_type.to_string(),
            reason,
        };
        let mut value = (first.decode)(recorded)?;
        let mut step = first;
        // Every step runs at most once in a well-formed chain; more means a cycle.
        for _ in 0..=self.steps.len() {
            value = (step.convert)(value).map_err(|_| {
                fail(format!(
                    "the upcaster registered for the step to {} expects a {} but received another type; \
                     make each step return the input type of the next",
                    step.to, step.input_type
                ))
            })?;
            match self.steps.get(&step.to) {
                Some(next) => step = next,
                None => {
                    let event = value.downcast::<E>().map_err(|_| {
                        fail(format!(
                            "the chain ends at {} with a value that is not {}; the last upcaster must return the \
                             current event type",
                            step.to,
                            std::any::type_name::<E>()
                        ))
                    })?;
                    if event.event_type() != &*step.to {
                        return Err(fail(format!(
                            "the chain ends at {} but produced an event of type {}; register the upcaster with the \
                             type it returns",
                            step.to,
                            event.event_type()
                        )));
                    }
                    return Ok(*event);
                }
            }
        }
        Err(fail("the upcasters form a cycle; no chain may lead back to a type it started from".to_owned()))
    }
}

impl<E: Event> Default for Upcasters<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Upcasters<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps: Vec<_> = self.steps.iter().map(|(from, step)| format!("{from} -> {}", step.to)).collect();
        steps.sort();
        f.debug_tuple("Upcasters").field(&steps).finish()
    }
}

/// Decoding a stored event into today's event type failed.
#[derive(Debug, Error)]
pub enum EventDecodeError {
    /// The stored type is not current and no upcaster handles it.
    #[error(
        "unknown event type {event_type} at stream {stream_id} version {version}: add it to the known event types, \
         register an upcaster from it, or (read models only) skip unknown types"
    )]
    UnknownEventType {
        /// The stream the event belongs to.
        stream_id: StreamId,
        /// The event's version.
        version: Version,
        /// The stored type name.
        event_type: String,
    },
    /// The payload did not decode with the codec that wrote it.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The payload decoded, but to an event that names another type.
    #[error(
        "event at stream {stream_id} version {version} is stored as {stored} but decodes to {decoded}; \
         the event enum changed incompatibly (bincode identifies variants by position: add variants at the end, \
         never reorder them) or the type name is wrong"
    )]
    TypeMismatch {
        /// The stream the event belongs to.
        stream_id: StreamId,
        /// The event's version.
        version: Version,
        /// The stored type name.
        stored: String,
        /// The type name of the decoded value.
        decoded: &'static str,
    },
    /// A chain of upcasters is misconfigured.
    #[error("cannot upcast {event_type} at stream {stream_id} version {version}: {reason}")]
    Upcast {
        /// The stream the event belongs to.
        stream_id: StreamId,
        /// The event's version.
        version: Version,
        /// The stored type name.
        event_type: String,
        /// What is wrong with the chain.
        reason: String,
    },
}

/// What [`EventDecoder::decode`] does with an event type it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownEventTypes {
    /// Fail with [`EventDecodeError::UnknownEventType`] (the default, and the only choice for aggregates).
    #[default]
    Fail,
    /// Skip the event (for read models that handle only some types).
    Skip,
}

/// Decodes stored events into `E`: current types directly, older types through [`Upcasters`].
///
/// Cheap to clone (the upcasters are shared).
///
/// ```
/// use composable_rust_core::{Event, EventDecodeError, EventDecoder};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// # enum OrderEvent { Placed { customer: String } }
/// # impl Event for OrderEvent { fn event_type(&self) -> &'static str { "OrderPlaced.v1" } }
///
/// let strict = EventDecoder::<OrderEvent>::new(["OrderPlaced.v1"]);
/// let lenient = strict.clone().skip_unknown_types();
/// # let _ = (strict, lenient);
/// ```
pub struct EventDecoder<E> {
    upcasters: Arc<Upcasters<E>>,
    known: Arc<[Box<str>]>,
    unknown: UnknownEventTypes,
}

impl<E: Event> EventDecoder<E> {
    /// A decoder that accepts the current types `known` and fails on any other.
    pub fn new<I, S>(known: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        Self {
            upcasters: Arc::new(Upcasters::new()),
            known: known.into_iter().map(Into::into).collect(),
            unknown: UnknownEventTypes::Fail,
        }
    }

    /// Uses these upcasters for older types.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters<E>) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    /// Skips events of unknown types instead of failing (read models only).
    #[must_use]
    pub fn skip_unknown_types(mut self) -> Self {
        self.unknown = UnknownEventTypes::Skip;
        self
    }

    /// The upcasters in use.
    #[must_use]
    pub fn upcasters(&self) -> &Upcasters<E> {
        &self.upcasters
    }

    /// Decodes `recorded` with the codec that wrote it, upcasting older types.
    ///
    /// Returns `Ok(None)` only for an unknown type when unknown types are skipped.
    ///
    /// # Errors
    /// [`EventDecodeError::UnknownEventType`] for an unknown type (unless skipped),
    /// [`EventDecodeError::Codec`] when the payload does not decode, [`EventDecodeError::TypeMismatch`]
    /// when it decodes to another type than stored, [`EventDecodeError::Upcast`] for a broken chain.
    pub fn decode(&self, recorded: &RecordedEvent) -> Result<Option<E>, EventDecodeError> {
        if !self.upcasters.is_empty() {
            if let Some(result) = self.upcasters.upcast(recorded) {
                return result.map(Some);
            }
        }
        if self.unknown == UnknownEventTypes::Skip && !self.is_known(&recorded.event_type) {
            return Ok(None);
        }
        // Fast path: decode, then one comparison. The known-type list is consulted only on failure.
        match recorded.decode::<E>() {
            Ok(event) if event.event_type() == recorded.event_type => Ok(Some(event)),
            _ if !self.is_known(&recorded.event_type) => Err(EventDecodeError::UnknownEventType {
                stream_id: recorded.stream_id.clone(),
                version: recorded.version,
                event_type: recorded.event_type.to_string(),
            }),
            Ok(event) => Err(EventDecodeError::TypeMismatch {
                stream_id: recorded.stream_id.clone(),
                version: recorded.version,
                stored: recorded.event_type.to_string(),
                decoded: event.event_type(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn is_known(&self, event_type: &str) -> bool {
        self.known.iter().any(|known| &**known == event_type)
    }
}

impl<E: Event> EventDecoder<E> {
    /// The strict decoder of aggregate `A`: its [`Aggregate::EVENT_TYPES`] are known, nothing is skipped.
    #[must_use]
    pub fn for_aggregate<A: Aggregate<Event = E>>() -> Self {
        Self::new(A::EVENT_TYPES.iter().copied())
    }
}

impl<E> Clone for EventDecoder<E> {
    fn clone(&self) -> Self {
        Self { upcasters: Arc::clone(&self.upcasters), known: Arc::clone(&self.known), unknown: self.unknown }
    }
}

impl<E> fmt::Debug for EventDecoder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDecoder")
            .field("known", &self.known)
            .field("upcasters", &self.upcasters)
            .field("unknown", &self.unknown)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecId;
    use crate::event::Metadata;
    use crate::stream::GlobalPosition;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Current {
        Placed { customer: String, currency: String, lines: u32 },
        Cancelled,
    }

    impl Event for Current {
        fn event_type(&self) -> &'static str {
            match self {
                Self::Placed { .. } => "Placed.v3",
                Self::Cancelled => "Cancelled.v1",
            }
        }
    }

    #[derive(Debug, Serialize, Deserialize)]
    enum V1 {
        Placed { customer: String },
    }

    #[derive(Debug, Serialize, Deserialize)]
    enum V2 {
        Placed { customer: String, currency: String },
    }

    fn recorded<T: Serialize>(event_type: &str, codec: CodecId, value: &T) -> RecordedEvent {
        RecordedEvent {
            id: crate::EventId::generate(),
            stream_id: StreamId::new("order-1").unwrap(),
            version: Version::new(7),
            position: GlobalPosition::new(7),
            event_type: event_type.into(),
            codec,
            payload: codec.encode(value).unwrap().into(),
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
            tags: Vec::new(),
        }
    }

    fn chain() -> Upcasters<Current> {
        Upcasters::new()
            .register("Placed.v1", "Placed.v2", |V1::Placed { customer }: V1| V2::Placed {
                customer,
                currency: "EUR".into(),
            })
            .register("Placed.v2", "Placed.v3", |V2::Placed { customer, currency }: V2| Current::Placed {
                customer,
                currency,
                lines: 0,
            })
    }

    fn decoder() -> EventDecoder<Current> {
        EventDecoder::new(["Placed.v3", "Cancelled.v1"]).with_upcasters(chain())
    }

    #[test]
    fn a_chain_of_upcasters_turns_v1_into_the_current_type_for_every_codec() {
        for codec in [CodecId::Bincode, CodecId::Json] {
            let old = recorded("Placed.v1", codec, &V1::Placed { customer: "ada".into() });
            let expected = Current::Placed { customer: "ada".into(), currency: "EUR".into(), lines: 0 };
            assert_eq!(decoder().decode(&old).unwrap(), Some(expected));
            let mid = recorded("Placed.v2", codec, &V2::Placed { customer: "bob".into(), currency: "USD".into() });
            let expected = Current::Placed { customer: "bob".into(), currency: "USD".into(), lines: 0 };
            assert_eq!(decoder().decode(&mid).unwrap(), Some(expected));
        }
    }

    #[test]
    fn current_types_decode_directly() {
        let event = Current::Placed { customer: "c".into(), currency: "EUR".into(), lines: 2 };
        assert_eq!(decoder().decode(&recorded("Placed.v3", CodecId::Bincode, &event)).unwrap(), Some(event));
    }

    #[test]
    fn an_unknown_type_is_an_error_naming_stream_version_and_type() {
        let event = recorded("Refunded.v1", CodecId::Bincode, &Current::Cancelled);
        let err = decoder().decode(&event).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EventDecodeError::UnknownEventType { .. }), "{err:?}");
        assert!(msg.contains("Refunded.v1") && msg.contains("order-1") && msg.contains("version 7"), "{msg}");
    }

    #[test]
    fn unknown_types_are_skipped_when_asked() {
        let event = recorded("Refunded.v1", CodecId::Bincode, &Current::Cancelled);
        assert_eq!(decoder().skip_unknown_types().decode(&event).unwrap(), None);
    }

    #[test]
    fn a_known_type_that_decodes_to_another_variant_is_a_mismatch() {
        let event = recorded(
            "Cancelled.v1",
            CodecId::Json,
            &Current::Placed { customer: "c".into(), currency: "x".into(), lines: 1 },
        );
        assert!(matches!(decoder().decode(&event), Err(EventDecodeError::TypeMismatch { .. })));
    }

    #[test]
    fn a_chain_whose_steps_do_not_fit_is_reported() {
        let broken = Upcasters::<Current>::new()
            .register("Placed.v1", "Placed.v2", |V1::Placed { customer }: V1| customer)
            .register("Placed.v2", "Placed.v3", |V2::Placed { customer, currency }: V2| Current::Placed {
                customer,
                currency,
                lines: 0,
            });
        let decoder = EventDecoder::new(["Placed.v3"]).with_upcasters(broken);
        let err = decoder.decode(&recorded("Placed.v1", CodecId::Json, &V1::Placed { customer: "a".into() }));
        assert!(matches!(err, Err(EventDecodeError::Upcast { .. })), "{err:?}");

        let cyclic = Upcasters::<Current>::new().register("A.v1", "A.v1", |v: V1| v);
        let decoder = EventDecoder::new(["Placed.v3"]).with_upcasters(cyclic);
        let err = decoder.decode(&recorded("A.v1", CodecId::Json, &V1::Placed { customer: "a".into() }));
        assert!(err.unwrap_err().to_string().contains("cycle"));
    }
}
