//! `order-processing load --metrics-addr` serves the framework's metrics as Prometheus text: the test runs
//! the binary on an SQLite store, waits until the load finished (the process keeps serving until its stdin
//! ends), scrapes the endpoint over HTTP and checks the counters against the events the load wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "set-up failures should fail the test loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_order-processing");
const ORDERS: u64 = 4;
const EVENTS: u64 = 15;

/// A loopback port nothing listens on right now.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The body of `GET /metrics` at `addr`.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "the endpoint answered:\n{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// The value of the sample `name` whose labels include every one of `labels` (`key="value"`); 0 when
/// there is none (Prometheus leaves out counters never incremented).
fn sample(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn a_load_served_with_metrics_addr_reports_the_appends_and_loads_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut child = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .args(["--data-dir", dir.path().to_str().unwrap(), "load"])
        .args(["--orders", &ORDERS.to_string(), "--events", &EVENTS.to_string(), "--concurrency", "2"])
        .args(["--snapshot-every", "5", "--metrics-addr", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start order-processing load");

    // The process says on stderr when the load is done and it only serves metrics.
    let stderr = child.stderr.take().unwrap();
    let (lines, finished) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match finished.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains("The command finished") => break,
            Ok(line) => seen.push(line),
            Err(error) => {
                let _ = child.kill();
                panic!("no end of the load within two minutes ({error}); stderr so far:\n{}", seen.join("\n"));
            }
        }
    }

    let body = scrape(addr);
    let orders = ["backend=\"sqlite\"", "category=\"order\""];
    let written = (ORDERS * EVENTS) as f64;
    // Every event is one command: one append of one event.
    assert_eq!(sample(&body, "composable_appends_total", &orders), written, "{body}");
    assert_eq!(sample(&body, "composable_events_appended_total", &orders), written, "{body}");
    assert_eq!(sample(&body, "composable_append_conflicts_total", &orders), 0.0, "{body}");
    assert_eq!(sample(&body, "composable_append_duration_seconds_count", &orders), written, "{body}");
    // One load per command, then two per order to compare the snapshot path with a full replay.
    let loads = written + 2.0 * ORDERS as f64;
    let hits = sample(&body, "composable_snapshot_hits_total", &orders);
    let misses = sample(&body, "composable_snapshot_misses_total", &orders);
    assert_eq!(hits + misses, loads, "{body}");
    assert!(hits >= ORDERS as f64, "each order's last load starts from its snapshot at version 15: {body}");
    assert_eq!(sample(&body, "composable_load_duration_seconds_count", &orders), loads, "{body}");
    assert!(body.contains("# HELP composable_appends_total"), "the metrics are described: {body}");
    assert!(!body.contains("load-"), "no stream id in a label: {body}");

    // Ending stdin ends the process, with the load's exit code.
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!("Wrote {} events", ORDERS * EVENTS)), "{stdout}");
}
