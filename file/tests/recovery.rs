//! Opening a store directory that a crash, a full disk or a person left behind: torn tails are cut, other
//! damage is refused with an error naming the file and line, and a refused open changes no file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed step fails the test")]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use composable_rust_core::backend::{EventLog, SnapshotStore, StoreLifecycle, SubscriptionStore};
use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, SchemaError, Snapshot,
    StreamId, StreamRange, Version,
};
use composable_rust_file::{Durability, FileConfig, FileEventStore};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Noted.v1", CodecId::Json, format!("{{\"n\":{n}}}").into_bytes(), Metadata::default())
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn config() -> FileConfig {
    let mut config = FileConfig::default();
    config.durability = Durability::Normal;
    config
}

/// The plain (open) segments of `dir`, oldest first.
fn plain_segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_str().unwrap().starts_with("events-") && p.extension().unwrap() == "jsonl"
        })
        .collect();
    found.sort();
    found
}

/// Every file of `dir` with its bytes, to check that a refused open changed nothing.
fn snapshot_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
    files.sort();
    files
}

/// Appends `batches` (stream, number of events) to a fresh store in `dir` and returns the length of the
/// segment after each commit.
async fn write_batches(dir: &Path, batches: &[(&str, u64)]) -> Vec<u64> {
    let store = FileEventStore::open_with(dir, config()).await.unwrap();
    let mut ends = Vec::new();
    let mut n = 0;
    for (name, count) in batches {
        let events = (0..*count).map(|i| event(n + i)).collect();
        n += count;
        store.append(&stream(name), ExpectedVersion::Any, events).await.unwrap();
        ends.push(fs::metadata(&plain_segments(dir)[0]).unwrap().len());
    }
    store.close().await.unwrap();
    ends
}

async fn all_events(store: &FileEventStore) -> Vec<composable_rust_core::RecordedEvent> {
    store.read_all(GlobalPosition::START, &LogFilter::all(), usize::MAX).await.unwrap()
}

#[track_caller]
fn assert_unreadable(result: Result<FileEventStore, EventStoreError>, file: &str, line: Option<usize>, says: &str) {
    match result {
        Err(EventStoreError::Schema(SchemaError::Unreadable { location, problem })) => {
            assert!(location.contains(file), "the error names the file {file}: {location}");
            if let Some(line) = line {
                assert!(location.ends_with(&format!(" line {line}")), "the error names line {line}: {location}");
            }
            assert!(problem.contains(says), "the error says {says:?}: {problem}");
        }
        other => panic!("expected an Unreadable error naming {file}, got {other:?}"),
    }
}

#[test]
fn a_cut_anywhere_inside_the_last_commit_loses_only_that_commit() {
    let runtime = runtime();
    let source = tempfile::tempdir().unwrap();
    let ends = runtime.block_on(write_batches(source.path(), &[("a-1", 2), ("b-1", 1), ("a-1", 3)]));
    let segment = plain_segments(source.path())[0].clone();
    let bytes = fs::read(&segment).unwrap();
    assert_eq!(*ends.last().unwrap(), bytes.len() as u64);
    let last_commit_start = usize::try_from(ends[1]).unwrap();
    // Every third byte (each cut costs a flush), and the last two: the newline and past it.
    let cuts = (last_commit_start..bytes.len()).step_by(3).chain([bytes.len() - 1, bytes.len()]);
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(segment.file_name().unwrap());
        fs::write(&copy, &bytes[..cut]).unwrap();
        runtime.block_on(async {
            let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
            let expected = if cut == bytes.len() { 6 } else { 3 };
            assert_eq!(all_events(&store).await.len(), expected, "cut at byte {cut}");
            assert_eq!(fs::metadata(&copy).unwrap().len(), if cut == bytes.len() { ends[2] } else { ends[1] });
            if cut % 16 != 0 && cut != last_commit_start && cut + 1 < bytes.len() {
                return; // appending after the cut is checked on a sample of cuts: each costs flushes
            }
            // The store goes on from the recovered state, and a reopen sees the same.
            let next = store.append(&stream("a-1"), ExpectedVersion::Any, vec![event(99)]).await.unwrap();
            assert_eq!(next.positions, vec![GlobalPosition::new(expected as u64 + 1)]);
            store.close().await.unwrap();
            drop(store);
            let reopened = FileEventStore::open_with(dir.path(), config()).await.unwrap();
            assert_eq!(all_events(&reopened).await.len(), expected + 1, "cut at byte {cut}, after a reopen");
        });
    }
}

#[test]
fn a_segment_cut_inside_its_header_is_started_again() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("events-00000000000000000001.jsonl"), b"{\"format\":\"composable-rust-fi").unwrap();
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        store.append(&stream("a-1"), ExpectedVersion::NoStream, vec![event(1)]).await.unwrap();
        store.close().await.unwrap();
        drop(store);
        let reopened = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        assert_eq!(reopened.stream_version(&stream("a-1")).await.unwrap(), Version::new(1));
    });
}

/// Writes a store of three commits and returns its directory and segment.
fn three_commits(runtime: &tokio::runtime::Runtime) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(write_batches(dir.path(), &[("a-1", 2), ("b-1", 1), ("a-1", 3)]));
    let segment = plain_segments(dir.path())[0].clone();
    (dir, segment)
}

/// Replaces line `number` (1-based) of `path` with `replacement(old line)`.
fn edit_line(path: &Path, number: usize, replacement: impl Fn(&str) -> String) {
    let text = fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| if i + 1 == number { replacement(line) } else { line.to_owned() })
        .collect();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A change to one line of a segment.
type Edit = Box<dyn Fn(&str) -> String>;

#[test]
fn damage_before_a_later_commit_is_refused_naming_the_line_and_changes_nothing() {
    let runtime = runtime();
    // Line 1 is the header; lines 2-3 the first commit, 4 the second, 5-7 the third.
    let cases: Vec<(usize, Edit, &str)> = vec![
        (3, Box::new(|_| "{\"position\":".to_owned()), "is not an event line"),
        (2, Box::new(|l| l.replace("\"version\":1", "\"version\":\"one\"")), "is not an event line"),
        (4, Box::new(|l| l.replace("\"version\":1", "\"version\":2")), "where version 1 comes next"),
        (3, Box::new(|l| l.replace("\"position\":2", "\"position\":9")), "where position 2 comes next"),
        (5, Box::new(|l| l.replace("\"version\":3", "\"version\":5")), "where version 3 comes next"),
        (3, Box::new(|l| l.replace("\"commit\":2", "\"commit\":5")), "closes a commit of 5 events"),
        (4, Box::new(|l| l.replace("\"stream\":\"b-1\"", "\"stream\":\" b\"")), "stream id"),
        (2, Box::new(|l| l.replace("\"codec\":\"json\"", "\"codec\":\"yaml\"")), "is not an event line"),
        (4, Box::new(|l| format!("{}x", l)), "is not an event line"),
        (3, Box::new(|l| format!("{l} {}", " ".repeat(300))), "longer than the limit of 256 bytes"),
    ];
    for (line, edit, says) in cases {
        let (dir, segment) = three_commits(&runtime);
        edit_line(&segment, line, edit);
        let before = snapshot_of(dir.path());
        let mut small_lines = config();
        small_lines.max_line_len = 256;
        let opened = runtime.block_on(FileEventStore::open_with(dir.path(), small_lines));
        assert_unreadable(opened, "events-00000000000000000001.jsonl", Some(line), says);
        assert_eq!(snapshot_of(dir.path()), before, "a refused open changes no file ({says})");
    }
}

#[test]
fn an_id_stored_twice_is_refused() {
    let runtime = runtime();
    let (dir, segment) = three_commits(&runtime);
    let text = fs::read_to_string(&segment).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let id_of = |line: &str| line.split("\"id\":\"").nth(1).unwrap()[..36].to_owned();
    let (first, fourth) = (id_of(lines[1]), id_of(lines[4]));
    edit_line(&segment, 5, |l| l.replace(&fourth, &first));
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), config()));
    assert_unreadable(opened, "events-", Some(5), "repeats event id");
}

#[test]
fn a_header_of_another_format_or_a_gap_between_segments_is_refused() {
    let runtime = runtime();
    let (dir, segment) = three_commits(&runtime);
    edit_line(&segment, 1, |l| l.replace("\"version\":1", "\"version\":7"));
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), config()));
    assert_unreadable(opened, "events-", Some(1), "segment format version 7");

    let (dir, segment) = three_commits(&runtime);
    let renamed = dir.path().join("events-00000000000000000005.jsonl");
    edit_line(&segment, 1, |l| l.replace("\"first_position\":1", "\"first_position\":5"));
    fs::rename(&segment, &renamed).unwrap();
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), config()));
    assert_unreadable(opened, "events-00000000000000000005.jsonl", None, "a segment is missing");

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("events-00000000000000000001.jsonl"), b"PK\x03\x04 not a segment\n").unwrap();
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), config()));
    assert_unreadable(opened, "events-", Some(1), "not a segment of this store");
}

/// A store of `commits` two-event commits to `a-1` in 512-byte segments, closed (so every closed segment
/// is compressed), and the settings it was written with.
fn small_segments(runtime: &tokio::runtime::Runtime, commits: u64) -> (tempfile::TempDir, FileConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut small = config();
    small.segment_size = 512;
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), small.clone()).await.unwrap();
        for n in 0..commits {
            store.append(&stream("a-1"), ExpectedVersion::Any, vec![event(n), event(n + 100)]).await.unwrap();
        }
        store.close().await.unwrap(); // waits for the compressions
    });
    (dir, small)
}

#[test]
fn closed_segments_are_compressed_read_back_and_must_be_whole() {
    let runtime = runtime();
    let (dir, small) = small_segments(&runtime, 40);
    let names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let compressed: Vec<&String> = names.iter().filter(|n| n.ends_with(".jsonl.gz")).collect();
    assert!(compressed.len() >= 5, "closed segments are compressed: {names:?}");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("events-") && n.ends_with(".jsonl")).count(),
        1,
        "one open segment: {names:?}"
    );
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), small.clone()).await.unwrap();
        let events = store.load_stream(&stream("a-1"), StreamRange::all()).await.unwrap();
        assert_eq!(events.len(), 80);
        assert_eq!(&events[79].payload[..], b"{\"n\":139}");
    });

    // A compressed segment cut short is damage, not a torn tail: closed segments are whole by construction.
    let mut sorted: Vec<&String> = compressed.clone();
    sorted.sort();
    let victim = dir.path().join(sorted[1]);
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), small));
    assert_unreadable(opened, sorted[1], None, "");
}

#[test]
fn an_interrupted_compression_is_tidied_and_finished_on_open() {
    let runtime = runtime();
    let (dir, small) = small_segments(&runtime, 10);
    let first_gz = dir.path().join("events-00000000000000000001.jsonl.gz");
    let first_plain = dir.path().join("events-00000000000000000001.jsonl");
    // As if the process died after the rename and before deleting the plain copy, while a second
    // compression had written only part of its temporary file.
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(fs::File::open(&first_gz).unwrap()), &mut plain)
        .unwrap();
    fs::write(&first_plain, &plain).unwrap();
    fs::File::create(dir.path().join("events-00000000000000000003.jsonl.gz.tmp"))
        .unwrap()
        .write_all(b"\x1f\x8b")
        .unwrap();
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), small).await.unwrap();
        assert_eq!(all_events(&store).await.len(), 20);
        store.close().await.unwrap();
    });
    assert!(!first_plain.exists(), "the plain copy of a compressed segment is deleted");
    assert!(!dir.path().join("events-00000000000000000003.jsonl.gz.tmp").exists(), "a partial .gz.tmp is deleted");
}

#[test]
fn an_event_longer_than_the_line_limit_is_invalid_input_and_writes_nothing() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut limited = config();
    limited.max_line_len = 1024;
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), limited).await.unwrap();
        let small = event(1);
        let huge = NewEvent::new("Noted.v1", CodecId::Bincode, vec![1; 2000], Metadata::default());
        let refused = store.append(&stream("a-1"), ExpectedVersion::Any, vec![small, huge]).await;
        assert!(
            matches!(&refused, Err(EventStoreError::InvalidInput(e)) if e.to_string().contains("max_line_len")),
            "{refused:?}"
        );
        assert!(all_events(&store).await.is_empty(), "nothing of the batch is stored");
        assert_eq!(fs::read_to_string(&plain_segments(dir.path())[0]).unwrap().lines().count(), 1, "only the header");
    });
}

#[test]
fn a_second_store_on_the_directory_is_refused_until_the_first_closes() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let first = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        let second = FileEventStore::open_with(dir.path(), config()).await;
        match second {
            Err(error @ EventStoreError::InUse { .. }) => {
                let message = error.to_string();
                assert!(message.contains(&dir.path().display().to_string()), "{message}");
                assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        first.close().await.unwrap();
        let after_close = first.append(&stream("a-1"), ExpectedVersion::Any, vec![event(1)]).await;
        assert!(
            after_close.is_err_and(|e| e.to_string().contains("could not append")),
            "a closed store refuses appends"
        );
        assert!(first.health_check().await.is_err(), "a closed store is not healthy");
        let third = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        assert_eq!(third.health_check().await.unwrap().backend, "file");
    });
}

#[test]
fn snapshots_and_checkpoints_survive_a_reopen_and_a_torn_last_record() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = Snapshot {
        stream_id: stream("a-1"),
        version: Version::new(3),
        schema_version: 2,
        codec: CodecId::Bincode,
        payload: vec![0, 1, 2, 255],
        taken_at: chrono::Utc::now(),
    };
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        store.save_snapshot(&snapshot).await.unwrap();
        store.save_checkpoint("h", GlobalPosition::new(4)).await.unwrap();
        store.close().await.unwrap();
    });
    for file in ["snapshots.jsonl", "checkpoints.jsonl"] {
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(file))
            .unwrap()
            .write_all(b"{\"key\":\"x\",\"val")
            .unwrap();
    }
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        let loaded = store.load_snapshot(&stream("a-1")).await.unwrap().unwrap();
        assert_eq!(loaded.payload, snapshot.payload);
        assert_eq!((loaded.version, loaded.schema_version), (Version::new(3), 2));
        assert_eq!(store.load_checkpoint("h").await.unwrap(), Some(GlobalPosition::new(4)));
        // A later record still parses after the cut.
        store.save_checkpoint("h", GlobalPosition::new(9)).await.unwrap();
        store.close().await.unwrap();
        drop(store);
        let reopened = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        assert_eq!(reopened.load_checkpoint("h").await.unwrap(), Some(GlobalPosition::new(9)));
    });
    // Damage followed by a good record is not a torn write.
    let path = dir.path().join("checkpoints.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{{\"key\":\"h\",\"value\":\"nine\"}}\n{text}")).unwrap();
    let opened = runtime.block_on(FileEventStore::open_with(dir.path(), config()));
    assert_unreadable(opened, "checkpoints.jsonl", Some(1), "not a record");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the appends and wherever the segment is cut, a reopen holds exactly the commits that
    /// ended before the cut, at the same positions and versions.
    #[test]
    fn a_reopen_after_any_cut_holds_exactly_the_commits_before_it(
        batches in proptest::collection::vec((0_usize..3, 1_u64..5), 1..8),
        cut_fraction in 0.0_f64..=1.0,
    ) {
        let runtime = runtime();
        let dir = tempfile::tempdir().unwrap();
        let names = ["a-1", "b-1", "c-1"];
        let batches: Vec<(&str, u64)> = batches.iter().map(|&(s, n)| (names[s], n)).collect();
        let ends = runtime.block_on(write_batches(dir.path(), &batches));
        let segment = plain_segments(dir.path())[0].clone();
        let bytes = fs::read(&segment).unwrap();
        let cut = ((bytes.len() as f64) * cut_fraction) as usize;
        fs::write(&segment, &bytes[..cut]).unwrap();
        let whole = ends.iter().take_while(|&&end| end <= cut as u64).count();
        let expected: u64 = batches[..whole].iter().map(|(_, n)| n).sum();
        let events = runtime.block_on(async {
            let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
            all_events(&store).await
        });
        prop_assert_eq!(events.len() as u64, expected);
        let mut versions = std::collections::HashMap::new();
        for (number, event) in events.iter().enumerate() {
            prop_assert_eq!(event.position.get(), number as u64 + 1);
            let version = versions.entry(event.stream_id.clone()).or_insert(0_u64);
            *version += 1;
            prop_assert_eq!(event.version.get(), *version);
        }
    }
}

#[test]
fn imported_events_keep_their_times_across_a_reopen_and_stats_count_them() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let old = chrono::DateTime::parse_from_rfc3339("2020-02-03T04:05:06.123456Z").unwrap().with_timezone(&chrono::Utc);
    let imported: Vec<composable_rust_core::RecordedEvent> = (1..=3)
        .map(|version| {
            let event = event(version);
            composable_rust_core::RecordedEvent {
                id: event.id,
                stream_id: stream("old-1"),
                version: Version::new(version),
                position: GlobalPosition::new(1000 + version), // ignored: the store assigns its own
                event_type: event.event_type.as_str().into(),
                codec: event.codec,
                payload: event.payload.into(),
                metadata: event.metadata,
                recorded_at: old + chrono::Duration::seconds(i64::try_from(version).unwrap()),
                tags: vec![composable_rust_core::Tag::of("batch", 7)],
            }
        })
        .collect();
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        store.append(&stream("new-1"), ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();
        let positions = store.import(imported.clone()).await.unwrap();
        assert_eq!(positions, (2..=4).map(GlobalPosition::new).collect::<Vec<_>>());
        // A re-run writes nothing and returns the same positions.
        assert_eq!(store.import(imported.clone()).await.unwrap(), positions);
        store.save_checkpoint("h", GlobalPosition::new(2)).await.unwrap();
        store.close().await.unwrap();
    });
    runtime.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config()).await.unwrap();
        let events = store.load_stream(&stream("old-1"), StreamRange::all()).await.unwrap();
        let times: Vec<_> = events.iter().map(|e| e.recorded_at).collect();
        assert_eq!(times, imported.iter().map(|e| e.recorded_at).collect::<Vec<_>>());
        assert_eq!(events[2].tags, imported[2].tags);
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.backend, stats.events, stats.streams, stats.checkpoints), ("file", 4, 2, 1));
        assert_eq!(stats.oldest, Some(imported[0].recorded_at));
        assert!(stats.bytes_on_disk.is_some_and(|bytes| bytes > 0));
        assert_eq!(store.list_checkpoints().await.unwrap(), vec![("h".to_owned(), GlobalPosition::new(2))]);
    });
}
