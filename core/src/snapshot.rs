//! [`Snapshot`]: the cached state of an aggregate at a version, so loading need not replay every event.

use chrono::{DateTime, Utc};

use crate::codec::CodecId;
use crate::stream::{StreamId, Version};

/// The latest saved state of one stream. Each stream has at most one; saving replaces it.
///
/// Snapshots are a cache: one that fails to decode, or whose `schema_version` is older than the state
/// type's, is ignored and the state is rebuilt from the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream whose state this is.
    pub stream_id: StreamId,
    /// The stream version the state reflects (every event up to and including it was applied).
    pub version: Version,
    /// The schema version of the state type that was encoded.
    pub schema_version: u32,
    /// The codec that wrote `payload`.
    pub codec: CodecId,
    /// The encoded state.
    pub payload: Vec<u8>,
    /// When the snapshot was taken.
    pub taken_at: DateTime<Utc>,
}
