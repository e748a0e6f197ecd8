//! The log the archive benchmarks and the profiling example export and import: the shape of the round trip
//! in `tests/round_trip.rs` (1000 streams interleaved, payloads of about 100 bytes, JSON and bincode, metadata
//! on a third of the events and a tag on a fifth), snapshots for every third stream and two checkpoints.

use std::path::Path;

use composable_rust_archive::{Selection, export};
use composable_rust_core::{
    AtomicAppend, CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, Snapshot,
    StreamId, Tag, Version,
};
use composable_rust_memory::InMemoryEventStore;

/// Streams of the log.
pub(crate) const STREAMS: u64 = 1000;

/// Events per stream per round: one atomic append is 100 streams of this many events.
const PER_ROUND: u64 = 10;

/// Event `n` of stream `s`: about 100 bytes of payload, JSON or bincode, some with metadata and tags.
fn event(s: u64, n: u64) -> NewEvent {
    let (codec, payload) = if n % 2 == 0 {
        (CodecId::Json, format!(r#"{{"stream":{s},"n":{n},"note":"{}"}}"#, "x".repeat(60)).into_bytes())
    } else {
        (CodecId::Bincode, [s.to_le_bytes(), n.to_le_bytes()].concat().repeat(6))
    };
    let metadata = if n % 3 == 0 {
        Metadata::correlated(uuid::Uuid::from_u128(u128::from(s))).with_actor(format!("user-{}", s % 7))
    } else {
        Metadata::default()
    };
    let tags = if n % 5 == 0 { vec![Tag::of("stream", s)] } else { Vec::new() };
    NewEvent::new(if n % 2 == 0 { "Noted.v1" } else { "Counted.v2" }, codec, payload, metadata).with_tags(tags)
}

fn stream(s: u64) -> StreamId {
    StreamId::for_entity(if s % 2 == 0 { "order" } else { "user" }, s).unwrap()
}

/// Writes an archive of `events` events (a multiple of 10,000) to `path`, from an in-memory store.
pub(crate) async fn write_archive(path: &Path, events: u64) {
    let memory = InMemoryEventStore::new();
    let store: &dyn EventStore = &memory;
    for round in 0..events / (STREAMS * PER_ROUND) {
        for group in 0..STREAMS / 100 {
            let mut append = AtomicAppend::new();
            for s in group * 100..(group + 1) * 100 {
                let batch = (0..PER_ROUND).map(|i| event(s, round * PER_ROUND + i)).collect();
                append = append.stream(stream(s), ExpectedVersion::Exact(Version::new(round * PER_ROUND)), batch);
            }
            store.append_atomic(append).await.unwrap();
        }
    }
    for s in (0..STREAMS).step_by(3) {
        let snapshot = Snapshot {
            stream_id: stream(s),
            version: Version::new(1 + s % PER_ROUND),
            schema_version: 3,
            codec: if s % 2 == 0 { CodecId::Json } else { CodecId::Bincode },
            payload: format!(r#"{{"s":{s}}}"#).into_bytes(),
            taken_at: chrono::Utc::now(),
        };
        store.save_snapshot(&snapshot).await.unwrap();
    }
    let last = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
    store.save_checkpoint("summaries", last[9].position).await.unwrap();
    store.save_checkpoint("search", GlobalPosition::new(events)).await.unwrap();
    let file = tokio::fs::File::create(path).await.unwrap();
    let summary = export(store, &Selection::All, file, |_| {}).await.unwrap();
    assert_eq!(summary.events, events);
}
