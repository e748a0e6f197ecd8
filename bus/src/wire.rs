//! How an event travels on NATS: its subject (`<prefix>.<category>.<stream id>`), its headers (everything
//! a [`RecordedEvent`] holds besides the payload) and its payload (the event's bytes as the codec wrote them).

use std::fmt::Write as _;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use composable_rust_core::{Bytes, CodecId, EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, Version};
use uuid::Uuid;

/// JetStream de-duplicates by this header: the event id.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";
const STREAM_ID: &str = "Cr-Stream-Id";
const VERSION: &str = "Cr-Version";
const POSITION: &str = "Cr-Position";
const EVENT_TYPE: &str = "Cr-Event-Type";
const CODEC: &str = "Cr-Codec";
const RECORDED_AT: &str = "Cr-Recorded-At";
const CORRELATION_ID: &str = "Cr-Correlation-Id";
const CAUSATION_ID: &str = "Cr-Causation-Id";
const ACTOR: &str = "Cr-Actor";
const EXTRA: &str = "Cr-Extra";

/// The subject of `event` under `prefix`: `<prefix>.<category>.<stream id>`.
///
/// A stream id may hold characters a subject token cannot (`.`, `*`, `>`, spaces); they are written as
/// `%XX` (and `%` itself as `%25`), so every stream has its own subject and categories stay filterable.
pub(crate) fn subject(prefix: &str, stream_id: &StreamId) -> String {
    let mut subject = String::with_capacity(prefix.len() + stream_id.as_str().len() * 2 + 2);
    subject.push_str(prefix);
    subject.push('.');
    escape_into(&mut subject, stream_id.category());
    subject.push('.');
    escape_into(&mut subject, stream_id.as_str());
    subject
}

/// The subjects of the streams of `category` under `prefix`.
pub(crate) fn category_filter(prefix: &str, category: &str) -> String {
    let mut subject = format!("{prefix}.");
    escape_into(&mut subject, category);
    subject.push_str(".>");
    subject
}

fn escape_into(out: &mut String, token: &str) {
    for c in token.chars() {
        if c == '.' || c == '*' || c == '>' || c == '%' || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// The headers that carry `event`'s identity and metadata.
pub(crate) fn headers(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, event.id.to_string());
    headers.insert(STREAM_ID, event.stream_id.as_str());
    headers.insert(VERSION, event.version.get().to_string());
    headers.insert(POSITION, event.position.get().to_string());
    headers.insert(EVENT_TYPE, event.event_type.as_str());
    headers.insert(CODEC, event.codec.to_string());
    headers.insert(RECORDED_AT, event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    let metadata = &event.metadata;
    if let Some(id) = metadata.correlation_id {
        headers.insert(CORRELATION_ID, id.to_string());
    }
    if let Some(id) = metadata.causation_id {
        headers.insert(CAUSATION_ID, id.to_string());
    }
    if let Some(actor) = &metadata.actor {
        headers.insert(ACTOR, actor.as_str());
    }
    if let Some(extra) = &metadata.extra {
        headers.insert(EXTRA, extra.as_str());
    }
    headers
}

/// The event a message carries; `Err` names what is missing or malformed.
pub(crate) fn decode(headers: Option<&HeaderMap>, payload: Bytes) -> Result<RecordedEvent, String> {
    let headers = headers.ok_or("it has no headers")?;
    // Looked up by text: a header parsed off the wire and the same name typed here can be different
    // `HeaderName` variants (standard vs custom) that do not compare equal.
    let fields: Vec<(&[u8], &str)> =
        headers.iter().filter_map(|(key, values)| Some((key.as_ref(), values.first()?.as_str()))).collect();
    let text = |name: &'static str| {
        fields.iter().find(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes())).map(|(_, value)| *value)
    };
    let required = |name: &'static str| {
        text(name).ok_or_else(|| {
            let present: Vec<String> =
                fields.iter().map(|(key, _)| String::from_utf8_lossy(key).into_owned()).collect();
            format!("the header {name} is missing (it has {})", present.join(", "))
        })
    };
    let number = |name: &'static str| {
        required(name)?.parse::<u64>().map_err(|e| format!("the header {name} is not a number: {e}"))
    };
    let uuid = |name: &'static str| {
        text(name).map(|t| Uuid::parse_str(t).map_err(|e| format!("the header {name} is not a UUID: {e}"))).transpose()
    };
    let id = Uuid::parse_str(required(MSG_ID)?).map_err(|e| format!("the header {MSG_ID} is not a UUID: {e}"))?;
    let stream_id = StreamId::new(required(STREAM_ID)?).map_err(|e| format!("the header {STREAM_ID}: {e}"))?;
    let codec: CodecId = required(CODEC)?.parse().map_err(|e| format!("the header {CODEC}: {e}"))?;
    let recorded_at = DateTime::parse_from_rfc3339(required(RECORDED_AT)?)
        .map_err(|e| format!("the header {RECORDED_AT} is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    Ok(RecordedEvent {
        id: EventId::from(id),
        stream_id,
        version: Version::new(number(VERSION)?),
        position: GlobalPosition::new(number(POSITION)?),
        event_type: required(EVENT_TYPE)?.into(),
        codec,
        payload,
        metadata: Metadata {
            correlation_id: uuid(CORRELATION_ID)?,
            causation_id: uuid(CAUSATION_ID)?,
            actor: text(ACTOR).map(str::to_owned),
            extra: text(EXTRA).map(str::to_owned),
        },
        recorded_at,
        tags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test inputs are known to be valid")]

    use super::*;

    fn event(stream: &str) -> RecordedEvent {
        RecordedEvent {
            id: EventId::generate(),
            stream_id: StreamId::new(stream).unwrap(),
            version: Version::new(3),
            position: GlobalPosition::new(17),
            event_type: "OrderPlaced.v1".into(),
            codec: CodecId::Json,
            payload: Bytes::from_static(b"{\"a\":1}"),
            metadata: Metadata::correlated(Uuid::from_u128(7))
                .with_causation_id(Uuid::from_u128(8))
                .with_actor("saga")
                .with_extra(&serde_json::json!({"k": "v"})),
            recorded_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z").unwrap().with_timezone(&Utc),
            tags: Vec::new(),
        }
    }

    #[test]
    fn an_event_survives_the_wire_with_every_field() {
        let sent = event("order-42");
        let received = decode(Some(&headers(&sent)), sent.payload.clone()).unwrap();
        assert_eq!(received, sent);
    }

    #[test]
    fn subjects_are_prefix_category_and_stream_with_unsafe_characters_escaped() {
        assert_eq!(subject("app", &StreamId::new("order-42").unwrap()), "app.order.order-42");
        assert_eq!(subject("app", &StreamId::new("order-a.b*c>d e%").unwrap()), "app.order.order-a%2Eb%2Ac%3Ed%20e%25");
        assert_eq!(category_filter("app", "order"), "app.order.>");
    }

    #[test]
    fn a_message_without_the_event_headers_is_refused_with_the_missing_header_named() {
        let mut headers = headers(&event("order-1"));
        headers.insert(STREAM_ID, "");
        assert!(decode(Some(&headers), Bytes::new()).unwrap_err().contains(STREAM_ID));
        assert_eq!(decode(None, Bytes::new()).unwrap_err(), "it has no headers");
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, "not-a-uuid");
        assert!(decode(Some(&headers), Bytes::new()).unwrap_err().contains(MSG_ID));
    }
}
