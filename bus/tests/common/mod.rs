//! What the bus tests share: events to publish, the NATS server they run against, and servers of their own.

#![allow(dead_code, reason = "each test file uses a part")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail the test on setup errors")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use composable_rust_bus::{JetStreamBus, JetStreamConfig};
use composable_rust_core::{Bytes, CodecId, EventId, GlobalPosition, Metadata, RecordedEvent, StreamId, Version};

/// The NATS server the tests use: `NATS_URL`, or the default local one. scripts/test.sh starts one when
/// none answers; without one the tests fail, saying so.
pub(crate) fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A prefix no other test run uses, so that tests never see each other's streams.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!("t{}{}", test.replace(['_', '-'], ""), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A bus on the test server under a fresh prefix.
pub(crate) async fn bus(test: &str) -> JetStreamBus {
    let config = JetStreamConfig::new(nats_url(), unique_prefix(test));
    match JetStreamBus::connect(config).await {
        Ok(bus) => bus,
        Err(error) => panic!(
            "the JetStream tests need a NATS server with JetStream at {} (set NATS_URL, or run scripts/test.sh, \
             which starts `nats-server -js`): {}",
            nats_url(),
            composable_rust_core::error_chain(&error)
        ),
    }
}

/// The `n`-th event (from 1) of `stream`, at global position `position`.
pub(crate) fn event(stream: &str, n: u64, position: u64) -> RecordedEvent {
    RecordedEvent {
        id: EventId::generate(),
        stream_id: StreamId::new(stream).unwrap(),
        version: Version::new(n),
        position: GlobalPosition::new(position),
        event_type: "Happened.v1".into(),
        codec: CodecId::Json,
        payload: Bytes::from(format!("{{\"n\":{n}}}")),
        metadata: Metadata::correlated(uuid::Uuid::from_u128(u128::from(position))),
        recorded_at: chrono::Utc::now(),
        tags: Vec::new(),
    }
}

/// `count` events spread over `streams` streams of category `category`, in position order.
pub(crate) fn events(category: &str, streams: u64, count: u64) -> Vec<RecordedEvent> {
    (0..count).map(|i| event(&format!("{category}-{}", i % streams), i / streams + 1, i + 1)).collect()
}

/// The nats-server binary: `NATS_SERVER`, else `nats-server` on the PATH, else Debian's path.
pub(crate) fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("NATS_SERVER") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("nats-server")).find(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

/// A free TCP port on the loopback interface.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A nats-server process of a test's own, killed when dropped.
pub(crate) struct NatsServer {
    child: Option<Child>,
    pub(crate) port: u16,
    args: Vec<String>,
}

impl NatsServer {
    /// A single JetStream server on a free loopback port, storing in `dir`.
    pub(crate) fn start(dir: &Path) -> Self {
        let port = free_port();
        let args = vec![
            "-js".to_owned(),
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-sd".to_owned(),
            dir.display().to_string(),
        ];
        Self::spawn(args, port)
    }

    /// A server with the given arguments, listening on `port` once started.
    pub(crate) fn spawn(args: Vec<String>, port: u16) -> Self {
        let mut server = Self { child: None, port, args };
        server.restart();
        server
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL: no goodbye to clients or peers).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same arguments (same port, same storage).
    pub(crate) fn restart(&mut self) {
        self.kill();
        let child = Command::new(nats_server_binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} (install Debian's nats-server, or set NATS_SERVER): {e}",
                    nats_server_binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on port {} within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
