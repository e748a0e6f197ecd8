//! The one retry loop for event store calls that fail because the store is unavailable: loads, appends
//! and the other calls a command makes.

use composable_rust_core::{EventStoreError, error_chain};

use super::RepositoryConfig;

/// Runs `call` again while it fails with a transient store error (found by `store_error`), waiting with
/// backoff, at most `config.transient_retries` times; returns the first result that is not such a failure,
/// or the last failure.
pub(super) async fn with_transient_retries<T, E, F, Fut>(
    config: &RepositoryConfig,
    store_error: fn(&E) -> Option<&EventStoreError>,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retries = 0_u32;
    loop {
        let result = call().await;
        let transient = match &result {
            Err(error) => store_error(error).filter(|e| e.is_transient()),
            Ok(_) => None,
        };
        match transient {
            Some(error) if retries < config.transient_retries => {
                retries += 1;
                let wait = config.backoff(retries);
                tracing::warn!(retries, ?wait, error = %error_chain(error), "the event store is unavailable; retrying");
                tokio::time::sleep(wait).await;
            }
            _ => return result,
        }
    }
}
