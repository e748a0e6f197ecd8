//! `eventstore-admin retention` run as a process on an SQLite file: the plan, an apply that archives,
//! verifies and removes, the audit rows, and a configuration that is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use std::path::Path;
use std::process::{Command, Output};

use chrono::{Duration, SubsecRound, Utc};
use composable_rust::event::CodecId;
use composable_rust::prelude::*;
use composable_rust::sqlite::SqliteEventStore;
use composable_rust::{EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, Version};

fn admin(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("COMPOSABLE_EVENT_STORE_BACKEND")
        .env_remove("COMPOSABLE_SQLITE_PATH")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "exit code\nstdout: {}\nstderr: {stderr}", stdout(output));
}

fn json(output: &Output) -> Vec<serde_json::Value> {
    stdout(output).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// An SQLite store with an audit stream of 10 events, 100 to 91 days old, and 2 recent ones.
async fn store_with_old_audit_events(path: &Path) {
    let store = SqliteEventStore::open(path).await.unwrap();
    let stream = StreamId::new("audit-1").unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let events = (1..=12_u64)
        .map(|v| RecordedEvent {
            id: EventId::generate(),
            stream_id: stream.clone(),
            version: Version::new(v),
            position: GlobalPosition::START,
            event_type: "Seen.v1".into(),
            codec: CodecId::Json,
            payload: br#"{"page":"home"}"#.to_vec().into(),
            metadata: Metadata::default(),
            recorded_at: if v <= 10 { now - Duration::days(101 - i64::try_from(v).unwrap()) } else { now },
            tags: Vec::new(),
        })
        .collect();
    store.import(events).await.unwrap();
    store.close().await.unwrap();
}

fn config(dir: &Path, retention: &str) -> std::path::PathBuf {
    let path = dir.join("app.toml");
    let text = format!(
        "[event_store]\nbackend = \"sqlite\"\n[event_store.sqlite]\npath = \"{}\"\n{retention}",
        dir.join("events.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn plan_then_apply_archives_verifies_removes_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    store_with_old_audit_events(&dir.path().join("events.db")).await;
    let config = config(dir.path(), "[retention.categories.audit]\nmax_age_days = 30\nreplay_free = true\n");

    let plan = admin(&config, &["retention", "plan", "--json"]);
    assert_exit(&plan, 0);
    let plan = &json(&plan)[0];
    assert_eq!(plan["events_to_remove"], 10);
    assert_eq!(plan["categories"][0]["category"], "audit");
    assert_eq!(plan["categories"][0]["remove"], 10);
    assert!(plan["archive_bytes"].as_u64().unwrap() > 0);
    let text = admin(&config, &["retention", "plan"]);
    assert!(stdout(&text).contains("10 events would be removed"), "{}", stdout(&text));

    let archive = dir.path().join("removed.jsonl");
    let applied =
        admin(&config, &["retention", "apply", "--archive", archive.to_str().unwrap(), "--actor", "ops", "--json"]);
    assert_exit(&applied, 0);
    assert_eq!(json(&applied)[0]["removed"], 10);
    let verified = admin(&config, &["verify", archive.to_str().unwrap(), "--json"]);
    assert_exit(&verified, 0);
    assert_eq!(json(&verified)[0]["events"], 10, "the archive holds the removed events");

    let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    let left = store.load_stream(&StreamId::new("audit-1").unwrap(), Default::default()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.version.get()).collect::<Vec<_>>(), vec![11, 12]);
    store.close().await.unwrap();

    let runs = admin(&config, &["retention", "runs", "--json"]);
    assert_exit(&runs, 0);
    let runs = json(&runs);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0]["actor"].as_str(), runs[0]["events_removed"].as_u64()), (Some("ops"), Some(10)));
    assert_eq!(runs[0]["archive"], archive.display().to_string());

    let again = admin(&config, &["retention", "apply", "--archive", archive.to_str().unwrap()]);
    assert_exit(&again, 0);
    assert!(stdout(&again).contains("nothing to remove"), "{}", stdout(&again));
}

#[tokio::test]
async fn without_a_policy_nothing_is_planned_and_a_bad_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_with_old_audit_events(&dir.path().join("events.db")).await;
    let plain = config(dir.path(), "");
    let plan = admin(&plain, &["retention", "plan"]);
    assert_exit(&plan, 0);
    assert!(stdout(&plan).contains("nothing would be removed"), "{}", stdout(&plan));

    let bad = config(dir.path(), "[retention.categories.audit]\nmax_count = 0\n");
    let refused = admin(&bad, &["retention", "plan"]);
    assert_exit(&refused, 3);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("max_count is 0"));
}

#[tokio::test]
async fn a_schedule_applies_the_plan_each_interval_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    store_with_old_audit_events(&dir.path().join("events.db")).await;
    let config = config(dir.path(), "[retention.categories.audit]\nmax_age_days = 30\nreplay_free = true\n");
    let archive = dir.path().join("removed.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .arg("--config")
        .arg(&config)
        .args(["retention", "apply", "--every", "1s", "--archive", archive.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let archives = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("removed.") && n.ends_with(".jsonl"))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while archives().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Two more intervals: the later runs find nothing to remove and write no archive.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let written = archives();
    assert_eq!(written.len(), 1, "one run removed the old events, each with its own archive: {written:?}");
    let runs = admin(&config, &["retention", "runs", "--json"]);
    assert_exit(&runs, 0);
    let runs = json(&runs);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["events_removed"], 10);
    assert!(written[0].contains(runs[0]["run"].as_str().unwrap()), "the archive is named by its run");
}
