//! `eventstore-admin`: look inside a composable-rust event store, back it up and restore it. It opens the
//! store the application's configuration names (`composable_rust::config`), so it works on every backend
//! the facade is built with. See docs/operations.md, "The admin CLI".

mod cli;
mod output;
mod retention;
mod run;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// How a run ended: the exit code and what to print on stderr (see [`cli::EXIT_CODES`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Exit,
    pub(crate) message: String,
}

/// The exit codes other than 0 and clap's 2 for usage errors it finds itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done; also when the reader of the output went away (`| head -1`).
    Done = 0,
    /// A value the user gave is not valid.
    Usage = 2,
    /// The store failed, refused or is not there; or the configuration is wrong.
    Store = 3,
    /// The archive is invalid.
    InvalidArchive = 4,
    /// No such stream.
    NoSuchStream = 5,
    /// A file could not be read or written.
    File = 6,
}

impl Failure {
    pub(crate) fn new(code: Exit, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `error`'s message and each of its causes on a line of its own.
    pub(crate) fn from_error(code: Exit, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str("\n  caused by: ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self { code, message }
    }
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(Exit::Store as u8);
        }
    };
    match runtime.block_on(run::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.code == Exit::Done => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}
