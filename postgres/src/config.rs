//! [`PostgresConfig`]: where the server is and how the connection pool behaves.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use composable_rust_core::EventStoreError;
use sqlx::postgres::PgConnectOptions;

use crate::error::PostgresError;

/// How [`PostgresEventStore`](crate::PostgresEventStore) connects: the server and the pool settings.
///
/// Build it from a URL with [`PostgresConfig::from_url`] or from sqlx options with
/// [`PostgresConfig::from_options`], then adjust the public fields. TLS is chosen in the URL
/// (`?sslmode=require`, `verify-ca` or `verify-full` with `sslrootcert=...`), using rustls.
///
/// `Debug` never prints the password.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_postgres::PostgresConfig;
///
/// let mut config = PostgresConfig::from_url("postgres://app:secret@db.internal:5432/orders")?;
/// config.max_connections = 20;
/// config.statement_timeout = Some(Duration::from_secs(5));
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), composable_rust_core::EventStoreError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    options: PgConnectOptions,
    /// Most connections the pool opens. Default: 10.
    pub max_connections: u32,
    /// Connections the pool keeps open while idle. Default: 0.
    pub min_connections: u32,
    /// How long connecting, or waiting for a free pooled connection, may take before an operation fails.
    /// Default: 10 seconds.
    pub acquire_timeout: Duration,
    /// Longest a single statement may run before the server cancels it; `None` keeps the server's setting.
    /// Default: 30 seconds.
    pub statement_timeout: Option<Duration>,
    /// Whether the pool pings a connection each time it hands it out. Default: `false`, because the ping
    /// costs about 30% of a single append; a connection that died meanwhile fails that one operation with
    /// a backend error and is replaced.
    pub test_before_acquire: bool,
    /// How long [`read_all`](composable_rust_core::backend::EventLog::read_all) may wait, when it returns less than
    /// a full page while newer events are already committed, for the older transactions that hold them
    /// back to finish (so that a writer reads its own writes). `Duration::ZERO` never waits. Default: 2 s.
    pub read_all_wait: Duration,
    /// `random_page_cost` for the store's connections, or `None` for the server's setting. Default: 1.1
    /// (data in RAM or on SSD). With the server default of 4 the planner loads a stream with a bitmap
    /// scan plus a sort, which cannot stream rows and was measured about 2x slower than the index scan
    /// in version order that this setting makes it choose.
    pub random_page_cost: Option<f64>,
}

impl PostgresConfig {
    /// The default for [`PostgresConfig::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// The default for [`PostgresConfig::acquire_timeout`].
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default for [`PostgresConfig::statement_timeout`].
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default for [`PostgresConfig::read_all_wait`].
    pub const DEFAULT_READ_ALL_WAIT: Duration = Duration::from_secs(2);

    /// Reads the server, user, password, database and TLS mode from a `postgres://` URL.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] with a [`PostgresError::InvalidUrl`] source when the URL does not parse;
    /// the message never repeats the URL, so a password in it does not leak.
    pub fn from_url(url: &str) -> Result<Self, EventStoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| {
            EventStoreError::backend(
                "parse the PostgreSQL connection URL",
                PostgresError::InvalidUrl { reason: source.to_string() },
            )
        })?;
        Ok(Self::from_options(options))
    }

    /// Uses sqlx connect options as they are, with the default pool settings.
    #[must_use]
    pub fn from_options(options: PgConnectOptions) -> Self {
        Self {
            options,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(Self::DEFAULT_STATEMENT_TIMEOUT),
            test_before_acquire: false,
            read_all_wait: Self::DEFAULT_READ_ALL_WAIT,
            random_page_cost: Some(1.1),
        }
    }

    /// The sqlx connect options, with the session settings applied.
    pub(crate) fn connect_options(&self) -> PgConnectOptions {
        // JIT compiles a plan in tens of milliseconds where the store's statements run in tens of microseconds;
        // a statement estimated dear on a large table would be compiled at every call (docs/decisions.md).
        let mut settings = vec![("jit", "off".to_owned())];
        if let Some(timeout) = self.statement_timeout {
            settings.push(("statement_timeout", format!("{}ms", timeout.as_millis().max(1))));
        }
        if let Some(cost) = self.random_page_cost {
            settings.push(("random_page_cost", cost.to_string()));
        }
        self.options.clone().options(settings)
    }

    /// `host:port/database`, for messages (never the user's password).
    #[must_use]
    pub fn server(&self) -> String {
        describe_server(&self.options)
    }
}

/// `host:port/database` of connect options.
pub(crate) fn describe_server(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    )
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("server", &self.server())
            .field("user", &self.options.get_username())
            .field("password", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("read_all_wait", &self.read_all_wait)
            .field("random_page_cost", &self.random_page_cost)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_the_server_but_not_the_password() {
        let config = PostgresConfig::from_url("postgres://app:hunter2@db.example:6543/orders").unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("db.example:6543/orders"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = PostgresConfig::from_url("postgres://localhost/db").unwrap();
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.acquire_timeout, Duration::from_secs(10));
        assert_eq!(config.statement_timeout, Some(Duration::from_secs(30)));
        assert!(!config.test_before_acquire);
    }

    #[test]
    fn a_bad_url_is_an_error_that_does_not_repeat_the_url() {
        let err = PostgresConfig::from_url("postgres://app:hunter2@db.example:notaport/orders").unwrap_err();
        let message = format!("{err} {:?}", std::error::Error::source(&err).map(ToString::to_string));
        assert!(message.contains("connection URL"), "{message}");
        assert!(!message.contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{message}");
    }
}
