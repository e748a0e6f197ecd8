//! [`Report`]: the error type for `main` and other top-level functions, printing an error's chain one cause
//! per line instead of a `Debug` dump.

use std::error::Error as StdError;
use std::fmt;

use crate::error::BoxError;

/// Any error, for `fn main() -> Result<(), Report>`: `?` converts every error into it, and when `main`
/// returns it, Rust prints it with `Debug`, which here is the error's message followed by each cause on its
/// own line, never a struct dump. (Like `anyhow::Error`, without the dependency; use `anyhow` instead if you
/// already do, it prints chains the same way with `{:?}`.)
///
/// ```
/// use composable_rust_core::{EventStoreError, Report};
///
/// fn open() -> Result<(), Report> {
///     let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
///     Err(EventStoreError::backend("open data/events.db", io))?
/// }
///
/// let report = open().unwrap_err();
/// assert_eq!(format!("{report:?}"), "could not open data/events.db\n\nCaused by:\n    permission denied");
/// assert_eq!(report.to_string(), "could not open data/events.db");
/// ```
///
/// A cause whose message the error before it already ends with (a transparent wrapper) is printed once.
pub struct Report(BoxError);

impl Report {
    /// The error this report carries.
    #[must_use]
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.0.as_ref()
    }

    /// The error's messages from the outermost to the root cause, each once.
    pub fn chain(&self) -> impl Iterator<Item = String> + '_ {
        let mut messages: Vec<String> = Vec::new();
        let mut next: Option<&(dyn StdError + 'static)> = Some(self.0.as_ref());
        while let Some(error) = next {
            let text = error.to_string();
            // `#[error(transparent)]` and "{source}" wrappers repeat their cause: keep the longer line only.
            match messages.last_mut() {
                Some(last) if last.ends_with(&text) => {}
                _ => messages.push(text),
            }
            next = error.source();
        }
        messages.into_iter()
    }
}

impl<E> From<E> for Report
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Report {
    /// The message, then `Caused by:` and each cause on its own indented line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = self.chain();
        if let Some(first) = chain.next() {
            f.write_str(&first)?;
        }
        for (i, cause) in chain.enumerate() {
            if i == 0 {
                f.write_str("\n\nCaused by:")?;
            }
            write!(f, "\n    {cause}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{EventStoreError, InvalidInput};

    #[test]
    fn a_transparent_wrapper_is_printed_once_and_each_cause_gets_a_line() {
        let inner = EventStoreError::backend("append to order-1", std::io::Error::other("connection reset"));
        let report = Report::from(inner);
        assert_eq!(format!("{report:?}"), "could not append to order-1\n\nCaused by:\n    connection reset");

        let transparent = EventStoreError::from(InvalidInput::Other("bad".into()));
        assert_eq!(format!("{:?}", Report::from(transparent)), "invalid argument: bad");
    }
}
