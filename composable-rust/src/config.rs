//! Choosing the event store from configuration, so operators switch backends without recompiling.
//!
//! A configuration file names the backend and its settings:
//!
//! ```toml
//! [event_store]
//! backend = "sqlite"        # "sqlite", "postgres", "file" or "in-memory" (also "memory")
//! codec = "bincode"         # codec for new events and snapshots: "bincode" (default) or "json"
//! snapshot_every = 100      # events between snapshots; 0 turns snapshots off
//!
//! [event_store.sqlite]
//! path = "./data/events.db"
//!
//! [event_store.file]
//! path = "./data/events"    # a directory of JSONL segments (feature `file`)
//!
//! [event_store.postgres]
//! url = "postgres://app@127.0.0.1:5432/orders"
//! max_connections = 10
//! acquire_timeout_secs = 10
//! statement_timeout_secs = 30
//! ```
//!
//! Environment variables override the file ([`EventStoreConfig::apply_env`]): `DATABASE_URL` (a
//! `postgres://` URL selects PostgreSQL, a `sqlite:` URL selects SQLite at that path),
//! `COMPOSABLE_EVENT_STORE_BACKEND`, `COMPOSABLE_SQLITE_PATH`, `COMPOSABLE_FILE_PATH`, `COMPOSABLE_CODEC` and
//! `COMPOSABLE_SNAPSHOT_EVERY`. [`open`] then connects, runs migrations and returns the store.
//!
//! The `[retention]` table of the same file holds the retention policies an operator's
//! `eventstore-admin retention apply` enforces ([`RetentionConfig`]); without it every event is kept.
//!
//! Zero configuration works: with no file ([`EventStoreConfig::from_file_or_default`]) and no variables, the
//! store is SQLite in [`SqliteSettings::DEFAULT_PATH`] (`data/events.db`, relative to the working
//! directory), created on first use. [`EventStoreConfig::location`] says where the data goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod retention;

pub use retention::{CategoryConfig, KeepConfig, RetentionConfig, RuleConfig};

use composable_rust_core::{CodecId, EventStore, EventStoreError};
use composable_rust_runtime::{RepositoryConfig, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The whole configuration file. Only the `[event_store]` and `[retention]` tables are read; other tables
/// are left to the application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The `[event_store]` table.
    #[serde(default)]
    pub event_store: EventStoreConfig,
    /// The `[retention]` table (see [`RetentionConfig`]); absent: keep every event.
    #[serde(default)]
    pub retention: RetentionConfig,
}

impl ConfigFile {
    /// Reads and parses a whole configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] when it is invalid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str::<Self>(&text)
            .map_err(|e| ConfigError::Parse { message: format!("{}: {}", path.display(), e.to_string().trim_end()) })
    }
}

/// Which event store to open and how; the `[event_store]` table of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EventStoreConfig {
    /// The backend. Default: [`Backend::Sqlite`].
    #[serde(default)]
    pub backend: Backend,
    /// The codec new events and snapshots are written with. Default: bincode.
    #[serde(default)]
    pub codec: CodecId,
    /// Events between snapshots; `0` turns snapshots off. Default: 100.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Settings of the SQLite backend.
    #[serde(default)]
    pub sqlite: SqliteSettings,
    /// Settings of the PostgreSQL backend.
    #[serde(default)]
    pub postgres: PostgresSettings,
    /// Settings of the file backend.
    #[serde(default)]
    pub file: FileSettings,
}

fn default_snapshot_every() -> u64 {
    SnapshotPolicy::DEFAULT_INTERVAL
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            codec: CodecId::default(),
            snapshot_every: default_snapshot_every(),
            sqlite: SqliteSettings::default(),
            postgres: PostgresSettings::default(),
            file: FileSettings::default(),
        }
    }
}

/// The event store backends that configuration can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// An SQLite file (feature `sqlite`, on by default).
    #[default]
    Sqlite,
    /// A PostgreSQL server (feature `postgres`). Also spelled `postgresql`.
    #[serde(alias = "postgresql")]
    Postgres,
    /// Memory only, lost when the process ends (always compiled, no feature needed). Also spelled `memory`.
    #[serde(alias = "memory")]
    InMemory,
    /// A directory of JSONL segment files, opened by one process at a time (feature `file`).
    File,
}

impl Backend {
    /// The name used in configuration: `sqlite`, `postgres`, `in-memory`, `file`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::InMemory => "in-memory",
            Self::File => "file",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "in-memory" | "memory" => Some(Self::InMemory),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// The `[event_store.sqlite]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteSettings {
    /// The database file; its parent folders are created. Unset: [`SqliteSettings::DEFAULT_PATH`].
    pub path: Option<PathBuf>,
}

impl SqliteSettings {
    /// Where the SQLite store lives when no path is configured: `data/events.db`, relative to the working
    /// directory.
    pub const DEFAULT_PATH: &'static str = "data/events.db";

    /// The configured path, or [`SqliteSettings::DEFAULT_PATH`].
    #[must_use]
    pub fn path_or_default(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(Self::DEFAULT_PATH))
    }
}

/// The `[event_store.file]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileSettings {
    /// The store's directory; it and its parent folders are created. Unset: [`FileSettings::DEFAULT_PATH`].
    pub path: Option<PathBuf>,
}

impl FileSettings {
    /// Where the file store lives when no path is configured: `data/events`, relative to the working
    /// directory.
    pub const DEFAULT_PATH: &'static str = "data/events";

    /// The configured path, or [`FileSettings::DEFAULT_PATH`].
    #[must_use]
    pub fn path_or_default(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(Self::DEFAULT_PATH))
    }
}

/// The `[event_store.postgres]` table. Unset numbers keep the backend's documented defaults.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresSettings {
    /// The server, as a `postgres://user:password@host:port/database` URL. Required when the backend is
    /// `postgres` (or set `DATABASE_URL`).
    pub url: Option<String>,
    /// Most pooled connections.
    pub max_connections: Option<u32>,
    /// Seconds to wait for a connection.
    pub acquire_timeout_secs: Option<u64>,
    /// Seconds a statement may run; `0` keeps the server's setting.
    pub statement_timeout_secs: Option<u64>,
}

/// Never shows the URL, which may hold a password.
impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .finish()
    }
}

/// Configuration that cannot be read or does not make sense; each variant names the key and the fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("could not read configuration file {path}: check that it exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a key has the wrong type or an unknown name.
    #[error("invalid configuration: {message}")]
    Parse {
        /// The TOML parser's description, with the line and the key.
        message: String,
    },
    /// An environment variable has a value that cannot be used.
    #[error("invalid environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The `[retention]` table describes a policy that cannot be right.
    #[error("invalid configuration key {key}: {reason}")]
    Retention {
        /// The key, e.g. `retention.categories.order`.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A setting the chosen backend needs is missing.
    #[error("missing configuration key {key}: {fix}")]
    Missing {
        /// The key, e.g. `event_store.postgres.url`.
        key: &'static str,
        /// How to provide it.
        fix: &'static str,
    },
    /// The configuration selects a backend whose cargo feature is not compiled in.
    #[error(
        "event_store.backend = \"{backend}\" needs the `{feature}` feature of composable-rust: enable it in Cargo.toml (features = [\"{feature}\"]) or choose another backend"
    )]
    BackendNotCompiled {
        /// The backend that was chosen.
        backend: &'static str,
        /// The feature that provides it.
        feature: &'static str,
    },
    /// Opening the store failed (unreachable server, bad file, schema problem). The store's error names the
    /// database and says what to do, so this case adds no words of its own. It is the `source()`, so code
    /// that walks the chain finds the `EventStoreError` (`error_chain` and `Report` print its words once).
    #[error("{0}")]
    Open(#[source] EventStoreError),
}

impl EventStoreConfig {
    /// Parses a whole configuration file's text and returns its `[event_store]` table.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the line and key that are wrong.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str::<ConfigFile>(text)
            .map(|file| file.event_store)
            .map_err(|e| ConfigError::Parse { message: e.to_string().trim_end().to_owned() })
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] when it is invalid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse { message } => ConfigError::Parse { message: format!("{}: {message}", path.display()) },
            other => other,
        })
    }

    /// Reads and parses the configuration file at `path` when it exists, and returns the defaults (SQLite in
    /// [`SqliteSettings::DEFAULT_PATH`]) when it does not, so a program runs with no configuration at all.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file exists but cannot be read, [`ConfigError::Parse`] when it is
    /// invalid.
    pub fn from_file_or_default(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            _ => Self::from_file(path),
        }
    }

    /// Where the data goes, for a start-up message: `SQLite file data/events.db`, `PostgreSQL at
    /// host:port/database` (never the password), or `memory (lost when the process ends)`.
    #[must_use]
    pub fn location(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("SQLite file {}", self.sqlite.path_or_default().display()),
            Backend::Postgres => match self.postgres.url.as_deref().and_then(server_of_url) {
                Some(server) => format!("PostgreSQL at {server}"),
                None => "PostgreSQL (no URL configured)".to_owned(),
            },
            Backend::InMemory => "memory (lost when the process ends)".to_owned(),
            Backend::File => format!("file store in directory {}", self.file.path_or_default().display()),
        }
    }

    /// Applies overrides from the process environment (see the module docs for the variables).
    ///
    /// # Errors
    /// [`ConfigError::Env`] when a variable holds an unusable value.
    pub fn with_env_overrides(self) -> Result<Self, ConfigError> {
        self.apply_env(|name| std::env::var(name).ok())
    }

    /// Applies overrides read through `var`, which returns a variable's value if it is set.
    ///
    /// # Errors
    /// [`ConfigError::Env`] when a variable holds an unusable value.
    pub fn apply_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        if let Some(url) = var("DATABASE_URL").filter(|v| !v.is_empty()) {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                self.backend = Backend::Postgres;
                self.postgres.url = Some(url);
            } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                self.backend = Backend::Sqlite;
                self.sqlite.path = Some(PathBuf::from(path));
            } else {
                return Err(ConfigError::Env {
                    name: "DATABASE_URL",
                    reason: "expected a postgres://, postgresql:// or sqlite: URL".into(),
                });
            }
        }
        if let Some(value) = var("COMPOSABLE_EVENT_STORE_BACKEND") {
            self.backend = Backend::parse(&value).ok_or_else(|| ConfigError::Env {
                name: "COMPOSABLE_EVENT_STORE_BACKEND",
                reason: format!("unknown backend {value:?}; use sqlite, postgres, file or in-memory"),
            })?;
        }
        if let Some(path) = var("COMPOSABLE_SQLITE_PATH") {
            self.sqlite.path = Some(PathBuf::from(path));
        }
        if let Some(path) = var("COMPOSABLE_FILE_PATH") {
            self.file.path = Some(PathBuf::from(path));
        }
        if let Some(value) = var("COMPOSABLE_CODEC") {
            self.codec = value.parse().map_err(|_| ConfigError::Env {
                name: "COMPOSABLE_CODEC",
                reason: format!("unknown codec {value:?}; use bincode or json"),
            })?;
        }
        if let Some(value) = var("COMPOSABLE_SNAPSHOT_EVERY") {
            self.snapshot_every = value.parse().map_err(|_| ConfigError::Env {
                name: "COMPOSABLE_SNAPSHOT_EVERY",
                reason: format!("{value:?} is not a whole number of events (0 turns snapshots off)"),
            })?;
        }
        Ok(self)
    }

    /// The repository settings this configuration implies (codec and snapshot interval).
    #[must_use]
    pub fn repository_config(&self) -> RepositoryConfig {
        RepositoryConfig::default()
            .with_codec(self.codec)
            .with_snapshot_policy(SnapshotPolicy::every(self.snapshot_every))
    }

    /// Checks that the chosen backend is compiled in and has what it needs, without opening anything.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] or [`ConfigError::BackendNotCompiled`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            Backend::Sqlite => {
                require_feature(cfg!(feature = "sqlite"), self.backend, "sqlite")?;
            }
            Backend::Postgres => {
                require_feature(cfg!(feature = "postgres"), self.backend, "postgres")?;
                if self.postgres.url.is_none() {
                    return Err(ConfigError::Missing {
                        key: "event_store.postgres.url",
                        fix: "set url = \"postgres://user@host:5432/db\" under [event_store.postgres], or DATABASE_URL",
                    });
                }
            }
            Backend::File => require_feature(cfg!(feature = "file"), self.backend, "file")?,
            Backend::InMemory => {}
        }
        Ok(())
    }
}

/// `host:port/database` of a `postgres://user:password@host[:port]/database?..` URL, without the credentials;
/// the port is PostgreSQL's default (5432) when the URL names none, as the driver reads it.
fn server_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let server = rest.split('?').next()?;
    let (host, database) = server.split_once('/').unwrap_or((server, ""));
    if host.is_empty() {
        return None;
    }
    let has_port = host.rsplit_once(':').is_some_and(|(_, port)| !port.is_empty() && !port.ends_with(']'));
    let port = if has_port { "" } else { ":5432" };
    Some(format!("{host}{port}/{database}"))
}

fn require_feature(compiled: bool, backend: Backend, feature: &'static str) -> Result<(), ConfigError> {
    if compiled { Ok(()) } else { Err(ConfigError::BackendNotCompiled { backend: backend.as_str(), feature }) }
}

/// Opens the configured event store, running its migrations, and returns it ready for use.
///
/// # Errors
/// [`ConfigError::Missing`] / [`ConfigError::BackendNotCompiled`] for configuration that cannot work,
/// [`ConfigError::Open`] when the backend refuses (unreachable server, not a database file, newer schema).
pub async fn open(config: &EventStoreConfig) -> Result<Arc<dyn EventStore>, ConfigError> {
    config.validate()?;
    let opened = match config.backend {
        Backend::Sqlite => open_sqlite(config).await,
        Backend::Postgres => open_postgres(config).await,
        Backend::InMemory => open_in_memory(),
        Backend::File => open_file(config).await,
    };
    opened.map_err(ConfigError::Open)
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(config: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    let path = config.sqlite.path_or_default();
    Ok(Arc::new(composable_rust_sqlite::SqliteEventStore::open(path).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    unreachable_backend()
}

#[cfg(feature = "postgres")]
async fn open_postgres(config: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    use std::time::Duration;

    use composable_rust_postgres::{PostgresConfig, PostgresEventStore};

    let settings = &config.postgres;
    let mut pg = PostgresConfig::from_url(settings.url.as_deref().unwrap_or_default())?;
    if let Some(n) = settings.max_connections {
        pg.max_connections = n;
    }
    if let Some(secs) = settings.acquire_timeout_secs {
        pg.acquire_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = settings.statement_timeout_secs {
        pg.statement_timeout = (secs > 0).then(|| Duration::from_secs(secs));
    }
    let store = PostgresEventStore::connect_with(pg).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    unreachable_backend()
}

#[cfg(feature = "file")]
async fn open_file(config: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    let path = config.file.path_or_default();
    Ok(Arc::new(composable_rust_file::FileEventStore::open(path).await?))
}

#[cfg(not(feature = "file"))]
async fn open_file(_: &EventStoreConfig) -> Result<Arc<dyn EventStore>, EventStoreError> {
    unreachable_backend()
}

fn open_in_memory() -> Result<Arc<dyn EventStore>, EventStoreError> {
    Ok(Arc::new(composable_rust_memory::InMemoryEventStore::new()))
}

/// `validate` refuses backends that are not compiled in, so this is only reached through a bug.
#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "file")))]
fn unreachable_backend() -> Result<Arc<dyn EventStore>, EventStoreError> {
    Err(EventStoreError::backend("open the event store", "this backend is not compiled in; enable its cargo feature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_full_file_parses() {
        let config = EventStoreConfig::from_toml_str(
            r#"
            [app]
            name = "orders"

            [event_store]
            backend = "postgres"
            codec = "json"
            snapshot_every = 0

            [event_store.sqlite]
            path = "data/events.db"

            [event_store.postgres]
            url = "postgres://app:secret@db:5432/orders"
            max_connections = 4
            "#,
        )
        .unwrap();
        assert_eq!(config.backend, Backend::Postgres);
        assert_eq!(config.codec, CodecId::Json);
        assert_eq!(config.repository_config().snapshot_policy, SnapshotPolicy::Never);
        assert_eq!(config.postgres.max_connections, Some(4));
        assert!(!format!("{config:?}").contains("secret"), "Debug must not print the URL");
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        let config = EventStoreConfig::from_toml_str("").unwrap();
        assert_eq!(config, EventStoreConfig::default());
        assert_eq!(config.backend, Backend::Sqlite);
        assert_eq!(config.snapshot_every, 100);
    }

    #[test]
    fn unknown_backends_and_keys_are_named_in_the_error() {
        let err = EventStoreConfig::from_toml_str("[event_store]\nbackend = \"mysql\"").unwrap_err().to_string();
        assert!(err.contains("mysql") && err.contains("sqlite") && err.contains("postgres"), "{err}");
        let err = EventStoreConfig::from_toml_str("[event_store]\nsnapshot_evry = 5").unwrap_err().to_string();
        assert!(err.contains("snapshot_evry"), "{err}");
        let err = EventStoreConfig::from_toml_str("[event_store]\nsnapshot_every = \"often\"").unwrap_err().to_string();
        assert!(err.contains("snapshot_every"), "{err}");
    }

    #[test]
    fn missing_settings_name_the_key_and_the_fix() {
        let config = EventStoreConfig::default();
        if cfg!(feature = "sqlite") {
            assert!(config.validate().is_ok(), "the default needs nothing: SQLite in {}", SqliteSettings::DEFAULT_PATH);
        } else {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("needs the `sqlite` feature"), "{err}");
        }
        let config = EventStoreConfig { backend: Backend::Postgres, ..EventStoreConfig::default() };
        let err = config.validate().unwrap_err().to_string();
        if cfg!(feature = "postgres") {
            assert!(err.contains("event_store.postgres.url") && err.contains("DATABASE_URL"), "{err}");
        } else {
            assert!(err.contains("needs the `postgres` feature"), "{err}");
        }
    }

    #[test]
    fn the_file_backend_is_chosen_by_name_with_its_directory_from_the_file_or_the_environment() {
        let config = EventStoreConfig::from_toml_str(
            "[event_store]\nbackend = \"file\"\n[event_store.file]\npath = \"./store\"",
        )
        .unwrap();
        assert_eq!(config.backend, Backend::File);
        assert_eq!(config.location(), "file store in directory ./store");
        let config = EventStoreConfig::default()
            .apply_env(env(&[("COMPOSABLE_EVENT_STORE_BACKEND", "file"), ("COMPOSABLE_FILE_PATH", "/srv/events")]))
            .unwrap();
        assert_eq!((config.backend, config.file.path_or_default()), (Backend::File, Path::new("/srv/events")));
        assert_eq!(FileSettings::default().path_or_default(), Path::new("data/events"));
        let err = EventStoreConfig::from_toml_str("[event_store.file]\ndirectory = \"x\"").unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
        if !cfg!(feature = "file") {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("needs the `file` feature"), "{err}");
        }
    }

    #[test]
    fn the_default_is_sqlite_in_a_documented_path_and_says_so() {
        let config = EventStoreConfig::default();
        assert_eq!(config.backend, Backend::Sqlite);
        assert_eq!(config.sqlite.path_or_default(), Path::new("data/events.db"));
        assert_eq!(config.location(), "SQLite file data/events.db");
        let missing = std::env::temp_dir().join(format!("no-such-config-{}.toml", std::process::id()));
        assert_eq!(EventStoreConfig::from_file_or_default(&missing).unwrap(), EventStoreConfig::default());
    }

    #[test]
    fn the_location_of_postgres_never_shows_the_password() {
        let config = EventStoreConfig {
            backend: Backend::Postgres,
            postgres: PostgresSettings {
                url: Some("postgres://app:hunter2@db.local:5432/orders?sslmode=disable".to_owned()),
                ..PostgresSettings::default()
            },
            ..EventStoreConfig::default()
        };
        assert_eq!(config.location(), "PostgreSQL at db.local:5432/orders");
        assert_eq!(server_of_url("postgres://app@db.local/orders").as_deref(), Some("db.local:5432/orders"));
        assert_eq!(server_of_url("postgres://[::1]/orders").as_deref(), Some("[::1]:5432/orders"));
        assert_eq!(server_of_url("postgres://[::1]:6543/orders").as_deref(), Some("[::1]:6543/orders"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = EventStoreConfig::default()
            .apply_env(env(&[("DATABASE_URL", "postgres://u@h/db"), ("COMPOSABLE_SNAPSHOT_EVERY", "7")]))
            .unwrap();
        assert_eq!(config.backend, Backend::Postgres);
        assert_eq!(config.postgres.url.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(config.snapshot_every, 7);

        let config = EventStoreConfig::default().apply_env(env(&[("DATABASE_URL", "sqlite:///tmp/x.db")])).unwrap();
        assert_eq!((config.backend, config.sqlite.path.as_deref()), (Backend::Sqlite, Some(Path::new("/tmp/x.db"))));

        let err = EventStoreConfig::default().apply_env(env(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"));
        let err = EventStoreConfig::default().apply_env(env(&[("COMPOSABLE_CODEC", "xml")])).unwrap_err();
        assert!(err.to_string().contains("bincode or json"));
    }

    #[test]
    fn memory_and_in_memory_both_choose_the_in_memory_store_without_any_feature() {
        for name in ["in-memory", "memory"] {
            let config = EventStoreConfig::from_toml_str(&format!("[event_store]\nbackend = \"{name}\"")).unwrap();
            assert_eq!(config.backend, Backend::InMemory, "backend = {name:?} in a file");
            let config =
                EventStoreConfig::default().apply_env(env(&[("COMPOSABLE_EVENT_STORE_BACKEND", name)])).unwrap();
            assert_eq!(config.backend, Backend::InMemory, "COMPOSABLE_EVENT_STORE_BACKEND={name}");
            // Compiled in every feature combination: validation never asks for a feature.
            assert!(config.validate().is_ok(), "{name} must validate without the `testing` feature");
        }
        let config = EventStoreConfig::from_toml_str("[event_store]\nbackend = \"postgresql\"").unwrap();
        assert_eq!(config.backend, Backend::Postgres);
    }

    #[test]
    fn unreadable_files_say_which_file() {
        let err = EventStoreConfig::from_file("/definitely/not/here.toml").unwrap_err().to_string();
        assert!(err.contains("/definitely/not/here.toml"), "{err}");
    }
}
