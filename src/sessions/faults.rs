//! When the session store cannot be reached. Django lets the store's
//! exception through, a 500; Porter answers 503, as for any outage.
//!
//! actix-session turns every store error into a bare 500 whose cause it
//! keeps to itself. So the store notes an outage here, for the request it
//! is serving, and the layer around the session middleware
//! ([`errors::session_store_outage`](crate::errors::session_store_outage))
//! turns that request's failure into the 503 page.

use std::{cell::Cell, future::Future, rc::Rc, time::Duration};

use crate::db;

tokio::task_local! {
    static OUTAGE_SEEN: Rc<Cell<bool>>;
}

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
    actix_web::rt::time::timeout(REMOTE_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(error(anyhow::anyhow!(
                "no answer from the session store within {REMOTE_CALL_TIMEOUT:?}"
            )))
        })
}

/// Runs `work` (the session middleware) and says whether the store reported
/// an outage while it ran.
pub async fn watch<F: Future>(work: F) -> (F::Output, bool) {
    let seen = Rc::new(Cell::new(false));
    let output = OUTAGE_SEEN.scope(Rc::clone(&seen), work).await;
    (output, seen.get())
}

/// Notes that the store could not be reached for the current request.
pub(crate) fn note_outage() {
    // Outside `watch` (the CLI, housekeeping) there is no page to answer.
    let _ = OUTAGE_SEEN.try_with(|seen| seen.set(true));
}

/// Notes an outage if `err`, a database store's error, says the database is
/// unreachable; other errors (a bug) stay 500s.
pub(crate) fn note_if_database_down(err: &anyhow::Error) {
    if err.chain().any(db::is_unavailable) {
        note_outage();
    }
}
