//! `report`: the order summary a subscription keeps, checked across separate processes on SQLite and
//! PostgreSQL. Each `report` applies only what is new since the last one; `--rebuild` replays everything
//! and ends with the same table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use composable_rust::testing::postgres_fixture::PostgresTestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_order-processing");

fn ok(store: &[&str], args: &[&str]) -> String {
    let mut command = Command::new(BIN);
    if store.first() == Some(&"--data-dir") {
        command.env_remove("DATABASE_URL");
    }
    let output = command.args(store).args(args).output().expect("the order-processing binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{args:?} failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The `STATUS ORDERS REVENUE` rows of a report, whitespace-normalised.
fn rows(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| !l.starts_with("STATUS") && !l.starts_with("Summary"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn summary_is_kept_incrementally_and_equals_a_rebuild(store: &[&str]) {
    ok(store, &["place", "--id", "r1", "--customer", "Ada", "--item", "widget:2:1250"]);
    ok(store, &["place", "--id", "r2", "--customer", "Bob", "--item", "gadget:1:999"]);
    ok(store, &["place", "--id", "r3", "--customer", "Cy", "--item", "gizmo:3:100"]);
    let first = ok(store, &["report"]);
    assert_eq!(rows(&first), ["placed 3 $37.99", "total 3 $37.99"], "{first}");
    assert!(first.contains("3 new events applied"), "{first}");

    ok(store, &["ship", "r1", "--tracking", "T-1"]);
    ok(store, &["cancel", "r2", "--reason", "changed my mind"]);
    ok(store, &["add-item", "r3", "--item", "extra:1:50"]);
    let second = ok(store, &["report"]);
    assert_eq!(
        rows(&second),
        ["cancelled 1 $9.99", "placed 1 $3.50", "shipped 1 $25.00", "total 3 $38.49"],
        "{second}"
    );
    assert!(second.contains("3 new events applied"), "only the new events are applied: {second}");

    let again = ok(store, &["report"]);
    assert!(again.contains("0 new events applied"), "{again}");
    let rebuilt = ok(store, &["report", "--rebuild"]);
    assert_eq!(rows(&rebuilt), rows(&second), "a rebuild gives the same summary");
    assert!(rebuilt.contains("6 new events applied"), "{rebuilt}");
}

#[test]
fn report_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    summary_is_kept_incrementally_and_equals_a_rebuild(&["--data-dir", dir.path().to_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_on_postgres() {
    let db = PostgresTestDatabase::start().await;
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || summary_is_kept_incrementally_and_equals_a_rebuild(&["--database-url", &url]))
        .await
        .unwrap();
}
