//! When the session store cannot be reached. Django lets the store's
//! exception through, a 500; Porter answers 503, as for any outage.
//!
//! Store calls are bounded in time here, and a failure that means the store
//! is out of reach is reported to [`outcome`], for the session layer to
//! answer with the 503 page.

use std::{future::Future, time::Duration};

use super::outcome;
use crate::db;

/// How long one call to a remote store (Redis) may take. While the server
/// is away, the client waits for its reconnection to succeed; a request
/// should rather fail fast than pile up behind it.
const REMOTE_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs one call to a remote store, failing with `error` after
/// [`REMOTE_CALL_TIMEOUT`].
pub(crate) async fn bounded<T, E>(
    call: impl Future<Output = Result<T, E>>,
    error: impl FnOnce(anyhow::Error) -> E,
) -> Result<T, E> {
    bounded_for(REMOTE_CALL_TIMEOUT, call, error).await
}

/// Runs one call to a remote store, failing with `error` after `limit`.
pub(crate) async fn bounded_for<T, E>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
    error: impl FnOnce(anyhow::Error) -> E,
) -> Result<T, E> {
    actix_web::rt::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| {
            Err(error(anyhow::anyhow!(
                "no answer from the session store within {limit:?}"
            )))
        })
}

/// Notes an outage if `err`, a database store's error, says the database is
/// unreachable; returns whether it did. Other errors (a bug) stay 500s.
pub(crate) fn note_if_database_down(err: &anyhow::Error) -> bool {
    err.chain().any(db::is_unavailable) && outcome::note_unreachable()
}
