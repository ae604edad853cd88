//! Per-session expiry: Django's `request.session.set_expiry()`.
//!
//! By default a session is a browser session: its cookie has no `Max-Age`,
//! so the browser drops it on exit, and the server forgets it after
//! `SESSION_TTL` without activity. A session given an expiry (the login
//! form's "remember me") keeps its cookie and its row for that long instead.
//!
//! actix-session configures one lifetime for every cookie, so two small
//! middlewares do the per-session part: [`note_expiry`], inside the session
//! middleware, reads the expiry before the session is saved, and
//! [`persistent_cookie`], outside it, adds `Max-Age` to the cookie the
//! session middleware set.

use std::time::Duration;

use actix_session::{Session, SessionExt, SessionInsertError};
use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
};

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

/// The cookie lifetime [`note_expiry`] found, for [`persistent_cookie`].
#[derive(Debug, Clone, Copy)]
struct CookieMaxAge(u64);

/// Middleware, inside the session middleware: notes the session's expiry
/// before the session middleware takes the state to save it.
pub async fn note_expiry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let res = next.call(req).await?;
    let expiry = res.request().get_session().get::<u64>(EXPIRY_KEY);
    if let Ok(Some(secs)) = expiry {
        res.request().extensions_mut().insert(CookieMaxAge(secs));
    }
    Ok(res)
}

/// Middleware, outside the session middleware: gives the session cookie a
/// `Max-Age` when the session has an expiry of its own.
pub async fn persistent_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let Some(CookieMaxAge(secs)) = res.request().extensions().get::<CookieMaxAge>().copied() else {
        return Ok(res);
    };
    let prefix = format!("{SESSION_COOKIE_NAME}=");
    let headers = res.headers_mut();
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
    Ok(res)
}
