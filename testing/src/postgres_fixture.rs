//! A fresh PostgreSQL database per test, dropped afterwards: [`PostgresTestDatabase`].
//!
//! The server comes from `DATABASE_URL`; when that is unset, from [`PostgresTestDatabase::FALLBACK_URL`]
//! if a server answers there. With neither, creating the fixture fails with a message that says how to
//! provide a server: PostgreSQL tests never pass silently without one. (Starting a server with
//! testcontainers is left out: the machines this project is built on have no Docker engine.)
//!
//! ```no_run
//! use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
//!
//! # async fn test() {
//! let db = PostgresTestDatabase::start().await; // fails the test with instructions when there is no server
//! let options = db.connect_options(); // or db.url()
//! // ... connect a store, run the test ...
//! drop(db); // drops the database (also when the test panics)
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// How long the fixture waits for the server before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database created for one test on the server named by `DATABASE_URL`, dropped when this is dropped.
pub struct PostgresTestDatabase {
    name: String,
    url: String,
    admin: PgConnectOptions,
    options: PgConnectOptions,
    dropped: bool,
}

/// Why the fixture could not give a test a database.
#[derive(Debug)]
pub enum FixtureError {
    /// `DATABASE_URL` is unset and nothing answers at the fallback address.
    NoServer {
        /// The connection error at the fallback address.
        source: sqlx::Error,
    },
    /// `DATABASE_URL` is set but unusable.
    BadUrl {
        /// The variable's value with any password replaced.
        url: String,
        /// What went wrong.
        source: sqlx::Error,
    },
    /// The server answered but creating or dropping the test database failed.
    Server {
        /// What the fixture was doing.
        action: String,
        /// The server's error.
        source: sqlx::Error,
    },
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoServer { source } => write!(
                f,
                "no PostgreSQL server for the tests: DATABASE_URL is not set and nothing answers at {} ({source}). \
                 Start a server (e.g. `pg_ctlcluster 15 main start`) or set \
                 DATABASE_URL=postgres://user:password@host:port/database; scripts/test.sh does both",
                PostgresTestDatabase::FALLBACK_URL
            ),
            Self::BadUrl { url, source } => write!(
                f,
                "DATABASE_URL={url} is not usable for the PostgreSQL tests ({source}): check that the server runs \
                 and that the user may create databases"
            ),
            Self::Server { action, source } => write!(f, "could not {action} on the test server: {source}"),
        }
    }
}

impl std::error::Error for FixtureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoServer { source } | Self::BadUrl { source, .. } | Self::Server { source, .. } => Some(source),
        }
    }
}

impl PostgresTestDatabase {
    /// Where the fixture looks when `DATABASE_URL` is unset: the local cluster with trust authentication.
    pub const FALLBACK_URL: &'static str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// Creates a fresh, empty database on the test server; call this at the start of a test.
    ///
    /// # Panics
    /// When there is no usable server, with a message saying how to provide one: a PostgreSQL test must
    /// fail rather than pass without a database.
    pub async fn start() -> Self {
        match Self::create().await {
            Ok(db) => db,
            Err(e) => panic!("{e}"),
        }
    }

    /// Creates a fresh, empty database on the test server.
    ///
    /// # Errors
    /// [`FixtureError`] naming what is missing and how to provide it.
    pub async fn create() -> Result<Self, FixtureError> {
        let from_env = std::env::var("DATABASE_URL").ok().filter(|url| !url.trim().is_empty());
        let base_url = from_env.clone().unwrap_or_else(|| Self::FALLBACK_URL.to_owned());
        let failure = |source| match &from_env {
            Some(url) => FixtureError::BadUrl { url: redact(url), source },
            None => FixtureError::NoServer { source },
        };
        let admin = PgConnectOptions::from_str(&base_url).map_err(failure)?;
        let mut connection = connect(&admin).await.map_err(failure)?;
        let name = format!("composable_test_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let created = sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut connection).await;
        let _ = connection.close().await;
        created.map_err(|source| FixtureError::Server { action: format!("create database {name}"), source })?;
        Ok(Self {
            url: with_database(&base_url, &name),
            options: admin.clone().database(&name),
            admin,
            name,
            dropped: false,
        })
    }

    /// The connect options of the test database.
    #[must_use]
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// The URL of the test database. It contains the password of `DATABASE_URL`, if that has one: do not
    /// print it.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of the test database.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, ending any connections still open to it.
    ///
    /// # Errors
    /// [`FixtureError::Server`] when the server refuses.
    pub async fn drop_database(mut self) -> Result<(), FixtureError> {
        self.dropped = true;
        drop_database(&self.admin, &self.name).await
    }
}

impl Drop for PostgresTestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await, and may run inside a runtime that must not be blocked by `block_on`: use a
        // private runtime on its own thread.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(drop_database(&admin, &name)).map_err(|e| e.to_string())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(database = %self.name, "could not drop the test database: {e}"),
            Err(_) => tracing::warn!(database = %self.name, "dropping the test database panicked"),
        }
    }
}

impl fmt::Debug for PostgresTestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTestDatabase")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), FixtureError> {
    let server = |source| FixtureError::Server { action: format!("drop database {name}"), source };
    let mut connection = connect(admin).await.map_err(server)?;
    let result =
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut connection).await;
    let _ = connection.close().await;
    result.map(drop).map_err(server)
}

/// `url` with its database (the path) replaced by `database`, keeping user, password, host and parameters.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let path_start = rest.find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let query_start = url[path_start..].find('?').map_or(url.len(), |i| path_start + i);
    format!("{}/{database}{}", &url[..path_start], &url[query_start..])
}

/// `url` with the password, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..authority_start], &authority[..colon], &url[authority_start + at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(with_database("postgres://u:p@h:5432/postgres", "t1"), "postgres://u:p@h:5432/t1");
        assert_eq!(with_database("postgres://h/db?sslmode=require", "t1"), "postgres://h/t1?sslmode=require");
        assert_eq!(with_database("postgres://h:5432", "t1"), "postgres://h:5432/t1");
    }

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
