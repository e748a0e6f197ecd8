//! End-to-end tests: the rules hold across separate processes of the compiled `course-enrolment` binary
//! sharing one store (SQLite in a temporary folder, or a fresh PostgreSQL database), and the same scenario
//! in one process on the in-memory store.
//!
//! SQLite tests clear `DATABASE_URL` for the child (the test script exports it for the PostgreSQL tests);
//! PostgreSQL tests pass a fresh test database explicitly.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed set-up step should fail loudly")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use clap::Parser;
use composable_rust::EventStore;
use composable_rust::memory::InMemoryEventStore;
use composable_rust::testing::postgres_fixture::PostgresTestDatabase;
use course_enrolment::app::{Exit, execute};
use course_enrolment::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_course-enrolment");

/// What one run of a command printed and how it exited.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The scenario of the DCB specification, one command per call of `run`, checking exit codes and what
/// was printed; returns the final listing as printed by `list`.
fn enrolment_rules_hold(run: &mut dyn FnMut(&[&str]) -> Ran) -> String {
    fn ok(run: &mut dyn FnMut(&[&str]) -> Ran, args: &[&str]) -> String {
        let ran = run(args);
        assert_eq!(ran.code, Some(0), "{args:?} failed:\n{}{}", ran.stdout, ran.stderr);
        ran.stdout
    }
    assert!(ok(run, &["define-course", "math", "--capacity", "1"]).contains("defined course math with 1 place"));
    ok(run, &["define-course", "art", "--capacity", "5"]);
    ok(run, &["define-course", "chess", "--capacity", "5"]);
    ok(run, &["define-course", "music", "--capacity", "5"]);
    ok(run, &["register-student", "s1", "--username", "ada"]);
    ok(run, &["register-student", "s2", "--username", "bob"]);
    ok(run, &["enrol", "s1", "math"]);
    ok(run, &["enrol", "s1", "art"]);
    ok(run, &["enrol", "s1", "chess"]);
    let refusals: [(&[&str], &str); 6] = [
        (&["define-course", "math", "--capacity", "3"], "refused: course math already exists"),
        (&["register-student", "s3", "--username", "ADA"], "refused: the username ada is taken; choose another"),
        (&["enrol", "s2", "math"], "refused: course math is full: its 1 place is taken"),
        (&["enrol", "s1", "music"], "refused: student s1 already takes 3 courses, the most allowed"),
        (&["enrol", "s9", "art"], "refused: student s9 does not exist; register them first"),
        (&["change-capacity", "art", "--capacity", "0"], "refused: a course needs a capacity of at least 1"),
    ];
    for (args, message) in refusals {
        let ran = run(args);
        assert_eq!(ran.code, Some(1), "{args:?} should be refused:\n{}{}", ran.stdout, ran.stderr);
        assert!(ran.stderr.contains(message), "{args:?}: expected {message:?} in:\n{}", ran.stderr);
    }
    // Room made in math: now s2 gets in.
    ok(run, &["change-capacity", "math", "--capacity", "2"]);
    ok(run, &["enrol", "s2", "math"]);
    ok(run, &["list"])
}

const LISTING: &str = "courses:
  art: 1/5 [s1]
  chess: 1/5 [s1]
  math: 2/2 [s1, s2]
  music: 0/5 []
students:
  s1 (ada): [math, art, chess]
  s2 (bob): [math]
";

fn binary(dir: Option<&Path>, url: Option<&str>) -> impl FnMut(&[&str]) -> Ran {
    move |args: &[&str]| {
        let mut command = Command::new(BIN);
        match (dir, url) {
            (Some(dir), _) => command.env_remove("DATABASE_URL").arg("--data-dir").arg(dir),
            (None, Some(url)) => command.env("DATABASE_URL", url),
            (None, None) => unreachable!("a target is given"),
        };
        let output = command.args(args).output().expect("the course-enrolment binary runs");
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[test]
fn the_rules_hold_across_processes_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let listing = enrolment_rules_hold(&mut binary(Some(dir.path()), None));
    assert_eq!(listing, LISTING);
}

#[tokio::test]
async fn the_rules_hold_across_processes_with_postgres() {
    let db = PostgresTestDatabase::start().await;
    let url = db.url().to_owned();
    let listing =
        tokio::task::spawn_blocking(move || enrolment_rules_hold(&mut binary(None, Some(&url)))).await.unwrap();
    assert_eq!(listing, LISTING);
    db.drop_database().await.unwrap();
}

/// The same scenario in one process on the in-memory store: exit codes and the state, not the output.
#[test]
fn the_rules_hold_on_the_in_memory_store() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let mut run = |args: &[&str]| {
        let cli = Cli::try_parse_from(std::iter::once("course-enrolment").chain(args.iter().copied())).unwrap();
        let report = runtime.block_on(execute(&events, cli.command));
        let code = match report.exit {
            Exit::Ok => 0,
            Exit::Refused => 1,
            Exit::StoreError => 3,
        };
        let (stdout, stderr) = if code == 0 { (report.text, String::new()) } else { (String::new(), report.text) };
        Ran { code: Some(code), stdout, stderr }
    };
    let listing = enrolment_rules_hold(&mut run);
    assert_eq!(listing, LISTING);
}
