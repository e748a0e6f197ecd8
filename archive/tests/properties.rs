//! Invariants of the archive, over generated logs: export then import gives back every event exactly (payload
//! bytes, metadata, tags, times, order), and an archive cut anywhere is refused, never accepted or panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use chrono::{DateTime, Utc};
use composable_rust_archive::{ReadLimits, Selection, export, import, verify};
use composable_rust_core::backend::EventLog as _;
use composable_rust_core::{
    CodecId, EventId, EventStore, GlobalPosition, LogFilter, Metadata, RecordedEvent, StreamId, Tag, Version,
};
use composable_rust_memory::InMemoryEventStore;
use proptest::prelude::*;

/// One generated event: stream (0..3), codec, payload bytes (JSON-looking or arbitrary), metadata, tags, time.
fn events() -> impl Strategy<Value = Vec<(u8, bool, Vec<u8>, Option<String>, Vec<String>, i64)>> {
    let payload = prop_oneof![
        any::<Vec<u8>>(),
        "[ -~\n]{0,40}".prop_map(String::into_bytes),
        (any::<i32>(), "[a-z\n ]{0,10}").prop_map(|(n, s)| format!(r#"{{"n":{n},"s":{s:?}}}"#).into_bytes()),
    ];
    let event = (
        0..3_u8,
        any::<bool>(),
        payload,
        proptest::option::of("[a-z]{1,8}"),
        prop::collection::vec("[a-z:0-9]{1,12}", 0..3),
        0..4_000_000_000_i64,
    );
    prop::collection::vec(event, 1..40)
}

fn log(generated: &[(u8, bool, Vec<u8>, Option<String>, Vec<String>, i64)]) -> Vec<RecordedEvent> {
    let mut versions = [0_u64; 3];
    generated
        .iter()
        .enumerate()
        .map(|(i, (stream, json, payload, actor, tags, seconds))| {
            versions[usize::from(*stream)] += 1;
            RecordedEvent {
                id: EventId::generate(),
                stream_id: StreamId::new(format!("s-{stream}")).unwrap(),
                version: Version::new(versions[usize::from(*stream)]),
                position: GlobalPosition::new(u64::try_from(i).unwrap() + 1),
                event_type: "Generated.v1".into(),
                codec: if *json { CodecId::Json } else { CodecId::Bincode },
                payload: payload.clone().into(),
                metadata: Metadata { actor: actor.clone(), ..Metadata::default() },
                recorded_at: DateTime::<Utc>::from_timestamp_micros(seconds * 1_000_003).unwrap(),
                tags: tags.iter().map(|t| Tag::new(t.as_str())).collect(),
            }
        })
        .collect()
}

async fn all(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let events = store.read_all(GlobalPosition::START, &LogFilter::all(), usize::MAX).await.unwrap();
    events.into_iter().map(|e| RecordedEvent { position: GlobalPosition::START, ..e }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_gives_back_every_event_exactly(generated in events()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let source = InMemoryEventStore::new();
            source.import(log(&generated)).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.jsonl");
            export(&source, &Selection::All, tokio::fs::File::create(&path).await.unwrap(), |_| {}).await.unwrap();
            let target = InMemoryEventStore::new();
            import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap();
            assert_eq!(all(&target).await, all(&source).await);

            // Cut anywhere short of its end, the archive is refused with a line number.
            let bytes = std::fs::read(&path).unwrap();
            let cut = dir.path().join("cut.jsonl");
            for len in (0..bytes.len()).step_by(bytes.len() / 7 + 1).chain([bytes.len() - 1]) {
                std::fs::write(&cut, &bytes[..len]).unwrap();
                let error = verify(&cut, ReadLimits::default(), |_| {}).await.unwrap_err();
                assert!(error.line().is_some(), "cut at {len}: {error}");
            }
        });
    }
}
