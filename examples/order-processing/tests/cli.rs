//! End-to-end tests: the compiled `order-processing` binary, run as separate processes against one store.
//!
//! Each invocation is a new process, so a test that places an order in one process and shows it in the
//! next checks that orders survive a restart. SQLite tests clear `DATABASE_URL` for the child (the test
//! script exports it for the PostgreSQL tests); PostgreSQL tests pass a fresh test database explicitly.

// The helpers below are test code too: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust::backend::{EventLog, SnapshotStore};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use composable_rust::event::{CodecId, Snapshot};
use composable_rust::event_store::LogFilter;
use composable_rust::sqlite::SqliteEventStore;
use composable_rust::testing::postgres_fixture::PostgresTestDatabase;
use composable_rust::{GlobalPosition, RecordedEvent};
use order_processing::domain::{Order, OrderStatus};

const BIN: &str = env!("CARGO_BIN_EXE_order-processing");

/// Where the program should keep its events.
enum Target<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

/// Runs the program with `args` against `target` and returns what it printed and its exit code.
fn run(target: &Target<'_>, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    match target {
        Target::Sqlite(dir) => command.env_remove("DATABASE_URL").arg("--data-dir").arg(dir),
        Target::Postgres(url) => command.env("DATABASE_URL", url),
    };
    command.args(args).output().expect("the order-processing binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs and asserts exit code 0, returning stdout.
fn ok(target: &Target<'_>, args: &[&str]) -> String {
    let output = run(target, args);
    assert_eq!(output.status.code(), Some(0), "{args:?} failed:\n{}{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// Place, ship, then show from a third process: the order was rebuilt from the store each time.
fn place_ship_and_show_in_separate_processes(target: &Target<'_>) {
    let placed = ok(
        target,
        &[
            "place",
            "--id",
            "e2e-1",
            "--customer",
            "Ada Lovelace",
            "--item",
            "notebook:2:1250",
            "--item",
            "pencil:12:80",
        ],
    );
    assert!(placed.contains("Placed order e2e-1 for Ada Lovelace: 2 items, total $34.60."), "{placed}");

    let shipped = ok(target, &["ship", "e2e-1", "--tracking", "1Z999AA10123456784"]);
    assert!(shipped.contains("Shipped order e2e-1 with tracking number 1Z999AA10123456784."), "{shipped}");

    let shown = ok(target, &["show", "e2e-1"]);
    assert!(shown.contains("Order e2e-1  (shipped, version 2)"), "{shown}");
    assert!(shown.contains("customer  Ada Lovelace") && shown.contains("tracking  1Z999AA10123456784"), "{shown}");
    assert!(shown.contains("total      $34.60"), "{shown}");
    assert!(shown.contains("2 events replayed, no snapshot"), "{shown}");

    let listed = ok(target, &["list", "--status", "shipped"]);
    assert!(listed.contains("e2e-1") && listed.contains("1 shipped order in"), "{listed}");
    let placed_only = ok(target, &["list", "--status", "placed"]);
    assert!(placed_only.starts_with("No placed orders in"), "{placed_only}");
}

#[test]
fn orders_survive_restarts_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    place_ship_and_show_in_separate_processes(&Target::Sqlite(dir.path()));
    assert!(dir.path().join("orders.db").exists());
}

#[tokio::test]
async fn orders_survive_restarts_with_postgres() {
    let db = PostgresTestDatabase::start().await;
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || place_ship_and_show_in_separate_processes(&Target::Postgres(&url)))
        .await
        .unwrap();
    db.drop_database().await.unwrap();
}

/// Place an order, add an item, then show the order as it was before the item: by version and by time.
fn show_rebuilds_an_order_as_it_was_at_a_version_or_a_time(target: &Target<'_>) {
    ok(target, &["place", "--id", "past-1", "--customer", "Ada", "--item", "notebook:2:1250"]);
    // A time strictly between the two events (the program's clock and the test's are the same machine's).
    std::thread::sleep(Duration::from_millis(20));
    let between = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    // The program prints the time back with as few digits as are exact (`.255Z` for `.255000Z`).
    let between_shown = chrono::DateTime::parse_from_rfc3339(&between)
        .unwrap()
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    std::thread::sleep(Duration::from_millis(20));
    ok(target, &["add-item", "past-1", "--item", "ink:3:725"]);

    let at_one = ok(target, &["show", "past-1", "--at-version", "1"]);
    assert!(at_one.starts_with("Order past-1  (placed, version 1)"), "{at_one}");
    assert!(at_one.contains("as it was at version 1 of 2, recorded at "), "{at_one}");
    assert!(at_one.contains("total      $25.00") && !at_one.contains("ink"), "{at_one}");

    let as_of = ok(target, &["show", "past-1", "--as-of", &between]);
    assert!(as_of.starts_with("Order past-1  (placed, version 1)"), "{as_of}");
    assert!(as_of.contains(&format!("as it was at {between_shown}: version 1 of 2, recorded at ")), "{as_of}");
    assert!(as_of.contains("total      $25.00") && !as_of.contains("ink"), "{as_of}");

    let at_two = ok(target, &["show", "past-1", "--at-version", "2"]);
    assert!(at_two.contains("as it was at version 2 of 2") && at_two.contains("ink"), "{at_two}");
    assert!(at_two.contains("total      $46.75"), "{at_two}");
    let now = ok(target, &["show", "past-1"]);
    assert!(now.contains("total      $46.75") && !now.contains("as it was"), "{now}");

    // (arguments, exit code, what stderr must say)
    let errors: [(&[&str], i32, &str); 5] = [
        (&["show", "past-1", "--at-version", "3"], 5, "order past-1 has no version 3: its last event is version 2"),
        (
            &["show", "past-1", "--as-of", "2000-01-01T00:00:00Z"],
            5,
            "order past-1 did not exist yet at 2000-01-01T00:00:00Z: its first event was recorded at ",
        ),
        (&["show", "past-1", "--at-version", "1", "--as-of", &between], 2, "cannot be used with"),
        (&["show", "nope", "--at-version", "1"], 5, "there is no order nope"),
        (&["history", "nope"], 5, "there is no order nope"),
    ];
    for (args, code, message) in errors {
        let output = run(target, args);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "", "{args:?} printed to stdout");
    }

    // The time the error names can be pasted back: as of the first event, the order is at version 1.
    let too_early = stderr(&run(target, &["show", "past-1", "--as-of", "2000-01-01T00:00:00Z"]));
    let first = too_early.split("recorded at ").nth(1).and_then(|rest| rest.split(';').next()).unwrap();
    let at_first = ok(target, &["show", "past-1", "--as-of", first]);
    assert!(at_first.contains(&format!("as it was at {first}: version 1 of 2, recorded at {first}")), "{at_first}");
}

#[test]
fn show_as_of_a_version_or_time_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    show_rebuilds_an_order_as_it_was_at_a_version_or_a_time(&Target::Sqlite(dir.path()));
}

#[tokio::test]
async fn show_as_of_a_version_or_time_with_postgres() {
    let db = PostgresTestDatabase::start().await;
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || {
        show_rebuilds_an_order_as_it_was_at_a_version_or_a_time(&Target::Postgres(&url))
    })
    .await
    .unwrap();
    db.drop_database().await.unwrap();
}

#[test]
fn history_shows_every_event_with_its_correlation_id() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path());
    let correlation = "6f1c2a3b-0000-4000-8000-000000000001";
    ok(
        &target,
        &["place", "--id", "h1", "--customer", "Grace", "--item", "manual:1:4999", "--correlation-id", correlation],
    );
    ok(&target, &["add-item", "h1", "--item", "ink:3:725"]);
    ok(&target, &["cancel", "h1", "--reason", "duplicate order"]);

    let history = ok(&target, &["history", "h1"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("History of order h1 (stream order-h1, 3 events"), "{history}");
    assert!(lines[1].starts_with("VERSION  EVENT ID"), "{history}");
    // Every event shows its id, a UUID, and no two are the same.
    let ids: Vec<&str> = lines[2..5].iter().map(|line| line.split_whitespace().nth(1).unwrap_or("")).collect();
    for id in &ids {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id:?} is not an event id: {history}");
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{history}");
    assert!(lines[2].contains("OrderPlaced.v1") && lines[2].contains(correlation), "{history}");
    assert!(lines[3].contains("OrderItemAdded.v1") && !lines[3].contains(correlation), "{history}");
    assert!(lines[4].contains("OrderCancelled.v1") && lines[4].contains("reason: duplicate order"), "{history}");
    assert!(history.contains("Now cancelled, total $71.74."), "{history}");
}

/// Every event and snapshot in the SQLite store under `dir`.
async fn contents(dir: &Path) -> (Vec<RecordedEvent>, Vec<Option<Snapshot>>) {
    let store = SqliteEventStore::open(dir.join("orders.db")).await.unwrap();
    let events = store.read_all(GlobalPosition::START, &LogFilter::all(), 10_000).await.unwrap();
    let mut snapshots = Vec::new();
    for info in store.list_streams("", None, 10_000).await.unwrap() {
        snapshots.push(store.load_snapshot(&info.stream_id).await.unwrap());
    }
    store.close().await.unwrap();
    (events, snapshots)
}

#[tokio::test]
async fn rejected_commands_exit_non_zero_and_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path());
    ok(&target, &["place", "--id", "r1", "--customer", "Linus", "--item", "keyboard:1:8900"]);
    ok(&target, &["ship", "r1", "--tracking", "TRK1"]);
    let before = contents(dir.path()).await;
    assert_eq!(before.0.len(), 2);

    // (arguments, exit code, what stderr must say)
    let cases: [(&[&str], i32, &str); 7] = [
        (&["cancel", "r1", "--reason", "too late"], 1, "cannot cancel an order that is already shipped"),
        (&["ship", "r1", "--tracking", "TRK2"], 1, "cannot ship an order that is already shipped"),
        (&["ship", "nope", "--tracking", "TRK3"], 5, "there is no such order to ship"),
        (&["place", "--id", "r2", "--customer", "Ada", "--item", "pen:0:100"], 1, "quantity must be positive, got 0"),
        (&["place", "--id", "r2", "--customer", "Ada", "--item", "pen:1:-5"], 1, "unit price must be positive"),
        (&["place", "--id", "r1", "--customer", "Ada", "--item", "pen:1:100"], 1, "the order already exists"),
        (
            &["place", "--customer", "Ada", "--item", "pen:two:100"],
            2,
            "the quantity in \"pen:two:100\" is not a whole number",
        ),
    ];
    for (args, code, message) in cases {
        let output = run(&target, args);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
        if code == 1 || code == 5 {
            assert!(stderr(&output).contains("nothing was written"), "{args:?}: {}", stderr(&output));
        }
        assert_eq!(stdout(&output), "", "{args:?} printed to stdout");
    }
    let overflow =
        run(&target, &["place", "--id", "r3", "--customer", "Ada", "--item", "gold:4294967295:9223372036854775807"]);
    assert_eq!(overflow.status.code(), Some(1));
    assert!(stderr(&overflow).contains("the order total would overflow"), "{}", stderr(&overflow));

    assert_eq!(contents(dir.path()).await, before, "a rejected command wrote something");
    let missing = run(&target, &["show", "r2"]);
    assert_eq!(missing.status.code(), Some(5), "no such order has its own exit code");
    assert!(stderr(&missing).contains("there is no order r2"), "{}", stderr(&missing));
}

#[test]
fn demo_exits_zero_reports_a_match_and_can_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path());
    for _ in 0..2 {
        let out = ok(&target, &["demo"]);
        assert!(out.contains("rejected: order"), "{out}");
        assert!(out.contains("All 3 orders match."), "{out}");
        assert!(out.contains("at v5"), "the longest order is loaded from its snapshot after the restart:\n{out}");
        assert!(out.contains("The new process rebuilt every order exactly as it was before the restart."), "{out}");
        let hint = format!("cargo run -p order-processing -- --data-dir {} list", dir.path().join("demo").display());
        assert!(out.contains(&hint), "the closing hint repeats the backend options:\n{out}");
    }
    // The demo used a store of its own, fresh each run: three orders, not six.
    let demo_dir = dir.path().join("demo");
    let listed = ok(&Target::Sqlite(&demo_dir), &["list"]);
    assert!(listed.contains("3 orders in"), "{listed}");
    assert!(!dir.path().join("orders.db").exists(), "the demo must not touch the main store");
}

#[tokio::test]
async fn demo_reports_a_match_with_postgres() {
    let db = PostgresTestDatabase::start().await;
    let url = db.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        // Given on the command line (not in the environment), the URL is repeated in the closing hint.
        let mut command = Command::new(BIN);
        command.env_remove("DATABASE_URL").arg("--database-url").arg(&url).arg("--data-dir").arg(&data_dir);
        command.arg("demo").output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("Demo: writing to new orders in PostgreSQL at"), "{}", stdout(&out));
    assert!(stdout(&out).contains("All 3 orders match."), "{}", stdout(&out));
    // The hint repeats the URL, with a password (when it has one, as in CI) shown as `***`.
    let database = db.url().rsplit('/').next().unwrap_or_default().to_owned();
    let hint = stdout(&out)
        .lines()
        .find(|line| line.contains("cargo run -p order-processing -- --database-url ") && line.ends_with(" list"))
        .map(str::to_owned);
    assert!(hint.as_deref().is_some_and(|line| line.contains(&format!("/{database}"))), "{}", stdout(&out));
    if db.url().contains(":composable@") {
        assert!(hint.as_deref().is_some_and(|line| line.contains(":***@")), "the password must be masked: {hint:?}");
    }
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn rebuild_matches_after_load_and_reports_a_snapshot_that_differs() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path());
    let loaded =
        ok(&target, &["load", "--orders", "6", "--events", "12", "--concurrency", "2", "--snapshot-every", "5"]);
    assert!(loaded.contains("Wrote 72 events in"), "{loaded}");
    assert!(loaded.contains("6 orders (6 from a snapshot)"), "{loaded}");

    let rebuilt = ok(&target, &["rebuild"]);
    assert!(rebuilt.contains("Every order rebuilt from its snapshot equals the order rebuilt from all its events."));
    assert_eq!(ok(&target, &["list", "--status", "shipped"]).lines().count(), 1 + 2 + 1, "2 of 6 orders ship");

    // Corrupt one snapshot's meaning (it decodes, but says something the events do not).
    let store = SqliteEventStore::open(dir.path().join("orders.db")).await.unwrap();
    let stream = store.list_streams("order-", None, 1).await.unwrap().remove(0).stream_id;
    let snapshot = store.load_snapshot(&stream).await.unwrap().expect("a snapshot after 12 events");
    let wrong = Order { status: OrderStatus::Cancelled, customer: "someone else".into(), ..Order::default() };
    store
        .save_snapshot(&Snapshot {
            payload: CodecId::Bincode.encode(&wrong).unwrap(),
            codec: CodecId::Bincode,
            ..snapshot
        })
        .await
        .unwrap();
    store.close().await.unwrap();

    let output = run(&target, &["rebuild"]);
    assert_eq!(output.status.code(), Some(4), "{}", stdout(&output));
    let id = stream.as_str().strip_prefix("order-").unwrap();
    assert!(
        stderr(&output).contains(&format!("order {id} differs (snapshot path -> full replay):")),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("customer: \"someone else\" -> \"customer"), "{}", stderr(&output));
}

#[test]
fn a_store_that_cannot_be_opened_exits_3_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.db"), "not a database").unwrap();
    let output = run(&Target::Sqlite(dir.path()), &["list"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("is not an SQLite database"), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.path().join("orders.db")).unwrap(), b"not a database", "the file was changed");
}

/// `--config` chooses the store from a TOML file: here an SQLite file outside the data folder.
#[test]
fn a_config_file_chooses_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("configured/events.db");
    let file = dir.path().join("orders.toml");
    std::fs::write(
        &file,
        format!("[event_store]\nbackend = \"sqlite\"\nsnapshot_every = 1\n[event_store.sqlite]\npath = {db:?}\n"),
    )
    .unwrap();
    let elsewhere = dir.path().join("unused-data-dir");
    let target = Target::Sqlite(&elsewhere);
    let config = file.to_str().unwrap();

    ok(&target, &["place", "--id", "cfg-1", "--customer", "Grace", "--item", "tape:1:500", "--config", config]);
    let shown = ok(&target, &["show", "cfg-1", "--config", config]);
    assert!(shown.contains("Order cfg-1") && shown.contains("snapshot"), "{shown}");
    assert!(db.exists(), "the events went to the configured file");
    assert!(!elsewhere.join("orders.db").exists(), "the data folder was not used");

    std::fs::write(&file, "[event_store]\nbackend = \"mysql\"\n").unwrap();
    let output = run(&target, &["list", "--config", config]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("mysql"), "{}", stderr(&output));
}

/// `history a1 | head -1`: the reader goes away before the program has written; it stops quietly, exit 0.
#[test]
fn a_closed_stdout_ends_the_command_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path());
    ok(&target, &["place", "--id", "p1", "--customer", "Ada", "--item", "pen:1:100"]);
    for args in [&["history", "p1"][..], &["list"], &["show", "p1"], &["add-item", "p1", "--item", "ink:1:725"]] {
        let mut child = Command::new(BIN)
            .env_remove("DATABASE_URL")
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: the child has not even opened the store yet, so its first write fails.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?} complained about the closed pipe");
    }
    // The command whose output nobody read still did its work.
    let history = ok(&target, &["history", "p1"]);
    assert!(history.contains("OrderItemAdded.v1"), "{history}");
}

/// A read command pointed at a store that does not exist says so, exits 3, and creates nothing.
#[test]
fn read_commands_on_a_missing_sqlite_store_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let reads: [&[&str]; 6] = [
        &["list"],
        &["show", "a1"],
        &["history", "a1"],
        &["report"],
        &["rebuild"],
        &["show", "a1", "--at-version", "1"],
    ];
    for args in reads {
        let output = run(&Target::Sqlite(&missing), args);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(message.contains("there is no event store at"), "{args:?}: {message}");
        assert!(message.contains(&format!("the folder {} does not exist", missing.display())), "{message}");
        assert!(message.contains("nothing was created") && message.contains("--data-dir"), "{message}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());

        let output = run(&Target::Sqlite(&empty), args);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("has no file orders.db"), "{args:?}: {}", stderr(&output));
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{args:?} created a file");
    }
    // A command that writes creates the store, folder included.
    ok(&Target::Sqlite(&missing), &["place", "--id", "a1", "--customer", "Ada", "--item", "pen:1:100"]);
    assert!(missing.join("orders.db").exists());
}

#[tokio::test]
async fn read_commands_on_a_missing_postgres_database_fail_and_create_nothing() {
    let db = PostgresTestDatabase::start().await;
    let name = format!("{}_missing", db.name());
    let url = db.url().replacen(&format!("/{}", db.name()), &format!("/{name}"), 1);
    assert!(url.ends_with(&name), "{url}");
    let server = url.rsplit('@').next().unwrap().to_owned();
    let pool = sqlx::PgPool::connect_with(db.connect_options()).await.unwrap();
    for args in [&["list"][..], &["show", "a1"], &["history", "a1"], &["report"]] {
        let (url, args) = (url.clone(), args.to_vec());
        let output = tokio::task::spawn_blocking(move || run(&Target::Postgres(&url), &args)).await.unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let message = stderr(&output);
        assert!(message.contains(&format!("the database {server} does not exist")), "{message}");
        assert!(message.contains("nothing was created") && message.contains("--database-url"), "{message}");
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(exists, 0, "a database was created");
    }
    pool.close().await;
    db.drop_database().await.unwrap();
}

#[test]
fn urls_of_other_databases_are_refused_by_their_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let flag = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .args(["--data-dir", dir.path().to_str().unwrap(), "list", "--database-url", "mysql://me:s3cret@db/orders"])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(2), "{}", stderr(&flag));
    assert!(stderr(&flag).contains("--database-url is a mysql:// URL"), "{}", stderr(&flag));
    assert!(stderr(&flag).contains("postgres://"), "{}", stderr(&flag));
    assert!(!stderr(&flag).contains("s3cret"), "the password leaked: {}", stderr(&flag));

    let env = Command::new(BIN)
        .env("DATABASE_URL", "sqlite:///tmp/orders.db")
        .args(["--data-dir", dir.path().to_str().unwrap(), "list"])
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(2), "{}", stderr(&env));
    assert!(stderr(&env).contains("DATABASE_URL (from the environment) is a sqlite:// URL"), "{}", stderr(&env));
    assert!(stderr(&env).contains("unset DATABASE_URL and use --data-dir"), "{}", stderr(&env));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "something was created");
}

#[test]
fn a_data_dir_that_is_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.txt");
    std::fs::write(&file, "not a folder").unwrap();
    for args in [&["list"][..], &["place", "--customer", "Ada", "--item", "pen:1:100"], &["demo"]] {
        let output = run(&Target::Sqlite(&file), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        let expected = format!("{} is a file, not a folder: point --data-dir at a folder", file.display());
        // The demo works in <data-dir>/demo, whose parent is the file.
        assert!(stderr(&output).contains(&expected) || args == ["demo"], "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("is a file"), "{args:?}: {}", stderr(&output));
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}

/// The library's errors name its own settings (`PostgresConfig`); the program's name its options.
#[test]
fn an_unreachable_server_is_explained_in_terms_of_the_programs_options() {
    let output = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .args(["list", "--database-url", "postgres://postgres@127.0.0.1:1/orders"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("nothing answered at 127.0.0.1:1/orders"), "{message}");
    assert!(message.contains("check --database-url (or DATABASE_URL)"), "{message}");
    assert!(!message.contains("PostgresConfig"), "{message}");
}
