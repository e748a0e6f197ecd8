//! The PostgreSQL server: fresh databases for each run, the peers' pools, and the size of a table.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::BenchError;

/// Connections per pool, on every side (issue 19: "pool of 10").
pub(crate) const POOL_SIZE: u32 = 10;

/// The server named by the admin URL, and how to make databases on it.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    admin: PgConnectOptions,
}

impl Server {
    /// The server of `url` (any database on it the user may connect to, usually `postgres`).
    pub(crate) fn new(url: &str) -> Result<Self, BenchError> {
        let admin = PgConnectOptions::from_str(url)
            .map_err(|e| BenchError::new(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?
            .disable_statement_logging();
        Ok(Self { admin })
    }

    /// Host, port and user, for pgbench and psql.
    pub(crate) fn host_port_user(&self) -> (String, u16, String) {
        (self.admin.get_host().to_owned(), self.admin.get_port(), self.admin.get_username().to_owned())
    }

    async fn connect_admin(&self) -> Result<sqlx::PgConnection, BenchError> {
        self.admin.connect().await.map_err(|e| {
            BenchError::new(format!(
                "cannot connect to PostgreSQL at {}:{} ({e}); start the server or set DATABASE_URL",
                self.admin.get_host(),
                self.admin.get_port()
            ))
        })
    }

    /// The server's version string (`SELECT version()`).
    pub(crate) async fn version(&self) -> Result<String, BenchError> {
        let mut admin = self.connect_admin().await?;
        let version: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&mut admin)
            .await
            .map_err(|e| BenchError::new(format!("cannot read the server version: {e}")))?;
        let _ = admin.close().await;
        Ok(version)
    }

    /// Drops `name` if it exists and creates it empty; returns the options to connect to it.
    ///
    /// `name` is made by this program from constants and numbers, never from user input.
    pub(crate) async fn fresh(&self, name: &str) -> Result<PgConnectOptions, BenchError> {
        let mut admin = self.connect_admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .map_err(|e| BenchError::new(format!("cannot drop database {name}: {e}")))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| BenchError::new(format!("cannot create database {name} (the user needs CREATEDB): {e}")))?;
        let _ = admin.close().await;
        Ok(self.admin.clone().database(name))
    }

    /// Drops `name`, so runs leave nothing behind.
    pub(crate) async fn drop(&self, name: &str) {
        if let Ok(mut admin) = self.connect_admin().await {
            // Best effort: a leftover database is dropped by the next run anyway.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
            let _ = admin.close().await;
        }
    }
}

/// A pool of [`POOL_SIZE`] on `options` for a peer, without a ping on acquire (as composable-rust's own pool):
/// the comparison measures the stores, not the pool settings.
pub(crate) async fn pool(options: PgConnectOptions) -> Result<PgPool, BenchError> {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| BenchError::new(format!("cannot open a pool: {e}")))
}

/// Bytes on disk of `table` with its indexes and TOAST (`pg_total_relation_size`), and its row count.
pub(crate) async fn table_size(pool: &PgPool, table: &str) -> Result<(u64, u64), BenchError> {
    let (bytes, rows): (i64, i64) =
        sqlx::query_as(&format!("SELECT pg_total_relation_size('{table}'::regclass), (SELECT count(*) FROM {table})"))
            .fetch_one(pool)
            .await
            .map_err(|e| BenchError::new(format!("cannot measure table {table}: {e}")))?;
    let bytes = u64::try_from(bytes).map_err(|_| BenchError::new(format!("table {table} has a negative size")))?;
    let rows = u64::try_from(rows).map_err(|_| BenchError::new(format!("table {table} has a negative count")))?;
    Ok((bytes, rows))
}

/// Refreshes the planner statistics and the visibility map after a bulk load, the same on every side.
pub(crate) async fn vacuum_analyze(pool: &PgPool) -> Result<(), BenchError> {
    sqlx::query("VACUUM ANALYZE")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| BenchError::new(format!("VACUUM ANALYZE failed: {e}")))
}
