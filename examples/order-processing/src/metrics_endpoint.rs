//! `--metrics-addr`: the framework's metrics (appends, conflicts, loads, snapshot hits) served as Prometheus
//! text by `metrics-exporter-prometheus`, while the command runs and after it until stdin ends.
//!
//! Each invocation is a process of its own, so its counters start at zero and end with it. To let a
//! scraper (or a test) read what a command did, the process keeps serving after the command finished, until
//! a line is entered or stdin ends (press Enter; a script closes the pipe).

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::run::{Exit, Failure};

/// Installs the Prometheus recorder and its HTTP listener at `addr` (a loopback address: the command line
/// refuses others), on the current tokio runtime.
pub(crate) fn serve(addr: SocketAddr) -> Result<(), Failure> {
    PrometheusBuilder::new().with_http_listener(addr).install().map_err(|error| Failure {
        exit: Exit::Usage,
        message: format!("could not serve metrics at {addr}: {error}; choose a free port with --metrics-addr"),
    })?;
    composable_rust::observability::metric::describe();
    eprintln!("Serving metrics at http://{addr}/metrics (Prometheus text).");
    Ok(())
}

/// Keeps the process (and its metrics endpoint) alive until a line is entered on stdin or stdin ends.
pub(crate) async fn hold(addr: SocketAddr) {
    eprintln!(
        "The command finished; still serving metrics at http://{addr}/metrics until stdin ends (press Enter to stop)."
    );
    let wait = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()));
    // Whatever stdin did (a line, its end, an error), the wait is over.
    let _ = wait.await;
}
