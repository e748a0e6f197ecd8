//! The `course-enrolment` program: parse the command line, run it, exit with a code that says how it went.
//!
//! Exit codes: 0 done, 1 refused by the rules (nothing written), 2 usage error, 3 event store error.

use std::process::ExitCode;

use clap::Parser;
use course_enrolment::app::{Exit, run};
use course_enrolment::cli::Cli;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2.
    let cli = Cli::parse();
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
