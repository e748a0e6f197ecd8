//! `eventstore-admin retention` run as a process on PostgreSQL with the roles of docs/database-setup.md: the
//! application's role is refused and removes nothing, the retention role archives, removes and is audited as
//! itself. The roles are created per test through `DATABASE_ADMIN_URL` (a role with `CREATEROLE`; unset, the local
//! cluster's `postgres` superuser), since the test role may not create roles, and dropped afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use std::path::Path;
use std::process::{Command, Output};

use chrono::{Duration, SubsecRound, Utc};
use composable_rust::event::CodecId;
use composable_rust::event_store::StreamRange;
use composable_rust::postgres::PostgresEventStore;
use composable_rust::prelude::*;
use composable_rust::testing::postgres_fixture::PostgresTestDatabase;
use composable_rust::{EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, Version};
use sqlx::{Connection, PgConnection};

const FALLBACK_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin(config: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventstore-admin"))
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("COMPOSABLE_EVENT_STORE_BACKEND")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\nstdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn json(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Roles of this test, dropped (after the database) when this is dropped.
struct Roles {
    admin: String,
    names: Vec<String>,
}

impl Drop for Roles {
    fn drop(&mut self) {
        let (admin, names) = (self.admin.clone(), self.names.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut connection = PgConnection::connect(&admin).await.unwrap();
                for name in names {
                    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {name}")).execute(&mut connection).await;
                }
            });
        })
        .join();
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("this test creates roles and needs a role with CREATEROLE: set DATABASE_ADMIN_URL (unset: {url}): {e}")
    })
}

/// An audit stream of 12 events, the first 10 between 100 and 91 days old.
fn old_audit_events() -> Vec<RecordedEvent> {
    let stream = StreamId::new("audit-1").unwrap();
    let now = Utc::now().trunc_subsecs(6);
    (1..=12_u64)
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
        .collect()
}

#[tokio::test]
async fn only_the_retention_role_removes_and_the_audit_names_it() {
    let db = PostgresTestDatabase::start().await;
    let owner = PostgresEventStore::connect(db.url()).await.unwrap();
    owner.migrate().await.unwrap();
    owner.import(old_audit_events()).await.unwrap();

    // The roles of docs/database-setup.md, sections 4 and 4b.
    let admin_url = std::env::var("DATABASE_ADMIN_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| FALLBACK_ADMIN_URL.to_owned());
    let tag = EventId::generate().as_uuid().simple().to_string();
    let (app, retention) = (format!("cr_{}_app", &tag[20..]), format!("cr_{}_retention", &tag[20..]));
    let roles = Roles { admin: admin_url.clone(), names: vec![app.clone(), retention.clone()] };
    let mut connection = admin_connection(&admin_url).await;
    for role in &roles.names {
        sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'")).execute(&mut connection).await.unwrap();
    }
    connection.close().await.unwrap();
    for grant in [
        format!("GRANT SELECT, INSERT ON events TO {app}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON snapshots, checkpoints TO {app}"),
        format!("GRANT SELECT ON _sqlx_migrations TO {app}"),
        format!("GRANT SELECT ON events, snapshots, checkpoints, _sqlx_migrations TO {retention}"),
        format!(
            "GRANT EXECUTE ON FUNCTION events_retention_remove(uuid, text, text, text, text[], bigint[], boolean[]) \
             TO {retention}"
        ),
    ] {
        sqlx::query(&grant).execute(owner.pool()).await.unwrap();
    }
    let options = owner.pool().connect_options();
    let url_of = |role: &str| {
        format!(
            "postgres://{role}:{role}@{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap()
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    std::fs::write(&config, "[retention.categories.audit]\nmax_age_days = 30\nreplay_free = true\n").unwrap();
    let archive = dir.path().join("removed.jsonl");
    let archive = archive.to_str().unwrap();

    // Any role may plan; the application's role cannot remove, and nothing goes.
    let plan = admin(&config, &url_of(&app), &["retention", "plan", "--json"]);
    assert_exit(&plan, 0);
    assert_eq!(json(&plan)[0]["events_to_remove"], 10);
    let refused = admin(&config, &url_of(&app), &["retention", "apply", "--archive", archive, "--actor", "ops"]);
    assert_exit(&refused, 3);
    assert!(
        text(&refused.stderr).contains(&format!("the role {app} may not remove events")),
        "{}",
        text(&refused.stderr)
    );
    let stream = StreamId::new("audit-1").unwrap();
    assert_eq!(owner.load_stream(&stream, StreamRange::all()).await.unwrap().len(), 12);
    assert!(owner.retention_runs().await.unwrap().is_empty());

    // The retention role archives, verifies and removes; the audit names the actor and the role.
    let _ = std::fs::remove_file(archive);
    let applied =
        admin(&config, &url_of(&retention), &["retention", "apply", "--archive", archive, "--actor", "ops", "--json"]);
    assert_exit(&applied, 0);
    assert_eq!(json(&applied)[0]["removed"], 10);
    let left = owner.load_stream(&stream, StreamRange::all()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.version.get()).collect::<Vec<_>>(), vec![11, 12]);
    let runs = admin(&config, &url_of(&app), &["retention", "runs", "--json"]);
    assert_exit(&runs, 0);
    let runs = json(&runs);
    assert_eq!((runs[0]["actor"].as_str(), runs[0]["events_removed"].as_u64()), (Some("ops"), Some(10)));
    let performed_by: String =
        sqlx::query_scalar("SELECT performed_by FROM events_retention_runs()").fetch_one(owner.pool()).await.unwrap();
    assert_eq!(performed_by, retention, "the audit records the role that logged in");

    owner.close().await.unwrap();
    drop(db);
    drop(roles);
}
