//! One line of a segment: the header that opens every segment, and one event per line after it.
//!
//! A line is a JSON object on one line (JSONL), so that `zcat`, `jq` and `grep` read a store. The payload
//! of a JSON-codec event is written as JSON (`"payload": {...}`) when that reproduces its bytes exactly,
//! and as base64 (`"payload_base64": "..."`) otherwise. The last event of each commit carries `"commit": n`,
//! the number of events in the commit: a commit exists once that line is complete, and recovery cuts
//! whatever follows the last one.
//!
//! Decoding checks what one line can tell (types, a valid stream id, event type, tags and metadata); the
//! order of lines (dense positions and versions, unique ids) is the index's to check.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use composable_rust_core::{
    CodecId, EventId, GlobalPosition, Metadata, NewEvent, RecordedEvent, StreamId, Tag, Version,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::index::Index;

/// The `format` of a segment header.
pub(crate) const FORMAT: &str = "composable-rust-file-segment";
/// The version of the line format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The first line of every segment: what the file is and where it starts.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// Always [`FORMAT`].
    pub(crate) format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub(crate) version: u32,
    /// The position of the segment's first event.
    pub(crate) first_position: u64,
}

impl Header {
    pub(crate) fn new(first_position: GlobalPosition) -> Self {
        Self { format: FORMAT.to_owned(), version: FORMAT_VERSION, first_position: first_position.get() }
    }

    /// The header line, newline included.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Reads a header line, or says why it is not one this build reads.
    pub(crate) fn decode(line: &[u8]) -> Result<Self, String> {
        let header: Self = serde_json::from_slice(line)
            .map_err(|e| format!("is not a segment header ({e}): not a segment of this store"))?;
        if header.format != FORMAT {
            return Err(format!("names the format {:?}, not {FORMAT:?}: not a segment of this store", header.format));
        }
        if header.version != FORMAT_VERSION {
            return Err(format!(
                "is in segment format version {}, but this build reads version {FORMAT_VERSION}: open it with the \
                 version of composable-rust that wrote it",
                header.version
            ));
        }
        Ok(header)
    }
}

/// An event line, as written and read (borrowing from the line where it can).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLine<'a> {
    position: u64,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    version: u64,
    id: EventId,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    codec: CodecId,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    payload_base64: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "is_empty_metadata")]
    metadata: Cow<'a, Metadata>,
    #[serde(default, skip_serializing_if = "<[Tag]>::is_empty")]
    tags: Cow<'a, [Tag]>,
    /// RFC 3339, kept as text here so that a commit formats its one timestamp once for all its lines.
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commit: Option<u64>,
}

#[allow(clippy::ptr_arg, reason = "serde's skip_serializing_if passes the field itself by reference")]
fn is_empty_metadata(metadata: &Cow<'_, Metadata>) -> bool {
    **metadata == Metadata::default()
}

/// A time as event lines hold it: RFC 3339 in UTC, with as many fractional digits as it has.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The payload as JSON text when the codec is JSON and the text is one JSON value that prints back to the
/// same bytes on one line; `None` means base64.
fn payload_as_json(codec: CodecId, payload: &[u8]) -> Option<&RawValue> {
    if codec != CodecId::Json || payload.contains(&b'\n') || payload.contains(&b'\r') {
        return None;
    }
    let raw: &RawValue = serde_json::from_slice(payload).ok()?;
    (raw.get().as_bytes() == payload).then_some(raw)
}

/// Appends the line of `event` (newline included) to `out`; `recorded_at` is its time as [`format_time`]
/// wrote it, and `commit` the number of events of the commit when `event` is its last. Fails only when the
/// line would be longer than `max_line_len`.
pub(crate) fn encode_event(
    out: &mut Vec<u8>,
    event: &RecordedEvent,
    recorded_at: &str,
    commit: Option<u64>,
    max_line_len: usize,
) -> Result<(), String> {
    let payload = payload_as_json(event.codec, &event.payload);
    let line = EventLine {
        position: event.position.get(),
        stream: Cow::Borrowed(event.stream_id.as_str()),
        version: event.version.get(),
        id: event.id,
        event_type: Cow::Borrowed(event.event_type.as_str()),
        codec: event.codec,
        payload,
        payload_base64: payload.is_none().then(|| Cow::Owned(BASE64.encode(&event.payload))),
        metadata: Cow::Borrowed(&event.metadata),
        tags: Cow::Borrowed(&event.tags),
        recorded_at: Cow::Borrowed(recorded_at),
        commit,
    };
    let start = out.len();
    serde_json::to_writer(&mut *out, &line).map_err(|e| format!("could not encode the event: {e}"))?;
    out.push(b'\n');
    let len = out.len() - start;
    if len > max_line_len {
        out.truncate(start);
        return Err(format!(
            "event {} of type {} encodes to a line of {len} bytes, more than the limit of {max_line_len} bytes \
             (FileConfig::max_line_len): make the payload smaller or raise the limit",
            event.id, event.event_type
        ));
    }
    Ok(())
}

/// A decoded event line: the event, and the size of its commit when it is the commit's last event.
#[derive(Debug)]
pub(crate) struct DecodedEvent {
    pub(crate) event: RecordedEvent,
    pub(crate) commit: Option<u64>,
}

/// Decodes an event line (without its newline), or says what is wrong with it.
pub(crate) fn decode_event(line: &[u8], index: &mut Index) -> Result<DecodedEvent, String> {
    let line: EventLine<'_> = serde_json::from_slice(line).map_err(|e| format!("is not an event line: {e}"))?;
    let stream_id = StreamId::new(line.stream.as_ref()).map_err(|e| format!("has an {e}"))?;
    let payload = match (line.payload, &line.payload_base64) {
        (Some(json), None) if line.codec == CodecId::Json => json.get().as_bytes().to_vec(),
        (Some(_), None) => {
            return Err(format!(
                "has a JSON payload but the codec {}: only JSON-codec payloads are written as JSON",
                line.codec.as_str()
            ));
        }
        (None, Some(encoded)) => {
            BASE64.decode(encoded.as_bytes()).map_err(|e| format!("has a payload_base64 that is not base64: {e}"))?
        }
        (Some(_), Some(_)) => return Err("has both payload and payload_base64: keep one".to_owned()),
        (None, None) => return Err("has no payload: an event line needs payload or payload_base64".to_owned()),
    };
    // The checks an append makes, so that a file edited by hand cannot hold what an append would refuse.
    let as_appended = NewEvent {
        id: line.id,
        event_type: line.event_type.into_owned(),
        codec: line.codec,
        payload: Vec::new(),
        metadata: line.metadata.into_owned(),
        tags: line.tags.into_owned(),
    };
    as_appended.validate().map_err(|e| format!("holds an event no append accepts: {e}"))?;
    if line.version == 0 {
        return Err("has version 0: the first event of a stream is version 1".to_owned());
    }
    if line.commit == Some(0) {
        return Err("closes a commit of 0 events: a commit holds at least one".to_owned());
    }
    let recorded_at = DateTime::parse_from_rfc3339(&line.recorded_at)
        .map_err(|e| format!("has a recorded_at that is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    let event = RecordedEvent {
        id: as_appended.id,
        stream_id,
        version: Version::new(line.version),
        position: GlobalPosition::new(line.position),
        event_type: index.event_type(&as_appended.event_type),
        codec: as_appended.codec,
        payload: payload.into(),
        metadata: as_appended.metadata,
        recorded_at,
        tags: as_appended.tags,
    };
    Ok(DecodedEvent { event, commit: line.commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(event: &NewEvent) -> RecordedEvent {
        RecordedEvent {
            id: event.id,
            stream_id: StreamId::new("order-1").unwrap_or_else(|e| panic!("{e}")),
            version: Version::new(1),
            position: GlobalPosition::new(1),
            event_type: event.event_type.as_str().into(),
            codec: event.codec,
            payload: event.payload.clone().into(),
            metadata: event.metadata.clone(),
            recorded_at: Utc::now(),
            tags: event.tags.clone(),
        }
    }

    fn round_trip(event: &NewEvent) -> RecordedEvent {
        let mut out = Vec::new();
        let event = recorded(event);
        encode_event(&mut out, &event, &format_time(event.recorded_at), Some(1), 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line: {}", String::from_utf8_lossy(&out));
        let decoded = decode_event(&out[..out.len() - 1], &mut Index::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.commit, Some(1));
        decoded.event
    }

    #[test]
    fn json_payloads_are_written_as_json_only_when_their_bytes_survive() {
        for payload in [&b"{\"a\":1}"[..], b" {\"a\":1}", b"{\n\"a\":1}", b"not json", b"\xff\xfe", b"[1, 2]"] {
            let event = NewEvent::new("Noted.v1", CodecId::Json, payload.to_vec(), Metadata::default());
            assert_eq!(&round_trip(&event).payload[..], payload, "{:?}", String::from_utf8_lossy(payload));
        }
        let binary = NewEvent::new("Noted.v1", CodecId::Bincode, vec![0, 10, 13, 255], Metadata::default());
        assert_eq!(&round_trip(&binary).payload[..], &[0, 10, 13, 255]);
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_leaves_the_buffer_as_it_was() {
        let event = NewEvent::new("Noted.v1", CodecId::Bincode, vec![7; 1000], Metadata::default());
        let mut out = b"earlier\n".to_vec();
        let refused = encode_event(&mut out, &recorded(&event), "2026-01-01T00:00:00Z", None, 100);
        assert!(refused.is_err_and(|e| e.contains("limit of 100 bytes")));
        assert_eq!(out, b"earlier\n");
    }

    #[test]
    fn lines_with_wrong_types_or_impossible_values_are_refused_with_a_reason() {
        let good = r#"{"position":1,"stream":"s-1","version":1,"id":"0190a5a4-8f8e-7b3c-9d3e-123456789abc","type":"T.v1","codec":"bincode","payload_base64":"AQ==","recorded_at":"2026-01-01T00:00:00Z"}"#;
        assert!(decode_event(good.as_bytes(), &mut Index::default()).is_ok());
        let cases = [
            (good.replace("\"version\":1", "\"version\":\"1\""), "is not an event line"),
            (good.replace("\"version\":1", "\"version\":0"), "version 0"),
            (good.replace("\"s-1\"", "\"\""), "stream id"),
            (good.replace("\"T.v1\"", "\"\""), "no append accepts"),
            (good.replace("AQ==", "%%%"), "not base64"),
            (good.replace("\"payload_base64\":\"AQ==\"", "\"payload\":{}"), "codec bincode"),
            (good.replace("\"payload_base64\":\"AQ==\",", ""), "has no payload"),
            (good.replace("\"codec\"", "\"surprise\":1,\"codec\""), "unknown field"),
            (good.replace("2026-01-01T00:00:00Z", "yesterday"), "RFC 3339"),
        ];
        for (line, reason) in cases {
            let refused = decode_event(line.as_bytes(), &mut Index::default());
            assert!(refused.as_ref().is_err_and(|e| e.contains(reason)), "{line}: {refused:?}");
        }
    }
}
