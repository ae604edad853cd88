//! Sessions interrupted, never resurrected: Django's `SessionInterrupted`.
//!
//! A request loads its session when it starts and saves it when it ends
//! (steps 1 and 6). If meanwhile the stored session went away (the user
//! signed out in another tab, revoked it from another browser, it expired),
//! saving must not bring it back: an update would otherwise fall back to
//! storing the whole state, user id included, under a fresh key, and a
//! browser that was just signed out would be signed in again.
//!
//! So the stores report a session that is gone at save time
//! (`note_gone`); from then on nothing of this request's session is
//! stored (`is_gone`), and [`track`], around the session middleware, removes
//! the session cookie from the response. The next request is anonymous.

use std::{cell::Cell, future::Future};

tokio::task_local! {
    static GONE: Cell<bool>;
}

/// Runs `request` (the session middleware and everything inside it) and
/// says whether its session turned out to be gone when it was saved.
pub async fn track<F: Future>(request: F) -> (F::Output, bool) {
    let gone = Cell::new(false);
    GONE.scope(gone, async {
        let output = request.await;
        (output, GONE.with(Cell::get))
    })
    .await
}

/// A store found that the session it was asked to update or cycle no
/// longer exists.
pub(crate) fn note_gone() {
    // Outside a request (the CLI, test helpers) there is nothing to drop.
    let _ = GONE.try_with(|gone| gone.set(true));
}

/// Whether this request's session was found gone: nothing more is stored.
pub(crate) fn is_gone() -> bool {
    GONE.try_with(Cell::get).unwrap_or(false)
}
