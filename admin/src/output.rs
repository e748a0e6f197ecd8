//! What the commands print: lines on stdout (text or JSON), progress bars on stderr when it is a terminal.

use std::io::{IsTerminal, Write};

use chrono::SecondsFormat;
use composable_rust::RecordedEvent;
use composable_rust_archive::format::EventLine;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Exit, Failure};

/// Writes one line to stdout. A closed pipe (`| head -1`) ends the program quietly with exit 0.
pub(crate) fn line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::new(Exit::Done, "")),
        Err(error) => Err(Failure::new(Exit::File, format!("could not write to standard output: {error}"))),
    }
}

/// Prints `value` as one line of JSON.
pub(crate) fn json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::new(Exit::File, format!("could not encode the output as JSON: {e}")))?;
    line(&text)
}

/// Prints an event: its archive line as JSON, or one line of text: position, stream and version, time,
/// type, payload (JSON as is, other codecs in base64).
pub(crate) fn event(event: &RecordedEvent, as_json: bool) -> Result<(), Failure> {
    let described = EventLine::from_recorded(event);
    if as_json {
        return json(&described);
    }
    let payload = match (&described.payload, &described.payload_base64) {
        (Some(raw), _) => raw.get().to_owned(),
        (None, Some(base64)) => format!("{}:{base64}", described.codec),
        (None, None) => String::new(),
    };
    line(&format!(
        "{:>8}  {}@{}  {}  {}  {payload}",
        event.position,
        event.stream_id,
        event.version,
        event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        event.event_type,
    ))
}

/// A progress bar on stderr counting `unit`s up to `total` (a spinner when unknown), or a hidden one when
/// stderr is not a terminal or the output is JSON.
pub(crate) fn progress(total: Option<u64>, unit: &str, as_json: bool) -> ProgressBar {
    if as_json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {{pos}} {unit} ({{per_sec}})"))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
