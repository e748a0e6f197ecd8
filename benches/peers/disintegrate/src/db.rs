//! Fresh databases on the shared server: one per side and round, dropped afterwards.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::BenchError;

/// Connections per pool, the same on both sides. More than the 8 writers, so no writer waits for one.
const POOL_SIZE: u32 = 16;

/// The server named by the admin URL, and how to make databases on it.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    admin: PgConnectOptions,
}

impl Server {
    /// The server of `url` (any database on it the user may connect to, usually `postgres`).
    pub(crate) fn new(url: &str) -> Result<Self, BenchError> {
        let admin = PgConnectOptions::from_str(url)
            .map_err(|e| BenchError::new(format!("DATABASE_URL `{url}` is not a PostgreSQL URL: {e}")))?
            .disable_statement_logging();
        Ok(Self { admin })
    }

    /// Drops `name` if it exists and creates it empty, then opens a pool of [`POOL_SIZE`] on it.
    ///
    /// `name` is one of this program's constants, never user input.
    pub(crate) async fn fresh(&self, name: &str) -> Result<PgPool, BenchError> {
        let mut admin = self.admin.connect().await.map_err(|e| {
            BenchError::new(format!(
                "cannot connect to PostgreSQL at {}:{} ({e}); start the server or set DATABASE_URL",
                self.admin.get_host(),
                self.admin.get_port()
            ))
        })?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .map_err(|e| BenchError::new(format!("cannot drop database {name}: {e}")))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| BenchError::new(format!("cannot create database {name} (the user needs CREATEDB): {e}")))?;
        let _ = admin.close().await;
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .test_before_acquire(false)
            .connect_with(self.admin.clone().database(name))
            .await
            .map_err(|e| BenchError::new(format!("cannot open a pool on database {name}: {e}")))
    }

    /// Closes `pool` and drops its database, so runs leave nothing behind.
    pub(crate) async fn drop(&self, name: &str, pool: PgPool) {
        pool.close().await;
        if let Ok(mut admin) = self.admin.connect().await {
            // Best effort: a leftover database is dropped by the next run anyway.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
            let _ = admin.close().await;
        }
    }
}

/// Refreshes the planner statistics after a bulk load, the same on both sides.
pub(crate) async fn analyze(pool: &PgPool) -> Result<(), BenchError> {
    sqlx::query("VACUUM ANALYZE")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| BenchError::new(format!("VACUUM ANALYZE failed: {e}")))
}
