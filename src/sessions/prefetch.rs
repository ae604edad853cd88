//! Steps 1 and 2 on one trip: work that rides on the session's load, what
//! a request is certain to ask for next (its user), read on the same trip
//! to the blocking pool as its session. Django has no such piece.
//! (Django loads the session and then the user with two queries on one
//! thread; here each trip to the blocking pool is two thread switches, the
//! largest cost of a signed-in page.)
//!
//! The session framework knows nothing of users: start-up registers a
//! [`SessionPrefetch`] (auth's, which reads the user the session claims)
//! and the session layer asks it, before the session loads, whether this
//! request wants it. If so, the database stores run it on the blocking
//! thread right after reading the session, and leave its answer here for
//! the request ([`take`]). Nothing is read that the request would not read
//! anyway, and in the same order: the session, then what it points to.
//! Engines that load the session without the blocking pool (`redis`,
//! `cookie`, `cached_db` from its cache) do not run it; the request then
//! loads what it needs the usual way.

use std::{any::Any, cell::RefCell, future::Future, sync::Arc, time::Duration};

use actix_web::dev::ServiceRequest;

use super::SessionState;

/// What rides on the session's load.
pub trait SessionPrefetch: Send + Sync + 'static {
    /// Whether this request will certainly ask for [`Self::load`]'s answer:
    /// decided before the session loads, from the request alone.
    fn wanted(&self, req: &ServiceRequest) -> bool;

    /// Runs on the blocking thread right after the session was read (only
    /// when there is one); `None` when there is nothing to read.
    fn load(&self, state: &SessionState) -> Option<Box<dyn Any + Send>>;
}

/// The prefetch for the current request, and its answer once loaded.
#[derive(Default)]
struct Slot {
    pending: Option<Arc<dyn SessionPrefetch>>,
    answer: Option<Box<dyn Any + Send>>,
    /// How long the prefetch took: not the session's own load time.
    took: Duration,
}

tokio::task_local! {
    static SLOT: RefCell<Slot>;
}

/// Runs `request` (the session middleware and everything inside it) with
/// `wanted` riding on its session's load.
pub async fn scope<F: Future>(wanted: Option<Arc<dyn SessionPrefetch>>, request: F) -> F::Output {
    let slot = Slot {
        pending: wanted,
        ..Slot::default()
    };
    SLOT.scope(RefCell::new(slot), request).await
}

/// The prefetch the current request wants, for a store about to load its
/// session: taken, so it runs at most once; `None` outside a request.
pub(crate) fn pending() -> Option<Arc<dyn SessionPrefetch>> {
    SLOT.try_with(|slot| slot.borrow_mut().pending.take())
        .ok()
        .flatten()
}

/// Runs `prefetch` on `state`, timed: on the blocking thread, after the
/// session was read.
pub(crate) fn run(
    prefetch: Option<Arc<dyn SessionPrefetch>>,
    state: &SessionState,
) -> (Option<Box<dyn Any + Send>>, Duration) {
    let Some(prefetch) = prefetch else {
        return (None, Duration::ZERO);
    };
    let started = std::time::Instant::now();
    let answer = prefetch.load(state);
    (answer, started.elapsed())
}

/// Leaves the prefetch's answer for the request.
pub(crate) fn deliver((answer, took): (Option<Box<dyn Any + Send>>, Duration)) {
    let _ = SLOT.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        slot.took = took;
        if answer.is_some() {
            slot.answer = answer;
        }
    });
}

/// How long the request's prefetch took: kept out of the session's load
/// time, and the load time of what it read (the user's).
pub(crate) fn time_taken() -> Duration {
    SLOT.try_with(|slot| slot.borrow().took).unwrap_or_default()
}

/// The prefetched answer, if the session's load left one of type `T`:
/// taken, so it is used once.
pub fn take<T: 'static>() -> Option<T> {
    SLOT.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        if !slot.answer.as_ref().is_some_and(|answer| answer.is::<T>()) {
            return None;
        }
        let answer = slot.answer.take()?;
        answer.downcast::<T>().ok().map(|answer| *answer)
    })
    .ok()
    .flatten()
}
