//! Turning SQLite rows into core types, and the conversions between core types and SQLite integers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use composable_rust_core::backend::EventTypeCache;
use composable_rust_core::{
    Bytes, CodecId, EventId, EventStoreError, GlobalPosition, InvalidInput, Metadata, RecordedEvent, Snapshot,
    StreamId, Tag, Version,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// A value read from the database that the schema should have made impossible.
fn corrupt(what: String) -> EventStoreError {
    EventStoreError::backend("decode a row of the SQLite event store", format!("{what}; the database is damaged"))
}

fn column<'r, T>(row: &'r SqliteRow, index: usize) -> Result<T, EventStoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(index).map_err(|e| EventStoreError::backend("decode a row of the SQLite event store", e))
}

/// A version or position stored as INTEGER.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, EventStoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative {what} {value}")))
}

/// A version or position to bind; SQLite integers are signed 64-bit.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, EventStoreError> {
    i64::try_from(value)
        .map_err(|_| InvalidInput::Other(format!("{what} {value} is larger than SQLite can store (2^63 - 1)")).into())
}

/// Microseconds since the Unix epoch: how times are stored.
pub(crate) fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn from_micros(micros: i64, what: &str) -> Result<DateTime<Utc>, EventStoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt(format!("{what} {micros} is out of range")))
}

fn codec(row: &SqliteRow, index: usize) -> Result<CodecId, EventStoreError> {
    let name: &str = column(row, index)?;
    Ok(name.parse::<CodecId>()?)
}

/// Where a decoded event's stream id comes from.
#[derive(Clone)]
pub(crate) enum StreamColumn<'a> {
    /// The caller knows it (a stream read): no column, no validation per row.
    Known(&'a StreamId),
    /// Read it from column 12 (a global-log read, a read by query, an id lookup).
    InRow,
}

/// The columns of an event row, whichever driver read it: sqlx (the write connection, and every read
/// of an in-memory store) or rusqlite ([`crate::readers`]). One decoder for both.
pub(crate) trait Columns {
    /// An INTEGER column.
    fn integer(&self, index: usize) -> Result<i64, EventStoreError>;
    /// A TEXT column, `None` for NULL.
    fn text(&self, index: usize) -> Result<Option<&str>, EventStoreError>;
    /// A BLOB column, `None` for NULL.
    fn blob(&self, index: usize) -> Result<Option<&[u8]>, EventStoreError>;
}

impl Columns for SqliteRow {
    fn integer(&self, index: usize) -> Result<i64, EventStoreError> {
        column(self, index)
    }

    fn text(&self, index: usize) -> Result<Option<&str>, EventStoreError> {
        column(self, index)
    }

    fn blob(&self, index: usize) -> Result<Option<&[u8]>, EventStoreError> {
        column(self, index)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn integer(&self, index: usize) -> Result<i64, EventStoreError> {
        self.get_ref(index).and_then(|v| Ok(v.as_i64()?)).map_err(read_error)
    }

    fn text(&self, index: usize) -> Result<Option<&str>, EventStoreError> {
        self.get_ref(index).and_then(|v| Ok(v.as_str_or_null()?)).map_err(read_error)
    }

    fn blob(&self, index: usize) -> Result<Option<&[u8]>, EventStoreError> {
        self.get_ref(index).and_then(|v| Ok(v.as_blob_or_null()?)).map_err(read_error)
    }
}

fn read_error(error: rusqlite::Error) -> EventStoreError {
    EventStoreError::backend("decode a row of the SQLite event store", error)
}

fn required<'r, T: ?Sized>(value: Option<&'r T>, what: &str) -> Result<&'r T, EventStoreError> {
    value.ok_or_else(|| corrupt(format!("{what} is NULL")))
}

fn uuid(bytes: &[u8], what: &str) -> Result<Uuid, EventStoreError> {
    Uuid::from_slice(bytes).map_err(|_| corrupt(format!("{what} has {} bytes, not 16", bytes.len())))
}

/// Decodes a row selected with the `event_columns!` list of [`crate::sql`]; event type names come through
/// `types`, so a read allocates each distinct name once.
pub(crate) fn event(
    row: &impl Columns,
    stream: StreamColumn<'_>,
    types: &mut EventTypeCache,
) -> Result<RecordedEvent, EventStoreError> {
    let stream_id = match stream {
        StreamColumn::Known(id) => id.clone(),
        StreamColumn::InRow => {
            let raw = required(row.text(12)?, "stream_id")?;
            StreamId::new(raw).map_err(|e| corrupt(format!("stored stream id is invalid: {e}")))?
        }
    };
    let optional_uuid = |index, what| row.blob(index)?.map(|bytes| uuid(bytes, what)).transpose();
    Ok(RecordedEvent {
        id: EventId::from(uuid(required(row.blob(10)?, "event_id")?, "event_id")?),
        stream_id,
        position: GlobalPosition::new(to_u64(row.integer(0)?, "global position")?),
        version: Version::new(to_u64(row.integer(1)?, "version")?),
        event_type: types.get(required(row.text(2)?, "event_type")?),
        codec: required(row.text(3)?, "codec")?.parse::<CodecId>()?,
        payload: Bytes::copy_from_slice(required(row.blob(4)?, "payload")?),
        metadata: Metadata {
            correlation_id: optional_uuid(5, "correlation_id")?,
            causation_id: optional_uuid(6, "causation_id")?,
            actor: row.text(7)?.map(str::to_owned),
            extra: row.text(8)?.map(str::to_owned),
        },
        recorded_at: from_micros(row.integer(9)?, "recorded_at")?,
        tags: decode_tags(row.text(11)?)?,
    })
}

/// What separates the tags of an event in `events.tags`: U+001F, a control character, which
/// [`Tag::validate`] refuses inside a tag.
const TAG_SEPARATOR: char = '\u{1f}';

/// The `events.tags` value of an event: its tags in order, joined by [`TAG_SEPARATOR`]; `None` (NULL)
/// when it has none. The tags were validated, so none is empty or holds the separator.
pub(crate) fn encode_tags(tags: &[Tag]) -> Option<String> {
    let (first, rest) = tags.split_first()?;
    let mut text = String::with_capacity(tags.iter().map(|t| t.as_str().len() + 1).sum());
    text.push_str(first.as_str());
    for tag in rest {
        text.push(TAG_SEPARATOR);
        text.push_str(tag.as_str());
    }
    Some(text)
}

fn decode_tags(stored: Option<&str>) -> Result<Vec<Tag>, EventStoreError> {
    let Some(stored) = stored else { return Ok(Vec::new()) };
    stored
        .split(TAG_SEPARATOR)
        .map(|tag| {
            if tag.is_empty() {
                Err(corrupt(format!("stored tags {stored:?} hold an empty tag")))
            } else {
                Ok(Tag::new(tag))
            }
        })
        .collect()
}

/// Decodes a row of [`crate::sql::LOAD_SNAPSHOT`].
pub(crate) fn snapshot(row: &SqliteRow, stream_id: &StreamId) -> Result<Snapshot, EventStoreError> {
    let schema_version: i64 = column(row, 1)?;
    Ok(Snapshot {
        stream_id: stream_id.clone(),
        version: Version::new(to_u64(column(row, 0)?, "snapshot version")?),
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("snapshot schema version {schema_version} is out of range")))?,
        codec: codec(row, 2)?,
        payload: column(row, 3)?,
        taken_at: from_micros(column(row, 4)?, "snapshot taken_at")?,
    })
}

/// Decodes a row of [`crate::sql::LOAD_SNAPSHOTS`] into the snapshot of the stream of `asked` it names
/// (`None` for a stream not asked for).
pub(crate) fn asked_snapshot(
    row: &SqliteRow,
    asked: &HashMap<&str, &StreamId>,
) -> Result<Option<Snapshot>, EventStoreError> {
    let raw: &str = column(row, 5)?;
    asked.get(raw).map(|stream_id| snapshot(row, stream_id)).transpose()
}

/// Decodes a row of [`crate::sql::LIST_STREAMS`].
pub(crate) fn stream_info(row: &SqliteRow) -> Result<composable_rust_core::StreamInfo, EventStoreError> {
    let raw: &str = column(row, 0)?;
    Ok(composable_rust_core::StreamInfo {
        stream_id: StreamId::new(raw).map_err(|e| corrupt(format!("stored stream id is invalid: {e}")))?,
        version: Version::new(to_u64(column(row, 1)?, "stream version")?),
    })
}

pub(crate) use composable_rust_core::backend::prefix_end;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_their_stored_text_in_order() {
        for tags in [
            vec![],
            vec![Tag::new("course:c1")],
            vec![Tag::new("b"), Tag::new("a"), Tag::new("b"), Tag::new("ünï cødé: \"quoted\", [1] ; DROP")],
        ] {
            let stored = encode_tags(&tags);
            assert_eq!(stored.is_none(), tags.is_empty(), "NULL exactly when there are no tags");
            assert_eq!(decode_tags(stored.as_deref()).unwrap(), tags);
        }
        assert!(decode_tags(Some("a\u{1f}\u{1f}b")).is_err(), "an empty tag is damage, not data");
    }

    #[test]
    fn times_round_trip_at_microsecond_precision() {
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        assert_eq!(from_micros(to_micros(now), "t").unwrap(), now);
    }
}
