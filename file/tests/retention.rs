//! The retention suite against `FileEventStore`, and removals surviving a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::{EventLog, EventRetention, StoreLifecycle};
use composable_rust_core::{
    CodecId, ExpectedVersion, Metadata, NewEvent, RemovalBatch, RetentionRunId, StreamId, StreamRange, StreamRemoval,
    Version,
};
use composable_rust_file::FileEventStore;
use composable_rust_testing::conformance::StoreUnderTest;

async fn file_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("events")).await.unwrap();
    StoreUnderTest::new(store).with_guard(dir)
}

composable_rust_testing::retention_suite_tests!(file_store);

#[tokio::test]
async fn removals_and_their_audit_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events");
    let stream = StreamId::new("audit-1").unwrap();
    {
        let store = FileEventStore::open(&path).await.unwrap();
        let events = (0..3).map(|_| NewEvent::new("Seen.v1", CodecId::Json, b"{}".to_vec(), Metadata::default()));
        store.append(&stream, ExpectedVersion::NoStream, events.collect()).await.unwrap();
        let batch = RemovalBatch {
            run: RetentionRunId::generate(),
            actor: "operator".into(),
            policy: "by hand".into(),
            archive: Some("a.jsonl".into()),
            streams: vec![StreamRemoval {
                stream_id: stream.clone(),
                versions: vec![Version::new(1), Version::new(2)],
                replay_free: true,
            }],
        };
        assert_eq!(store.remove_events(&batch).await.unwrap().removed, 2);
        store.close().await.unwrap();
    }
    let store = FileEventStore::open(&path).await.unwrap();
    let left = store.load_stream(&stream, StreamRange::all()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.version.get()).collect::<Vec<_>>(), vec![3]);
    assert_eq!(store.stream_version(&stream).await.unwrap(), Version::new(3));
    assert_eq!(store.first_retained_version(&stream).await.unwrap(), Some(Version::new(3)));
    let runs = store.retention_runs().await.unwrap();
    assert_eq!((runs.len(), runs[0].events_removed, runs[0].archive.as_deref()), (1, 2, Some("a.jsonl")));
}
