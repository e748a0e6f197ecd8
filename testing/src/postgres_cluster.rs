//! A private PostgreSQL server for one test, that the test may stop, start and restart:
//! [`PrivateCluster`].
//!
//! Tests that restart a server must not restart the shared one (other tests would see it), so this starts
//! its own cluster with `initdb` and `pg_ctl` from the local PostgreSQL installation, in a temporary folder,
//! on a free port of 127.0.0.1, with trust authentication. It is stopped and removed when dropped, also
//! when the test panics.
//!
//! ```no_run
//! use composable_rust_testing::postgres_cluster::PrivateCluster;
//!
//! let cluster = PrivateCluster::start().expect("a private PostgreSQL cluster");
//! let url = cluster.url(); // postgres://postgres@127.0.0.1:<port>/postgres
//! // ... connect, write ...
//! cluster.restart().expect("restart"); // connections drop; the data stays
//! ```

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL server of this test's own; see the [module docs](self).
pub struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run the server tools as the `postgres` user (they refuse to run as root).
    as_postgres: bool,
}

/// Why a private cluster could not be started or controlled.
#[derive(Debug)]
pub struct ClusterError {
    /// What was being done.
    pub action: String,
    /// What went wrong, with the tool's output.
    pub detail: String,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not {}: {}", self.action, self.detail)
    }
}

impl std::error::Error for ClusterError {}

impl PrivateCluster {
    /// Creates and starts a cluster on a free port.
    ///
    /// # Errors
    /// [`ClusterError`] when no PostgreSQL server binaries are installed under `/usr/lib/postgresql/*/bin`
    /// (Debian's layout; set `PG_BIN` to another folder), or `initdb`/`pg_ctl` fail.
    pub fn start() -> Result<Self, ClusterError> {
        let bin = server_bin()?;
        let as_postgres = running_as_root();
        let dir = std::env::temp_dir().join(format!("composable-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| error("create the cluster folder", &e))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir), "give the cluster folder to postgres")?;
        }
        let port = free_port()?;
        let cluster = Self { bin, dir, port, as_postgres };
        let data = cluster.data_dir();
        cluster.tool("initdb", &["-D", path(&data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The URL of the `postgres` database as the `postgres` superuser.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on (on 127.0.0.1 only).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server fast: open connections are closed, transactions in flight roll back.
    ///
    /// # Errors
    /// [`ClusterError`] when `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.tool("pg_ctl", &["-D", path(&self.data_dir()), "-m", "fast", "-w", "stop"])
    }

    /// Starts the stopped server again, with its data.
    ///
    /// # Errors
    /// [`ClusterError`] when `pg_ctl start` fails.
    pub fn start_server(&self) -> Result<(), ClusterError> {
        let options =
            format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}", self.port, path(&self.dir));
        let log = self.dir.join("server.log");
        self.tool("pg_ctl", &["-D", path(&self.data_dir()), "-l", path(&log), "-o", &options, "-w", "start"])
    }

    /// Stops and starts the server: every connection breaks, the data stays.
    ///
    /// # Errors
    /// [`ClusterError`] when stopping or starting fails.
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.stop()?;
        self.start_server()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<(), ClusterError> {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command, &format!("run {name} {}", args.join(" ")))
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.tool("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for PrivateCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateCluster").field("port", &self.port).field("dir", &self.dir).finish()
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

fn error(action: &str, detail: &dyn fmt::Display) -> ClusterError {
    ClusterError { action: action.to_owned(), detail: detail.to_string() }
}

fn run(command: &mut Command, action: &str) -> Result<(), ClusterError> {
    let output = command.output().map_err(|e| error(action, &e))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Err(error(action, &format!("{} ({})", text.trim(), output.status)))
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or `PG_BIN`.
fn server_bin() -> Result<PathBuf, ClusterError> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| error("find the PostgreSQL server binaries (set PG_BIN to their folder)", &e))?;
    versions
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok().map(|v| (v, entry.path())))
        .max_by_key(|(version, _)| *version)
        .map(|(_, dir)| dir.join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .ok_or_else(|| error("find initdb under /usr/lib/postgresql/*/bin", &"no installation; set PG_BIN"))
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| error("find a free port", &e))?;
    listener.local_addr().map(|addr| addr.port()).map_err(|e| error("find a free port", &e))
}
