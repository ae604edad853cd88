//! What became of the request's session in its store, for the session
//! layer to answer: Django's `SessionInterrupted`, and outages.
//!
//! A request loads its session when it starts and saves it when it ends
//! (steps 1 and 6). Two things can happen to the store meanwhile:
//!
//! * **The session is gone** (the user signed out in another tab, revoked it
//!   from another browser, it expired). Saving must not bring it back: an
//!   update would otherwise store the whole state, user id included, under
//!   a fresh key, and a browser just signed out would be signed in again.
//!   So the stores report it (`note_gone`); from then on nothing of this
//!   request's session is stored (`is_gone`), and the session layer
//!   removes the cookie. The next request is anonymous.
//! * **The store cannot be reached** (`note_unreachable`). actix-session
//!   would turn the store's error into a bare 500; instead the engine
//!   carries on as if there were no session (nothing is stored) and the
//!   session layer answers the request with the 503 page, as for any
//!   outage, dressed like every other page.

use std::{cell::Cell, future::Future};

/// What the stores reported while a request ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The session was gone when it was saved.
    pub gone: bool,
    /// The store could not be reached.
    pub unreachable: bool,
}

tokio::task_local! {
    static OUTCOME: Cell<Outcome>;
}

/// Runs `request` (the session middleware and everything inside it) and
/// says what the stores reported meanwhile.
pub async fn track<F: Future>(request: F) -> (F::Output, Outcome) {
    OUTCOME
        .scope(Cell::new(Outcome::default()), async {
            let output = request.await;
            (output, OUTCOME.with(Cell::get))
        })
        .await
}

/// Records a change for the current request; `false` outside one (the CLI,
/// test helpers, housekeeping), where there is no response to shape.
fn note(change: impl FnOnce(&mut Outcome)) -> bool {
    OUTCOME
        .try_with(|cell| {
            let mut outcome = cell.get();
            change(&mut outcome);
            cell.set(outcome);
        })
        .is_ok()
}

/// A store found that the session it was asked to update or cycle no
/// longer exists.
pub(crate) fn note_gone() {
    note(|outcome| outcome.gone = true);
}

/// The store could not be reached for the current request. Returns whether
/// a request will answer for it (with the 503 page); outside one the caller
/// keeps its error.
pub(crate) fn note_unreachable() -> bool {
    note(|outcome| outcome.unreachable = true)
}

/// An update's key, after noting the session gone when the store found
/// nothing to update (signed out, revoked or expired while this request
/// ran): it is never resurrected, under its key or a new one.
pub(crate) fn updated_or_gone(
    updated: bool,
    session_key: actix_session::storage::SessionKey,
) -> actix_session::storage::SessionKey {
    if !updated {
        note_gone();
    }
    session_key
}

/// Whether this request's session was found gone: nothing more is stored.
pub(crate) fn is_gone() -> bool {
    OUTCOME.try_with(|cell| cell.get().gone).unwrap_or(false)
}
