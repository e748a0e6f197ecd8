//! A migrated test database with the three roles of docs/database-setup.md ("Retention"): the owner (the
//! test role of `DATABASE_URL`, which created the database and ran the migrations), an application role
//! (`SELECT, INSERT` on `events`) and a retention role (`EXECUTE` on `events_retention_remove`).
//!
//! Roles are cluster-wide and the test role may not create them (it is `LOGIN CREATEDB` only), so the roles are
//! created through `DATABASE_ADMIN_URL` (a role with `CREATEROLE`), or the local cluster's `postgres` superuser
//! when that is unset, named after the test (`cr_<random>_app`, `cr_<random>_retention`), and dropped with the
//! database. Without an admin connection the test fails and says how to provide one.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::str::FromStr;
use std::time::Duration;

use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// Where the roles are created when `DATABASE_ADMIN_URL` is unset.
const FALLBACK_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A test database with an owner, an application and a retention role; everything is dropped with it.
pub struct RetentionDatabase {
    /// The store as the owner, who ran the migrations.
    pub owner: PostgresEventStore,
    /// The store as the application role.
    pub app: PostgresEventStore,
    /// The store as the retention role.
    pub retention: PostgresEventStore,
    /// The application role's name.
    pub app_role: String,
    /// The retention role's name.
    pub retention_role: String,
    app_options: PgConnectOptions,
    retention_options: PgConnectOptions,
    admin: PgConnectOptions,
    db: Option<PostgresTestDatabase>,
}

/// The grants of docs/database-setup.md, sections 4 and "Retention", for roles `{app}` and `{retention}`.
fn grants(app: &str, retention: &str) -> Vec<String> {
    vec![
        format!("GRANT SELECT, INSERT ON events TO {app}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON snapshots, checkpoints TO {app}"),
        format!("GRANT SELECT ON _sqlx_migrations TO {app}"),
        format!("GRANT SELECT ON events, snapshots, checkpoints, _sqlx_migrations TO {retention}"),
        format!(
            "GRANT EXECUTE ON FUNCTION events_retention_remove(uuid, text, text, text, text[], bigint[], boolean[]) TO {retention}"
        ),
    ]
}

impl RetentionDatabase {
    /// Creates the database, migrates it as the owner, creates the two roles and grants them what the docs say.
    pub async fn start() -> Self {
        let db = PostgresTestDatabase::start().await;
        let owner = store(db.connect_options()).await;
        owner.migrate().await.unwrap();

        let admin_url = std::env::var("DATABASE_ADMIN_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| FALLBACK_ADMIN_URL.to_owned());
        let admin = PgConnectOptions::from_str(&admin_url).expect("DATABASE_ADMIN_URL is not a postgres:// URL");
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (app_role, retention_role) = (format!("cr_{}_app", &tag[..12]), format!("cr_{}_retention", &tag[..12]));
        let mut connection = admin_connection(&admin).await;
        for role in [&app_role, &retention_role] {
            sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'"))
                .execute(&mut connection)
                .await
                .unwrap_or_else(|e| {
                    panic!("could not create role {role} through DATABASE_ADMIN_URL (it needs CREATEROLE): {e}")
                });
        }
        let _ = connection.close().await;
        for grant in grants(&app_role, &retention_role) {
            sqlx::query(&grant).execute(owner.pool()).await.unwrap();
        }
        let app_options = db.connect_options().username(&app_role).password(&app_role);
        let retention_options = db.connect_options().username(&retention_role).password(&retention_role);
        Self {
            owner,
            app: store(app_options.clone()).await,
            retention: store(retention_options.clone()).await,
            app_role,
            retention_role,
            app_options,
            retention_options,
            admin,
            db: Some(db),
        }
    }

    /// A new connection as the application role (outside the pool, for statements the store never sends).
    pub async fn app_connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.app_options).await.unwrap()
    }

    /// A new connection as the retention role.
    pub async fn retention_connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.retention_options).await.unwrap()
    }

    /// A new connection as the owner.
    pub async fn owner_connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.db.as_ref().unwrap().connect_options()).await.unwrap()
    }

    /// The test database's connect options as the owner.
    pub fn owner_options(&self) -> PgConnectOptions {
        self.db.as_ref().unwrap().connect_options()
    }
}

impl Drop for RetentionDatabase {
    fn drop(&mut self) {
        // The owner may not end the roles' sessions (DROP DATABASE ... FORCE needs that), so the admin drops the
        // database, then the roles; the fixture's own drop then finds nothing left.
        let Some(db) = self.db.as_ref() else { return };
        let admin = self.admin.clone();
        let name = db.name().to_owned();
        let roles = [self.app_role.clone(), self.retention_role.clone()];
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut connection = admin_connection(&admin).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .map_err(|e| format!("drop database {name}: {e}"))?;
                for role in roles {
                    sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
                        .execute(&mut connection)
                        .await
                        .map_err(|e| format!("drop role {role}: {e}"))?;
                }
                let _ = connection.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not clean up after a retention test: {e}");
        }
    }
}

async fn store(options: PgConnectOptions) -> PostgresEventStore {
    let mut config = PostgresConfig::from_options(options);
    config.max_connections = 8;
    config.acquire_timeout = Duration::from_secs(30);
    PostgresEventStore::connect_with(config).await.unwrap()
}

async fn admin_connection(admin: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(admin).await.unwrap_or_else(|e| {
        panic!(
            "the retention tests create roles and need a role with CREATEROLE: set DATABASE_ADMIN_URL (unset, they \
             try {FALLBACK_ADMIN_URL}): {e}"
        )
    })
}
