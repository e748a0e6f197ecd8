//! The `order-processing` program: parse the command line, run it, exit with a code that says how it went.
//!
//! Exit codes: 0 done (also when the reader of stdout went away), 1 rejected by the order rules (nothing
//! written), 2 usage error, 3 event store error (missing, or cannot be opened, read or written), 4 a rebuilt
//! order differs from the state it was compared with, 5 no such order (or version or time of it).

use std::process::ExitCode;

use clap::Parser;
use order_processing::cli::Cli;
use order_processing::run::{Exit, run};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2.
    let cli = Cli::parse();
    // What the framework logs (a snapshot ignored, a retried append, an effect that failed) goes to stderr:
    // warnings and errors by default, more with RUST_LOG (e.g. RUST_LOG=composable_rust_runtime=debug).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return Exit::StoreError.into();
        }
    };
    runtime.block_on(run(cli)).into()
}
