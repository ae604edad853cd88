//! Per-session expiry: Django's `request.session.set_expiry()`.
//!
//! By default a session is a browser session: its cookie has no `Max-Age`,
//! so the browser drops it on exit, and the server forgets it after
//! `SESSION_TTL` without activity. A session given an expiry (the login
//! form's "remember me") keeps its cookie and its row for that long instead.
//!
//! The server side is applied once, for every engine, by
//! [`SessionBackend`](super::SessionBackend); the cookie's `Max-Age` by the
//! session layer ([`layers`](super::layers)), with [`cookie_max_age`] and
//! [`add_max_age`].

use std::time::Duration;

use actix_session::{Session, SessionInsertError};
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use super::{SESSION_COOKIE_NAME, SessionState};

/// The session key holding the expiry, in seconds (Django's name).
pub const EXPIRY_KEY: &str = "_session_expiry";

/// Makes this session last `ttl` (cookie and server side) instead of being a
/// browser session.
pub fn set_expiry(session: &Session, ttl: Duration) -> Result<(), SessionInsertError> {
    session.insert(EXPIRY_KEY, ttl.as_secs())
}

/// The expiry a session asked for, if any.
pub fn expiry_of(state: &SessionState) -> Option<Duration> {
    let secs: u64 = serde_json::from_str(state.get(EXPIRY_KEY)?).ok()?;
    Some(Duration::from_secs(secs))
}

/// The `Max-Age` the session cookie needs, if the session has an expiry of
/// its own.
pub fn cookie_max_age(session: &Session) -> Option<u64> {
    session.get::<u64>(EXPIRY_KEY).ok().flatten()
}

/// Gives the session cookie the response sets a `Max-Age` of `secs`.
/// actix-session configures one lifetime for every cookie; this is the
/// per-session part.
pub fn add_max_age(headers: &mut HeaderMap, secs: u64) {
    let prefix = format!("{SESSION_COOKIE_NAME}=");
    let patched: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .filter_map(|value| {
            let text = value.to_str().ok()?;
            let is_session = text.starts_with(&prefix) && !text.contains("Max-Age=");
            let text = if is_session {
                format!("{text}; Max-Age={secs}")
            } else {
                text.to_owned()
            };
            HeaderValue::from_str(&text).ok()
        })
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in patched {
        headers.append(header::SET_COOKIE, value);
    }
}
