//! Streams and positions: [`StreamId`], [`Version`], [`GlobalPosition`] and [`ExpectedVersion`].
//!
//! # Numbering, defined once for every backend
//!
//! - The first event of a stream has version **1**; versions are dense and consecutive (1, 2, 3, ...).
//! - "The stream's version" is the version of its last event, which equals the number of events in it.
//!   A stream with no events has version **0** ([`Version::INITIAL`]).
//! - Global positions order the whole log. They start above [`GlobalPosition::START`] (0), increase
//!   in the order readers see events, and may have gaps; they are never reused.
//!
//! The conformance suite in `composable-rust-testing` pins these numbers for every backend.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// The identity of one event stream, usually `category-id` such as `order-42`.
///
/// Valid stream ids are non-empty, at most [`StreamId::MAX_LEN`] bytes long, have no leading or trailing
/// white space and contain no control characters. Construct one with [`StreamId::new`] or
/// [`StreamId::for_entity`]; invalid input is an [`InvalidInput`] error, never a panic.
///
/// ```
/// use composable_rust_core::StreamId;
///
/// let id = StreamId::for_entity("order", "42")?;
/// assert_eq!(id.as_str(), "order-42");
/// assert_eq!(id.category(), "order");
/// assert!(StreamId::new("").is_err());
/// # Ok::<(), composable_rust_core::InvalidInput>(())
/// ```
///
/// Cloning is cheap (a reference count), so every loaded event can carry its stream id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// Longest accepted stream id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Separator between the category and the entity id in [`StreamId::for_entity`].
    pub const CATEGORY_SEPARATOR: char = '-';

    /// Validates `value` and makes a stream id of it.
    ///
    /// # Errors
    /// [`InvalidInput::StreamId`] when the value is empty, too long, padded with white space or
    /// contains control characters.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidInput> {
        let value = value.into();
        let problem = if value.is_empty() {
            Some("it is empty")
        } else if value.len() > Self::MAX_LEN {
            Some("it is longer than 255 bytes")
        } else if value.trim() != value {
            Some("it starts or ends with white space")
        } else if value.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(InvalidInput::StreamId { value: printable(&value), reason }),
            None => Ok(Self(Arc::from(value))),
        }
    }

    /// Builds `category-id`, the naming rule aggregates use (`order` + `42` = `order-42`).
    ///
    /// # Errors
    /// [`InvalidInput::StreamId`] when the category is empty or contains the separator `-`, or the
    /// result is not a valid stream id.
    pub fn for_entity(category: &str, id: impl fmt::Display) -> Result<Self, InvalidInput> {
        if category.is_empty() || category.contains(Self::CATEGORY_SEPARATOR) {
            return Err(InvalidInput::StreamId {
                value: printable(category),
                reason: "a category must be non-empty and must not contain '-'",
            });
        }
        Self::new(format!("{category}{}{id}", Self::CATEGORY_SEPARATOR))
    }

    /// The stream id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-` (the whole id when there is none): `order` for `order-42`.
    #[must_use]
    pub fn category(&self) -> &str {
        self.0.split(Self::CATEGORY_SEPARATOR).next().unwrap_or_default()
    }
}

/// A shortened, escaped copy of rejected input, safe to put in an error message.
fn printable(value: &str) -> String {
    let mut out: String = value.chars().take(64).flat_map(char::escape_debug).collect();
    if value.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", self.0)
    }
}

impl FromStr for StreamId {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidInput;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::new(value).map_err(serde::de::Error::custom)
    }
}

/// The version of an event within its stream, or of a whole stream (the version of its last event).
///
/// Events are numbered 1, 2, 3, ...; [`Version::INITIAL`] (0) is the version of a stream with no events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of a stream that has no events yet.
    pub const INITIAL: Self = Self(0);
    /// The version of a stream's first event.
    pub const FIRST: Self = Self(1);

    /// Wraps a raw version number.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw version number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// This version advanced by `count` events.
    #[must_use]
    pub const fn advanced_by(self, count: u64) -> Self {
        Self(self.0.saturating_add(count))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Version {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

/// The position of an event in the global log of all streams.
///
/// Positions increase in the order a reader of the global log sees events. They may have gaps. A reader
/// that has processed everything up to position `N` (its checkpoint) sees every event committed later at
/// a position greater than `N`: no backend lets a later commit appear below a position already read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GlobalPosition(u64);

impl GlobalPosition {
    /// The position before the first event: read the log "after `START`" to read it from the beginning.
    pub const START: Self = Self(0);

    /// Wraps a raw position.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw position.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a writer believes the stream's version is; checked atomically with the append.
///
/// A wrong belief fails the append with
/// [`EventStoreError::ConcurrencyConflict`](crate::EventStoreError::ConcurrencyConflict), which callers
/// may retry after reloading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is (no concurrency check).
    Any,
    /// The stream must have no events (version 0).
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's version must be exactly this. `Exact(Version::INITIAL)` means the same as `NoStream`.
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    #[must_use]
    pub fn is_satisfied_by(self, actual: Version) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == Version::INITIAL,
            Self::StreamExists => actual > Version::INITIAL,
            Self::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream (version 0)"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_rejects_bad_input_with_a_reason() {
        for bad in ["", " order-1", "order-1 ", "order\n1", &"x".repeat(256)] {
            let err = StreamId::new(bad).unwrap_err();
            assert!(err.to_string().contains("stream id"), "{err}");
        }
        assert_eq!(StreamId::new("x".repeat(255)).map(|s| s.as_str().len()), Ok(255));
    }

    #[test]
    fn category_is_the_part_before_the_first_separator() {
        assert_eq!(StreamId::new("order-42-a").unwrap().category(), "order");
        assert_eq!(StreamId::new("singleton").unwrap().category(), "singleton");
        assert!(StreamId::for_entity("bad-cat", 1).is_err());
    }

    #[test]
    fn expected_version_semantics() {
        let v0 = Version::INITIAL;
        let v3 = Version::new(3);
        assert!(ExpectedVersion::NoStream.is_satisfied_by(v0));
        assert!(!ExpectedVersion::NoStream.is_satisfied_by(v3));
        assert!(ExpectedVersion::StreamExists.is_satisfied_by(v3));
        assert!(!ExpectedVersion::StreamExists.is_satisfied_by(v0));
        assert!(ExpectedVersion::Exact(v0).is_satisfied_by(v0));
        assert!(ExpectedVersion::Exact(v3).is_satisfied_by(v3));
        assert!(ExpectedVersion::Any.is_satisfied_by(v3));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
        assert!(serde_json::from_str::<StreamId>("\"order-1\"").is_ok());
    }
}
