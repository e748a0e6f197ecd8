//! Export, verify and import through in-memory stores, and what bad archives get: an error naming the line,
//! and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use composable_rust_archive::{ArchiveError, Problem, ReadLimits, Selection, VerifySummary, export, import, verify};
use composable_rust_core::backend::{EventLog as _, SnapshotStore as _, SubscriptionStore as _};
use composable_rust_core::{
    CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent, Snapshot,
    StreamId, Tag, Version,
};
use composable_rust_memory::InMemoryEventStore;

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

/// An event of each shape: inline JSON, JSON that must be base64 (pretty-printed), bincode, metadata, tags.
fn event(n: u64) -> NewEvent {
    let (codec, payload) = match n % 3 {
        0 => (CodecId::Json, format!(r#"{{"n":{n},"text":"line\nbreak é"}}"#).into_bytes()),
        1 => (CodecId::Json, format!("{{\n  \"n\": {n}\n}}").into_bytes()),
        _ => (CodecId::Bincode, n.to_le_bytes().to_vec()),
    };
    let metadata = if n % 2 == 0 {
        Metadata::correlated(uuid::Uuid::from_u128(u128::from(n) + 7))
            .with_actor("tester")
            .with_extra(&serde_json::json!({ "n": n }))
    } else {
        Metadata::default()
    };
    let tags = if n % 4 == 0 { vec![Tag::of("n", n), Tag::new("four")] } else { Vec::new() };
    NewEvent::new(format!("Noted{}.v1", n % 2), codec, payload, metadata).with_tags(tags)
}

/// A store with three interleaved streams of two categories, two snapshots and two checkpoints.
async fn populated() -> InMemoryEventStore {
    let store = InMemoryEventStore::new();
    for n in 0..30 {
        let id = match n % 3 {
            0 => stream("order-1"),
            1 => stream("order-2"),
            _ => stream("user-1"),
        };
        store.append(&id, ExpectedVersion::Any, vec![event(n)]).await.unwrap();
    }
    for (id, version) in [("order-1", 10), ("user-1", 4)] {
        let snapshot = Snapshot {
            stream_id: stream(id),
            version: Version::new(version),
            schema_version: 2,
            codec: CodecId::Bincode,
            payload: vec![1, 2, version as u8],
            taken_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        };
        store.save_snapshot(&snapshot).await.unwrap();
    }
    store.save_checkpoint("summaries", GlobalPosition::new(12)).await.unwrap();
    store.save_checkpoint("mailer", GlobalPosition::new(30)).await.unwrap();
    store
}

async fn export_to(store: &dyn EventStore, selection: &Selection, path: &Path) {
    let file = tokio::fs::File::create(path).await.unwrap();
    export(store, selection, file, |_| {}).await.unwrap();
}

fn placeless(events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    events.into_iter().map(|e| RecordedEvent { position: GlobalPosition::START, ..e }).collect()
}

async fn all_events(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.read_all(GlobalPosition::START, &LogFilter::all(), usize::MAX).await.unwrap()
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.jsonl");
    (dir, path)
}

#[tokio::test]
async fn an_archive_round_trips_every_field_snapshot_and_checkpoint() {
    let source = populated().await;
    let (_dir, path) = temp();
    export_to(&source, &Selection::All, &path).await;
    let summary = verify(&path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((summary.events, summary.streams, summary.snapshots, summary.checkpoints), (30, 3, 2, 2));
    assert_eq!(summary.header.source_backend, "in-memory");

    // Into a store that already holds another stream, so positions differ from the source's.
    let target = InMemoryEventStore::new();
    target.append(&stream("other-1"), ExpectedVersion::NoStream, vec![event(99)]).await.unwrap();
    let imported = import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((imported.written, imported.snapshots, imported.checkpoints), (30, 2, 2));
    let restored: Vec<RecordedEvent> =
        all_events(&target).await.into_iter().filter(|e| e.stream_id.as_str() != "other-1").collect();
    assert_eq!(placeless(restored.clone()), placeless(all_events(&source).await), "every field, in order");
    for id in ["order-1", "user-1"] {
        assert_eq!(target.load_snapshot(&stream(id)).await.unwrap(), source.load_snapshot(&stream(id)).await.unwrap());
    }
    // A checkpoint lands on the target position of the same event: position 12 of the source is event 12.
    let summaries = target.load_checkpoint("summaries").await.unwrap().unwrap();
    assert_eq!(summaries, restored[11].position, "the checkpoint follows its event to the new position");
    let mailer = target.load_checkpoint("mailer").await.unwrap().unwrap();
    assert_eq!(mailer, restored[29].position);

    // Export again: the same archive but for the header's time and the positions.
    let (_dir2, again) = temp();
    export_to(&target, &Selection::Category("order".into()), &again).await;
    let summary = verify(&again, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((summary.events, summary.streams, summary.snapshots, summary.checkpoints), (20, 2, 1, 0));
}

#[tokio::test]
async fn importing_again_or_after_a_partial_import_writes_each_event_once() {
    let source = populated().await;
    let (_dir, path) = temp();
    export_to(&source, &Selection::All, &path).await;
    let target = InMemoryEventStore::new();
    // A crash after the first 17 events: they are stored, the rest is not.
    let first: Vec<RecordedEvent> = all_events(&source).await.into_iter().take(17).collect();
    target.import(first).await.unwrap();
    let resumed = import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((resumed.archive.events, resumed.written), (30, 13), "the 17 stored events are not counted");
    let again = import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(placeless(all_events(&target).await), placeless(all_events(&source).await));
}

#[tokio::test]
async fn an_import_into_a_store_with_other_events_in_its_streams_names_the_line_and_writes_nothing_more() {
    let source = populated().await;
    let (_dir, path) = temp();
    export_to(&source, &Selection::All, &path).await;
    let target = InMemoryEventStore::new();
    target.append(&stream("user-1"), ExpectedVersion::NoStream, vec![event(99)]).await.unwrap();
    let error = import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap_err();
    // user-1's first event is the third event, on line 2 + 2 checkpoints + 3 = 5... the line of user-1 version 1.
    let ArchiveError::Store { line: Some(line), .. } = &error else { panic!("{error}") };
    let text = std::fs::read_to_string(&path).unwrap();
    let named = text.lines().nth(usize::try_from(*line).unwrap() - 1).unwrap();
    assert!(named.contains(r#""stream":"user-1","version":1"#), "line {line} is user-1's first event: {named}");
    assert!(error.to_string().contains(&format!("archive line {line}")), "{error}");
    assert_eq!(all_events(&target).await.len(), 1, "the failing batch wrote nothing");
}

#[tokio::test]
async fn exports_of_a_category_or_a_position_range_hold_only_those_events() {
    let source = populated().await;
    let (_dir, path) = temp();
    export_to(&source, &Selection::Category("user".into()), &path).await;
    let target = InMemoryEventStore::new();
    import(&target, &path, ReadLimits::default(), |_| {}).await.unwrap();
    assert!(all_events(&target).await.iter().all(|e| e.stream_id.as_str() == "user-1"));
    assert_eq!(all_events(&target).await.len(), 10);
    assert!(target.load_snapshot(&stream("user-1")).await.unwrap().is_some(), "a category keeps its snapshots");

    // An incremental backup: positions 20..=30 only, imported on top of a restore of 1..=20.
    let (_dir2, first) = temp();
    let (_dir3, second) = temp();
    export_to(&source, &Selection::Positions { after: 0, up_to: Some(20) }, &first).await;
    export_to(&source, &Selection::Positions { after: 20, up_to: None }, &second).await;
    let summary: VerifySummary = verify(&second, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((summary.events, summary.snapshots, summary.checkpoints), (10, 0, 0));
    let target = InMemoryEventStore::new();
    import(&target, &first, ReadLimits::default(), |_| {}).await.unwrap();
    import(&target, &second, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!(placeless(all_events(&target).await), placeless(all_events(&source).await));
}

/// The hand-written example archive (also the fuzzer's seed), changed on one line.
fn example_with(line: usize, edit: impl Fn(&str) -> String) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[line - 1] = edit(&lines[line - 1]);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Verifies `text` as an archive and imports it into an empty store: both must fail at `line` with a
/// problem that `expected` accepts, and the store must stay empty.
async fn assert_refused(text: &str, line: u64, expected: impl Fn(&Problem) -> bool, limits: ReadLimits) {
    let (_dir, path) = temp();
    std::fs::write(&path, text).unwrap();
    for error in [
        verify(&path, limits, |_| {}).await.unwrap_err(),
        import(&InMemoryEventStore::new(), &path, limits, |_| {}).await.unwrap_err(),
    ] {
        match &error {
            ArchiveError::Invalid { line: got, problem } => {
                assert_eq!(*got, line, "the error names the line: {error}");
                assert!(expected(problem), "unexpected problem: {error}");
                assert!(error.to_string().starts_with(&format!("line {line}: ")), "{error}");
            }
            other => panic!("expected a problem at line {line}, got {other}"),
        }
    }
    let store = InMemoryEventStore::new();
    let _ = import(&store, &path, limits, |_| {}).await;
    assert!(all_events(&store).await.is_empty(), "a refused archive writes nothing");
    assert_eq!(store.list_checkpoints().await.unwrap(), Vec::new(), "not even a checkpoint");
}

#[tokio::test]
async fn the_example_archive_verifies() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid.jsonl");
    let summary = verify(&path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((summary.events, summary.snapshots, summary.checkpoints, summary.lines), (2, 1, 1, 6));
}

#[tokio::test]
async fn bad_archives_get_an_error_naming_the_line_and_write_nothing() {
    let limits = ReadLimits::default();
    let full = example_with(1, str::to_owned);
    // Truncated: the trailer missing, or the last line cut.
    let without_trailer: String = full.lines().take(5).map(|l| format!("{l}\n")).collect();
    assert_refused(&without_trailer, 6, |p| *p == Problem::MissingTrailer, limits).await;
    assert_refused(&full[..full.len() - 10], 6, |p| *p == Problem::TruncatedLine, limits).await;
    // Not an archive at all.
    assert_refused("hello\n", 1, |p| *p == Problem::MissingHeader, limits).await;
    assert_refused(
        &example_with(1, |l| l.replace(r#""version":1"#, r#""version":2"#)),
        1,
        |p| matches!(p, Problem::UnsupportedVersion { found: 2, .. }),
        limits,
    )
    .await;
    // Wrong types, unknown fields, bad values.
    assert_refused(
        &example_with(3, |l| l.replace(r#""version":1"#, r#""version":"one""#)),
        3,
        |p| matches!(p, Problem::Malformed(m) if m.contains("invalid type")),
        limits,
    )
    .await;
    assert_refused(
        &example_with(3, |l| l.replace(r#""codec":"json""#, r#""codec":"json","x":1"#)),
        3,
        |p| matches!(p, Problem::Malformed(m) if m.contains("unknown field")),
        limits,
    )
    .await;
    assert_refused(&example_with(4, |l| l.replace("AQID", "***")), 4, |p| matches!(p, Problem::Invalid(_)), limits)
        .await;
    assert_refused(
        &example_with(3, |l| l.replace(r#""stream":"order-1""#, r#""stream":"""#)),
        3,
        |p| matches!(p, Problem::Malformed(m) if m.contains("stream id")),
        limits,
    )
    .await;
    // Duplicate ids, versions out of order, positions out of order.
    assert_refused(
        &example_with(4, |l| l.replace("000000000002", "000000000001")),
        4,
        |p| matches!(p, Problem::DuplicateId { .. }),
        limits,
    )
    .await;
    assert_refused(
        &example_with(4, |l| l.replace(r#""version":2"#, r#""version":3"#)),
        4,
        |p| matches!(p, Problem::VersionOutOfOrder { version: 3, previous: 1, expected: 2, .. }),
        limits,
    )
    .await;
    assert_refused(
        &example_with(4, |l| l.replace(r#""position":2"#, r#""position":1"#)),
        4,
        |p| matches!(p, Problem::PositionOutOfOrder { position: 1, previous: 1 }),
        limits,
    )
    .await;
    // Lines out of place, a snapshot ahead of its stream.
    assert_refused(
        &example_with(5, |_| r#"{"checkpoint":{"handler":"late","position":1}}"#.into()),
        5,
        |p| matches!(p, Problem::OutOfPlace { kind: "checkpoint", .. }),
        limits,
    )
    .await;
    assert_refused(
        &example_with(5, |l| l.replace(r#""version":2"#, r#""version":3"#)),
        5,
        |p| matches!(p, Problem::SnapshotAhead { version: 3, archived: 2, .. }),
        limits,
    )
    .await;
    // A wrong checksum, wrong counts, something after the trailer.
    assert_refused(
        &example_with(3, |l| l.replace(r#""customer":"ada""#, r#""customer":"bob""#)),
        6,
        |p| matches!(p, Problem::ChecksumMismatch { .. }),
        limits,
    )
    .await;
    assert_refused(
        &example_with(6, |l| l.replace(r#""events":2"#, r#""events":3"#)),
        6,
        |p| matches!(p, Problem::CountMismatch { kind: "event", stated: 3, found: 2 }),
        limits,
    )
    .await;
    assert_refused(&format!("{full}{{}}\n"), 7, |p| *p == Problem::AfterTrailer, limits).await;
    // A huge line is refused after reading no more than the limit.
    let huge =
        example_with(3, |l| l.replace(r#""customer":"ada""#, &format!(r#""customer":"{}""#, "a".repeat(10_000))));
    assert_refused(&huge, 3, |p| *p == Problem::LineTooLong { limit: 4096 }, ReadLimits { max_line_bytes: 4096 }).await;
}
