//! The lines of an archive, version 1, as serde types. Each line of the file is one [`Line`], an object
//! with one key naming its kind:
//!
//! ```text
//! {"header":{"format":"composable-rust-archive","version":1,"source_backend":"postgres","written_at":"…","selection":"all"}}
//! {"checkpoint":{"handler":"order-summaries","position":4398046511105}}
//! {"event":{"id":"…","stream":"order-1","version":1,"position":4398046511105,"type":"OrderPlaced.v1","codec":"json","payload":{"customer":"ada"},"recorded_at":"…"}}
//! {"snapshot":{"stream":"order-1","version":1,"schema_version":1,"codec":"bincode","payload_base64":"AQI=","taken_at":"…"}}
//! {"trailer":{"events":1,"snapshots":1,"checkpoints":1,"sha256":"…"}}
//! ```
//!
//! Lines come in that order: one header, the checkpoints, the events in global position order, the
//! snapshots, one trailer. `sha256` is the hex SHA-256 of every byte before the trailer line. A payload
//! appears as JSON (`payload`) when its codec is JSON and its bytes are one JSON value on one line, exactly;
//! otherwise as base64 (`payload_base64`, standard alphabet, padded). Both keep the bytes exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use composable_rust_core::{
    CodecId, EventId, GlobalPosition, Metadata, RecordedEvent, Snapshot, StreamId, Tag, Version,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The `format` of every archive's header.
pub const FORMAT_NAME: &str = "composable-rust-archive";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One line of an archive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The first line.
    Header(Header),
    /// A subscription's checkpoint, at a position of the source store.
    Checkpoint(CheckpointLine),
    /// One event.
    Event(EventLine),
    /// A stream's latest snapshot.
    Snapshot(SnapshotLine),
    /// The last line.
    Trailer(Trailer),
}

/// What the archive is: format and version, where it came from, when, and what was selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`] for this build.
    pub version: u32,
    /// The backend exported from: `postgres`, `sqlite`, `in-memory`, ...
    pub source_backend: String,
    /// When the export started.
    pub written_at: DateTime<Utc>,
    /// Which events were exported.
    pub selection: Selection,
}

/// Which events of a store an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// The whole log, with every snapshot and checkpoint.
    All,
    /// The streams of one category (`order` for `order-42`), whole, with their snapshots; no checkpoints.
    Category(String),
    /// The events with a position in `(after, up_to]` of the source store; no snapshots or checkpoints.
    /// Streams may start above version 1 (an incremental backup).
    Positions {
        /// Exclusive lower bound.
        after: u64,
        /// Inclusive upper bound; `None` for the end of the log.
        up_to: Option<u64>,
    },
    /// The events a retention run removed, in global order; no snapshots or checkpoints. A stream's
    /// versions ascend but may skip (retention keeps some events between removed ones), so such an archive
    /// is kept and read, not imported back into the store it came from.
    Removed {
        /// The retention run's id.
        run: String,
    },
}

/// A checkpoint line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    /// The handler name.
    pub handler: String,
    /// Its position in the source store.
    pub position: u64,
}

/// An event line: every field of a [`RecordedEvent`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    /// The event id.
    pub id: Uuid,
    /// The stream.
    pub stream: StreamId,
    /// The version within the stream.
    pub version: u64,
    /// The position in the source store.
    pub position: u64,
    /// The event type with its schema version.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The codec that wrote the payload: `json` or `bincode`.
    pub codec: String,
    /// The payload, for a JSON codec payload that is one JSON value on one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// The payload in base64, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Correlation, causation, actor, extra; absent when empty.
    #[serde(default, skip_serializing_if = "MetadataLine::is_empty")]
    pub metadata: MetadataLine,
    /// The tags, in order; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When the source store recorded it.
    #[serde(deserialize_with = "time::deserialize")]
    pub recorded_at: DateTime<Utc>,
}

/// An event's metadata; each field absent when not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataLine {
    /// The correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The causation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The free-form JSON, as the text stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

impl MetadataLine {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A snapshot line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotLine {
    /// The stream.
    pub stream: StreamId,
    /// The stream version the state reflects.
    pub version: u64,
    /// The state's schema version.
    pub schema_version: u32,
    /// The codec that wrote the payload.
    pub codec: String,
    /// The payload, as for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// The payload in base64, as for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// When it was taken.
    #[serde(deserialize_with = "time::deserialize")]
    pub taken_at: DateTime<Utc>,
}

/// The last line: counts and the checksum of everything before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Event lines.
    pub events: u64,
    /// Snapshot lines.
    pub snapshots: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
    /// Hex SHA-256 of every byte before the trailer line.
    pub sha256: String,
}

/// The payload fields for `bytes` written by `codec`: inline JSON when that keeps the bytes exactly on one
/// line, base64 otherwise.
fn encode_payload(codec: CodecId, bytes: &[u8]) -> (Option<Box<RawValue>>, Option<String>) {
    if codec == CodecId::Json && !bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
        if let Ok(raw) = serde_json::from_slice::<Box<RawValue>>(bytes) {
            // `null` would read back as an absent field; whitespace around the value would be lost.
            if raw.get().as_bytes() == bytes && raw.get() != "null" {
                return (Some(raw), None);
            }
        }
    }
    (None, Some(BASE64.encode(bytes)))
}

/// The bytes of a payload given as one of the two fields.
fn decode_payload(json: Option<Box<RawValue>>, base64: Option<String>) -> Result<Vec<u8>, String> {
    match (json, base64) {
        // The parsed text itself becomes the payload: no copy.
        (Some(raw), None) => Ok(Box::<str>::from(raw).into_boxed_bytes().into_vec()),
        (None, Some(text)) => {
            BASE64.decode(text.as_bytes()).map_err(|e| format!("payload_base64 is not valid base64 ({e})"))
        }
        (Some(_), Some(_)) => Err("both payload and payload_base64 are present: give exactly one".into()),
        (None, None) => Err("the payload is missing: give payload or payload_base64".into()),
    }
}

fn codec(name: &str) -> Result<CodecId, String> {
    name.parse::<CodecId>().map_err(|_| format!("unknown codec {name:?}: this build knows \"json\" and \"bincode\""))
}

impl EventLine {
    /// The line for `event`.
    #[must_use]
    pub fn from_recorded(event: &RecordedEvent) -> Self {
        let (payload, payload_base64) = encode_payload(event.codec, &event.payload);
        Self {
            id: event.id.as_uuid(),
            stream: event.stream_id.clone(),
            version: event.version.get(),
            position: event.position.get(),
            event_type: event.event_type.to_string(),
            codec: event.codec.as_str().to_owned(),
            payload,
            payload_base64,
            metadata: MetadataLine {
                correlation_id: event.metadata.correlation_id,
                causation_id: event.metadata.causation_id,
                actor: event.metadata.actor.clone(),
                extra: event.metadata.extra.clone(),
            },
            tags: event.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            recorded_at: event.recorded_at,
        }
    }

    /// The event this line describes, at its source position.
    ///
    /// # Errors
    /// What is wrong with the line: an unknown codec, a bad payload.
    pub fn into_recorded(self) -> Result<RecordedEvent, String> {
        let codec = codec(&self.codec)?;
        let payload = decode_payload(self.payload, self.payload_base64)?;
        Ok(RecordedEvent {
            id: EventId::from(self.id),
            stream_id: self.stream,
            version: Version::new(self.version),
            position: GlobalPosition::new(self.position),
            event_type: self.event_type.into(),
            codec,
            payload: payload.into(),
            metadata: Metadata {
                correlation_id: self.metadata.correlation_id,
                causation_id: self.metadata.causation_id,
                actor: self.metadata.actor,
                extra: self.metadata.extra,
            },
            recorded_at: self.recorded_at,
            tags: self.tags.into_iter().map(Tag::from).collect(),
        })
    }
}

impl SnapshotLine {
    /// The line for `snapshot`.
    #[must_use]
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let (payload, payload_base64) = encode_payload(snapshot.codec, &snapshot.payload);
        Self {
            stream: snapshot.stream_id.clone(),
            version: snapshot.version.get(),
            schema_version: snapshot.schema_version,
            codec: snapshot.codec.as_str().to_owned(),
            payload,
            payload_base64,
            taken_at: snapshot.taken_at,
        }
    }

    /// The snapshot this line describes.
    ///
    /// # Errors
    /// What is wrong with the line: an unknown codec, a bad payload.
    pub fn into_snapshot(self) -> Result<Snapshot, String> {
        Ok(Snapshot {
            codec: codec(&self.codec)?,
            payload: decode_payload(self.payload, self.payload_base64)?,
            stream_id: self.stream,
            version: Version::new(self.version),
            schema_version: self.schema_version,
            taken_at: self.taken_at,
        })
    }
}

/// Times as an archive writes them, read back without chrono's general parser, which was a seventh of the
/// cost of decoding an event line.
pub(crate) mod time {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    /// Deserializes a time as chrono's `Deserialize` for `DateTime<Utc>` does (RFC 3339, any offset), taking a
    /// short cut for the form chrono writes in UTC: `2026-12-01T09:30:00.123456Z`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        struct Time;
        impl Visitor<'_> for Time {
            type Value = DateTime<Utc>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an RFC 3339 date and time")
            }
            fn visit_str<E: Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
                parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Time)
    }

    /// `text` as a time: the short cut when it has the written form, else chrono's RFC 3339 parser.
    pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        match utc(text.as_bytes()) {
            Some(time) => Ok(time),
            None => text.parse::<DateTime<FixedOffset>>().map(|time| time.with_timezone(&Utc)),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.F]Z` with 1 to 9 digits of fraction and a second below 60; `None` for anything
    /// else (chrono then decides).
    fn utc(text: &[u8]) -> Option<DateTime<Utc>> {
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            text.get(range)?.iter().try_fold(0_u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if text.last() != Some(&b'Z') || separators.iter().any(|&(at, byte)| text.get(at) != Some(&byte)) {
            return None;
        }
        let year = i32::try_from(digits(0..4)?).ok()?;
        let date = NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)?;
        let second = digits(17..19).filter(|&second| second < 60)?;
        let nanos = match text.len() {
            20 => 0,
            length @ 22..=30 if text[19] == b'.' => {
                digits(20..length - 1)? * 10_u32.pow(u32::try_from(30 - length).ok()?)
            }
            _ => return None,
        };
        let time = NaiveTime::from_hms_nano_opt(digits(11..13)?, digits(14..16)?, second, nanos)?;
        Some(date.and_time(time).and_utc())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike as _;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn json_payloads_are_inline_only_when_that_keeps_their_bytes() {
        let inline = |bytes: &[u8]| encode_payload(CodecId::Json, bytes).0.is_some();
        assert!(inline(br#"{"a":1}"#));
        assert!(!inline(b"{\"a\":\n1}"), "a newline would break the line");
        assert!(!inline(br#" {"a":1}"#), "leading white space would be lost");
        assert!(!inline(b"null"), "null would read back as absent");
        assert!(!inline(b"{not json"));
        assert!(encode_payload(CodecId::Bincode, br#"{"a":1}"#).0.is_none(), "only the JSON codec is inline");
        for bytes in [&br#"{"a":1}"#[..], b"{\"a\":\n1}", b"\x00\xff", b""] {
            let (json, base64) = encode_payload(CodecId::Json, bytes);
            assert_eq!(decode_payload(json, base64).as_deref(), Ok(bytes), "{bytes:?} round-trips");
        }
    }

    /// The short cut reads what chrono writes, for any time an archive can hold.
    #[test]
    fn times_read_back_as_written() {
        proptest!(|(micros in -62_135_596_800_000_000_i64..253_402_300_799_999_999, nanos in 0_u32..1_000_000_000)| {
            let at = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            for time in [at, at.with_nanosecond(nanos).unwrap_or(at), at.with_nanosecond(0).unwrap_or(at)] {
                let written = serde_json::to_string(&time).unwrap();
                prop_assert_eq!(time::parse(written.trim_matches('"')), Ok(time));
            }
        });
    }

    /// On any text, the short cut answers as chrono does: the same time, or an error both ways.
    #[test]
    fn times_parse_as_chrono_does() {
        let chrono = |text: &str| text.parse::<DateTime<chrono::FixedOffset>>().map(|t| t.with_timezone(&Utc)).ok();
        let near =
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[T t][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{2}:[0-9]{2})";
        proptest!(|(text in prop_oneof![near, "\\PC{0,32}"])| {
            prop_assert_eq!(time::parse(&text).ok(), chrono(&text), "{}", text);
        });
        for text in ["2026-02-30T00:00:00Z", "2026-12-01T23:59:60Z", "2026-12-01T24:00:00Z", "2026-12-01T00:00:00.Z"] {
            assert_eq!(time::parse(text).ok(), chrono(text), "{text}");
        }
    }
}
