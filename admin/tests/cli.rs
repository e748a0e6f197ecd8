//! `eventstore-admin` run as a process, on SQLite files and on PostgreSQL: what it prints, its exit codes, and
//! that bad input changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use composable_rust::event::CodecId;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::sqlite::SqliteEventStore;
use composable_rust::testing::postgres_fixture::PostgresTestDatabase;
use composable_rust::{ExpectedVersion, Metadata, NewEvent, StreamId};

/// The example archive of the archive crate: 2 events of `order-1`, a snapshot, a checkpoint.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../archive/tests/valid.jsonl")
}

/// Runs the binary on the store at `url` (and no other configuration).
fn admin(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("COMPOSABLE_EVENT_STORE_BACKEND")
        .env_remove("COMPOSABLE_SQLITE_PATH")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "exit code\nstdout: {}\nstderr: {}", stdout(output), stderr(output));
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite:{}", dir.join(name).display())
}

#[test]
fn read_commands_on_a_missing_store_exit_3_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "missing.db");
    for args in [&["stats"][..], &["streams"], &["show-stream", "order-1"], &["tail"], &["export", "-o", "x.jsonl"]] {
        let output = admin(&url, args);
        assert_exit(&output, 3);
        assert!(stderr(&output).contains("there is no event store at"), "{args:?}: {}", stderr(&output));
    }
    assert!(!dir.path().join("missing.db").exists(), "no store was created");
}

#[test]
fn import_then_look_inside_export_and_verify_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "events.db");
    let example = example();
    let imported = admin(&url, &["import", example.to_str().unwrap(), "--json"]);
    assert_exit(&imported, 0);
    assert_eq!(json_lines(&imported)[0]["events"], 2);

    let stats = admin(&url, &["stats", "--json"]);
    assert_exit(&stats, 0);
    let stats = &json_lines(&stats)[0];
    assert_eq!(
        (stats["backend"].as_str(), stats["events"].as_u64(), stats["streams"].as_u64()),
        (Some("sqlite"), Some(2), Some(1))
    );
    assert_eq!((stats["snapshots"].as_u64(), stats["checkpoints"].as_u64()), (Some(1), Some(1)));
    assert_eq!(stats["oldest"], "2026-11-30T15:00:00.000001Z", "recorded times survive the import");
    assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0);

    let streams = admin(&url, &["streams", "--category", "order"]);
    assert_exit(&streams, 0);
    assert_eq!(stdout(&streams), "         2  order-1\n1 streams, 2 events\n");
    assert_eq!(stdout(&admin(&url, &["streams", "--min-events", "3"])), "0 streams, 0 events\n");

    let shown = admin(&url, &["show-stream", "order-1", "--json"]);
    assert_exit(&shown, 0);
    let events = json_lines(&shown);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["payload"], serde_json::json!({"customer": "ada"}));
    assert_eq!(events[1]["payload_base64"], "AQID");
    let text = stdout(&admin(&url, &["show-stream", "order-1", "--from", "2"]));
    assert!(
        text.contains("order-1@2") && text.contains("OrderShipped.v1  bincode:AQID") && !text.contains("@1"),
        "{text}"
    );

    let tail = admin(&url, &["tail", "-n", "1", "--json"]);
    assert_eq!(json_lines(&tail).len(), 1, "tail -n 1 prints the last event");
    assert_eq!(json_lines(&tail)[0]["version"], 2);

    let backup = dir.path().join("backup.jsonl");
    let exported = admin(&url, &["export", "-o", backup.to_str().unwrap(), "--json"]);
    assert_exit(&exported, 0);
    assert_eq!(json_lines(&exported)[0]["events"], 2);
    assert!(!dir.path().join("backup.jsonl.partial").exists(), "the partial file is renamed");
    let verified = admin(&url, &["verify", backup.to_str().unwrap()]);
    assert_exit(&verified, 0);
    assert!(
        stdout(&verified).contains("is valid: 2 events of 1 streams, 1 snapshots, 1 checkpoints"),
        "{}",
        stdout(&verified)
    );

    // The backup restores into another store with the same events, and a second import changes nothing.
    let other = sqlite_url(dir.path(), "restored.db");
    for written in [2, 0] {
        let imported = admin(&other, &["import", backup.to_str().unwrap(), "--json"]);
        assert_exit(&imported, 0);
        let summary = &json_lines(&imported)[0];
        assert_eq!((&summary["written"], &summary["already_stored"]), (&written.into(), &(2 - written).into()));
    }
    let again = admin(&other, &["import", backup.to_str().unwrap()]);
    assert!(stdout(&again).contains("(0 written, 2 already stored and left as they were)"), "{}", stdout(&again));
    assert_eq!(stdout(&admin(&other, &["show-stream", "order-1"])), stdout(&admin(&url, &["show-stream", "order-1"])));
    assert_eq!(json_lines(&admin(&other, &["stats", "--json"]))[0]["events"], 2);
}

#[test]
fn bad_input_gets_a_clear_error_an_exit_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "events.db");
    let example = example();
    assert_exit(&admin(&url, &["import", example.to_str().unwrap()]), 0);
    let before = stdout(&admin(&url, &["tail", "-n", "100", "--json"]));

    // An archive with a second event whose version skips one: refused at its line, nothing written.
    let bad = dir.path().join("bad.jsonl");
    let text = std::fs::read_to_string(&example).unwrap();
    let text = text
        .replace("000000000002", "000000000009")
        .replace(r#""version":2,"position":2"#, r#""version":4,"position":2"#);
    let text = text.replace("order-1", "order-7");
    std::fs::write(&bad, text).unwrap();
    for command in ["verify", "import"] {
        let output = admin(&url, &[command, bad.to_str().unwrap()]);
        assert_exit(&output, 4);
        assert!(stderr(&output).contains("line 4: event 4 of stream order-7 follows version 1"), "{}", stderr(&output));
    }
    let missing = admin(&url, &["import", dir.path().join("nothing.jsonl").to_str().unwrap()]);
    assert_exit(&missing, 6);
    // A bad archive creates no store either: it is checked before the store is opened.
    let nowhere = dir.path().join("new");
    let refused = admin(&sqlite_url(&nowhere, "events.db"), &["import", bad.to_str().unwrap()]);
    assert_exit(&refused, 4);
    assert!(!nowhere.exists(), "an import of a bad archive created a store");

    let show = admin(&url, &["show-stream", "order-2"]);
    assert_exit(&show, 5);
    assert!(stderr(&show).contains("there is no stream order-2"));
    assert_exit(&admin(&url, &["show-stream", " padded"]), 2);
    assert_exit(&admin(&url, &["show-stream", "order-1", "--from", "3", "--to", "2"]), 2);
    assert_exit(&admin(&url, &["streams", "--limit", "many"]), 2);

    let taken = dir.path().join("taken.jsonl");
    std::fs::write(&taken, "keep me").unwrap();
    assert_exit(&admin(&url, &["export", "-o", taken.to_str().unwrap()]), 2);
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "keep me", "an existing file is left alone");

    assert_eq!(stdout(&admin(&url, &["tail", "-n", "100", "--json"])), before, "the store is unchanged");
}

#[test]
fn tail_follow_prints_events_committed_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let url = sqlite_url(dir.path(), "events.db");
    assert_exit(&admin(&url, &["migrate"]), 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .args(["tail", "-f", "--json", "--poll-ms", "50"])
        .env("DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteEventStore::open(&path).await.unwrap();
        let stream = StreamId::new("order-5").unwrap();
        for n in 0..3_u8 {
            let event =
                NewEvent::new("Noted.v1", CodecId::Json, format!("{{\"n\":{n}}}").into_bytes(), Metadata::default());
            store.append(&stream, ExpectedVersion::Any, vec![event]).await.unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            seen.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let versions: Vec<u64> = seen.iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, vec![1, 2, 3], "tail -f prints each new event once, in order");
    assert_eq!(seen[2]["payload"], serde_json::json!({"n": 2}));
}

/// Appends to the SQLite store at `path` six events: `order-1` and `order-2` alternately, types `Placed.v1` and
/// `Noted.v1` alternately, by `alice` (even `n`) or `bob` (odd `n`), each payload `{"n": n}`.
fn six_events_by_two_actors(path: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteEventStore::open(path).await.unwrap();
        for n in 0..6_u8 {
            let stream = StreamId::new(format!("order-{}", n % 2 + 1)).unwrap();
            let metadata = Metadata::default().with_actor(if n % 2 == 0 { "alice" } else { "bob" });
            let event_type = if n % 2 == 0 { "Placed.v1" } else { "Noted.v1" };
            let event = NewEvent::new(event_type, CodecId::Json, format!("{{\"n\":{n}}}").into_bytes(), metadata);
            store.append(&stream, ExpectedVersion::Any, vec![event]).await.unwrap();
        }
    });
}

/// The `n` of each printed event's payload, in the order printed.
fn numbers(output: &Output) -> Vec<u64> {
    json_lines(output).iter().map(|e| e["payload"]["n"].as_u64().unwrap()).collect()
}

#[test]
fn events_queries_by_actor_type_and_category_oldest_or_newest_first_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "events.db");
    assert_exit(&admin(&url, &["migrate"]), 0);
    six_events_by_two_actors(&dir.path().join("events.db"));

    let query = |args: &[&str]| {
        let output = admin(&url, &[&["events", "--json"][..], args].concat());
        assert_exit(&output, 0);
        numbers(&output)
    };
    assert_eq!(query(&[]), vec![0, 1, 2, 3, 4, 5], "oldest first by default");
    assert_eq!(query(&["--actor", "alice"]), vec![0, 2, 4]);
    assert_eq!(query(&["--actor", "alice", "--newest-first"]), vec![4, 2, 0]);
    assert_eq!(query(&["--newest-first", "--limit", "2"]), vec![5, 4], "the newest two");
    assert_eq!(query(&["--type", "Noted.v1", "--limit", "2"]), vec![1, 3]);
    assert_eq!(query(&["--type", "Noted.v1", "--type", "Placed.v1", "--newest-first", "--limit", "3"]), vec![5, 4, 3]);
    assert_eq!(query(&["--category", "order", "--actor", "bob", "--newest-first"]), vec![5, 3, 1]);
    assert_eq!(query(&["--prefix", "order-2"]), vec![1, 3, 5]);
    assert_eq!(query(&["--actor", "carol"]), Vec::<u64>::new());

    // Paging: the last position printed is the next page's cursor, in either direction.
    let newest = json_lines(&admin(&url, &["events", "--json", "--newest-first", "--limit", "2"]));
    let before = newest[1]["position"].as_u64().unwrap().to_string();
    assert_eq!(query(&["--before", &before, "--limit", "2"]), vec![3, 2]);
    let oldest = json_lines(&admin(&url, &["events", "--json", "--limit", "2"]));
    let after = oldest[1]["position"].as_u64().unwrap().to_string();
    assert_eq!(query(&["--after", &after, "--limit", "2"]), vec![2, 3]);

    // tail reads the newest events and prints them oldest first; it filters by actor and type too.
    let tail = admin(&url, &["tail", "-n", "2", "--json", "--actor", "alice"]);
    assert_exit(&tail, 0);
    assert_eq!(numbers(&tail), vec![2, 4]);
    assert_eq!(numbers(&admin(&url, &["tail", "-n", "5", "--json", "--type", "Noted.v1"])), vec![1, 3, 5]);

    // Contradictory options are a usage error.
    assert_exit(&admin(&url, &["events", "--after", "1", "--newest-first"]), 2);
    assert_exit(&admin(&url, &["events", "--since", "yesterday"]), 2);
}

#[test]
fn the_same_commands_work_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(PostgresTestDatabase::start());
    let url = db.url().to_owned();
    let example = example();
    assert_exit(&admin(&url, &["migrate"]), 0);
    for (written, already_stored) in [(2, 0), (0, 2)] {
        let imported = admin(&url, &["import", example.to_str().unwrap(), "--json"]);
        assert_exit(&imported, 0);
        let summary = &json_lines(&imported)[0];
        assert_eq!((&summary["written"], &summary["already_stored"]), (&written.into(), &already_stored.into()));
    }
    let stats = admin(&url, &["stats", "--json"]);
    assert_exit(&stats, 0);
    let stats = &json_lines(&stats)[0];
    assert_eq!((stats["backend"].as_str(), stats["events"].as_u64()), (Some("postgres"), Some(2)));
    assert_eq!(stats["newest"], "2026-11-30T15:00:01.000000Z");
    let newest =
        json_lines(&admin(&url, &["events", "--json", "--newest-first", "--limit", "1", "--category", "order"]));
    assert_eq!((newest.len(), &newest[0]["version"]), (1, &serde_json::json!(2)), "the newest event of the category");

    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("pg.jsonl");
    assert_exit(&admin(&url, &["export", "-o", backup.to_str().unwrap()]), 0);
    assert_exit(&admin(&url, &["verify", backup.to_str().unwrap()]), 0);
    // Restored into SQLite: the same events.
    let sqlite = sqlite_url(dir.path(), "from-pg.db");
    assert_exit(&admin(&sqlite, &["import", backup.to_str().unwrap()]), 0);
    let events = |url: &str| {
        json_lines(&admin(url, &["show-stream", "order-1", "--json"]))
            .into_iter()
            .map(|mut e| {
                e["position"] = serde_json::Value::Null;
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&sqlite), events(&url));
    // The checkpoint followed its event to PostgreSQL's position.
    let store = runtime.block_on(PostgresEventStore::connect(&url)).unwrap();
    let checkpoint = runtime.block_on(store.load_checkpoint("summaries")).unwrap().unwrap();
    let second = runtime
        .block_on(
            store.load_stream(&StreamId::new("order-1").unwrap(), composable_rust::event_store::StreamRange::all()),
        )
        .unwrap();
    assert_eq!(checkpoint, second[1].position);
    drop(store);
    runtime.block_on(async move { drop(db) });
}

/// Runs the binary on the file store in `dir`, chosen by environment variables as an operator would.
fn admin_on_files(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("COMPOSABLE_EVENT_STORE_BACKEND", "file")
        .env("COMPOSABLE_FILE_PATH", dir)
        .output()
        .unwrap()
}

#[test]
fn the_file_backend_is_imported_into_and_looked_inside_and_never_created_by_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events");
    let missing = admin_on_files(&store, &["stats"]);
    assert_exit(&missing, 3);
    assert!(!store.exists(), "a read command creates no file store");

    let imported = admin_on_files(&store, &["import", example().to_str().unwrap(), "--json"]);
    assert_exit(&imported, 0);
    let stats = admin_on_files(&store, &["stats", "--json"]);
    assert_exit(&stats, 0);
    let stats = &json_lines(&stats)[0];
    assert_eq!((stats["backend"].as_str(), stats["events"].as_u64()), (Some("file"), Some(2)));
    let shown = admin_on_files(&store, &["show-stream", "order-1"]);
    assert_exit(&shown, 0);
    assert!(stdout(&shown).contains("order-1"), "{}", stdout(&shown));
}
