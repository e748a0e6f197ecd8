//! Fuzzes what `FileEventStore::open` does with the newest segment of a directory: whatever its bytes,
//! the open either succeeds with a consistent log that takes appends and reopens the same, or fails with
//! an error naming the file and leaves the file untouched. It never panics, and a line longer than the
//! limit is never held in memory.
//!
//! The first input byte picks the shape: odd, the rest follows a valid segment of three commits (so the
//! fuzzer works on tails after committed data, and the three committed events must survive any open that
//! succeeds); even, the rest is the whole segment.
#![no_main]

use std::sync::LazyLock;

use composable_rust_core::backend::{EventLog, StoreLifecycle};
use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, SchemaError, StreamId,
};
use composable_rust_file::{Durability, FileConfig, FileEventStore};
use libfuzzer_sys::fuzz_target;

const SEGMENT: &str = "events-00000000000000000001.jsonl";

/// A valid segment of three commits (positions 1 to 4), written once by the store itself.
static PREFIX: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let dir = scratch();
    RUNTIME.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        let stream = StreamId::new("order-1").unwrap();
        for count in [2, 1, 1] {
            let events = (0..count).map(|_| event()).collect();
            store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
        }
        store.close().await.unwrap();
    });
    std::fs::read(dir.path().join(SEGMENT)).unwrap()
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().unwrap());

fn config() -> FileConfig {
    let mut config = FileConfig::default();
    config.durability = Durability::Normal;
    config.max_line_len = 4096;
    config
}

fn event() -> NewEvent {
    NewEvent::new("Noted.v1", CodecId::Json, b"{\"n\":1}".to_vec(), Metadata::default())
}

/// A directory in memory when the machine has one, so that the flushes cost nothing.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else { return };
    let after_commits = shape & 1 == 1;
    let mut segment = if after_commits { PREFIX.clone() } else { Vec::new() };
    segment.extend_from_slice(rest);
    let dir = scratch();
    let path = dir.path().join(SEGMENT);
    std::fs::write(&path, &segment).unwrap();

    RUNTIME.block_on(async {
        match FileEventStore::open_with(dir.path(), config()).await {
            Ok(store) => {
                let all = store.read_all(GlobalPosition::START, &LogFilter::all(), usize::MAX).await.unwrap();
                for (number, event) in all.iter().enumerate() {
                    assert_eq!(event.position.get(), number as u64 + 1, "positions are dense");
                    let earlier = all[..number].iter().filter(|e| e.stream_id == event.stream_id).count();
                    assert_eq!(event.version.get(), earlier as u64 + 1, "versions are dense");
                }
                if after_commits {
                    assert!(all.len() >= 4, "the committed prefix survives an open that succeeds");
                }
                let stream = StreamId::new("fuzz-1").unwrap();
                store.append(&stream, ExpectedVersion::Any, vec![event()]).await.unwrap();
                store.close().await.unwrap();
                drop(store);
                let reopened = FileEventStore::open_with(dir.path(), config()).await.unwrap();
                let again = reopened.read_all(GlobalPosition::START, &LogFilter::all(), usize::MAX).await.unwrap();
                assert_eq!(again.len(), all.len() + 1, "a reopen sees the recovered log and the new append");
            }
            Err(EventStoreError::Schema(SchemaError::Unreadable { location, .. })) => {
                assert!(location.contains(SEGMENT), "the error names the segment: {location}");
                assert_eq!(std::fs::read(&path).unwrap(), segment, "a refused open leaves the file as it was");
            }
            Err(other) => panic!("an open fails only with Unreadable, got {other:?}"),
        }
    });
});
