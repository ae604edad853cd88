//! The session cookie: how it is issued, sealed and opened, and what is done
//! with the one a request brings before the session middleware reads it.
//!
//! * **Opened once.** The incoming cookie is opened here, once; the key it
//!   holds is kept on the request ([`current_key`]) for the pages that need
//!   it ("your sessions", the trace page). (actix-session checks the
//!   signature again when it loads the session; it offers no way to hand it
//!   a key already checked.)
//! * **Secret rotation.** A cookie sealed with a key from
//!   `SECRET_KEY_FALLBACKS` is re-sealed with the current key before the
//!   session middleware sees it, so rotating `SECRET_KEY` signs nobody out;
//!   the browser gets a cookie under the new key the next time the session
//!   is saved. Removing a fallback ends the sessions that still depend on it.
//! * **Tampering.** A cookie no key opens is dropped (the visitor is
//!   anonymous), removed from the browser, and reported as a rate-limited
//!   security event, not an error.

use actix_session::{
    SessionMiddleware,
    config::{BrowserSession, TtlExtensionPolicy},
};
use actix_web::{
    HttpMessage, HttpRequest,
    body::MessageBody,
    cookie::{Cookie, CookieJar, Key, SameSite, time::Duration},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
};

use super::{SESSION_COOKIE_NAME, SessionBackend, models};
use crate::{cookie_header, security_log::security_event, settings::SessionEngine};

/// How the session cookie is issued.
#[derive(Clone)]
pub struct SessionCookieSettings {
    /// Key that signs (and for the cookie engine, encrypts) the cookie.
    pub key: Key,
    /// Send the cookie over HTTPS only.
    pub secure: bool,
    /// How long a session lives without activity.
    pub ttl: std::time::Duration,
    /// Which engine keeps the sessions.
    pub engine: SessionEngine,
    /// Keys from `SECRET_KEY_FALLBACKS`: cookies sealed with them are
    /// still accepted.
    pub fallback_keys: Vec<Key>,
    /// `DEBUG`: explain cookies a browser would drop.
    pub debug: bool,
}

impl std::fmt::Debug for SessionCookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookieSettings")
            .field("key", &"[redacted]")
            .field("secure", &self.secure)
            .field("ttl", &self.ttl)
            .field("engine", &self.engine)
            .field("fallback_keys", &self.fallback_keys.len())
            .field("debug", &self.debug)
            .finish()
    }
}

/// actix-session's session middleware for `backend`: step 1 on the way in,
/// step 6 on the way out.
pub fn session_middleware(
    backend: SessionBackend,
    cookie: &SessionCookieSettings,
) -> SessionMiddleware<SessionBackend> {
    let ttl = Duration::try_from(cookie.ttl).unwrap_or(Duration::WEEK);
    let content_security = backend.cookie_content_security();
    SessionMiddleware::builder(backend, cookie.key.clone())
        .cookie_name(SESSION_COOKIE_NAME.to_owned())
        .cookie_secure(cookie.secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_content_security(content_security)
        // A browser session by default (no Max-Age; see `expiry` for
        // "remember me"). As Django with SESSION_SAVE_EVERY_REQUEST off, the
        // expiry moves only when the session is saved, so a request that
        // changes nothing writes nothing; `activity` saves it at most once a
        // minute, which makes the TTL an idle timeout.
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(ttl)
                .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}

/// The plain value of a `sessionid` cookie value, if it was made with `key`:
/// the session key for server-side engines (signed cookies), the session
/// data for the cookie engine (`private`, encrypted cookies).
pub fn open_session_cookie(key: &Key, value: &str, private: bool) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(SESSION_COOKIE_NAME, value.to_owned()));
    let cookie = if private {
        jar.private(key).get(SESSION_COOKIE_NAME)
    } else {
        jar.signed(key).get(SESSION_COOKIE_NAME)
    };
    cookie.map(|cookie| cookie.value().to_owned())
}

/// Seals `plain` as a `sessionid` cookie value with `key`: the inverse of
/// [`open_session_cookie`].
pub fn seal_session_cookie(key: &Key, plain: &str, private: bool) -> String {
    let mut jar = CookieJar::new();
    let cookie = Cookie::new(SESSION_COOKIE_NAME, plain.to_owned());
    if private {
        jar.private_mut(key).add(cookie);
    } else {
        jar.signed_mut(key).add(cookie);
    }
    jar.get(SESSION_COOKIE_NAME)
        .map(|cookie| cookie.value().to_owned())
        .unwrap_or_default()
}

/// The session key the request came with, as opened by [`open_incoming`],
/// for server-side engines.
#[derive(Debug, Clone)]
struct CurrentSessionKey(String);

/// The hash of the session key the request came with, for server-side
/// engines: how "your sessions" knows which row is the current one.
pub fn current_key_hash(req: &HttpRequest) -> Option<String> {
    current_key(req).map(|key| models::hash_key(&key))
}

/// The session key the request came with, for server-side engines. Only the
/// trace page shows it, and only its first characters.
pub fn current_key(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<CurrentSessionKey>()
        .map(|key| key.0.clone())
}

/// What the incoming session cookie turned out to be.
enum Verdict {
    /// Made with the current key; its plain value.
    Valid(String),
    /// Made with a fallback key: its plain value, and the value re-sealed
    /// with the current key.
    Resealed(String, String),
    /// No key opens it.
    Tampered,
}

fn judge(settings: &SessionCookieSettings, value: &str) -> Verdict {
    let private = settings.engine == SessionEngine::Cookie;
    if let Some(plain) = open_session_cookie(&settings.key, value, private) {
        return Verdict::Valid(plain);
    }
    let opened = settings
        .fallback_keys
        .iter()
        .find_map(|key| open_session_cookie(key, value, private));
    match opened {
        Some(plain) => {
            let resealed = seal_session_cookie(&settings.key, &plain, private);
            Verdict::Resealed(plain, resealed)
        }
        None => Verdict::Tampered,
    }
}

/// The `sessionid` cookie's value, straight from the `Cookie` header.
fn raw_session_cookie(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| Cookie::parse_encoded(pair.trim().to_owned()).ok())
        .find(|cookie| cookie.name() == SESSION_COOKIE_NAME)
        .map(|cookie| cookie.value().to_owned())
}

/// Rewrites the request's `Cookie` header with `sessionid` replaced (or
/// removed, when `value` is `None`).
fn replace_session_cookie(req: &mut ServiceRequest, value: Option<&str>) {
    let others: Vec<String> = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with(&format!("{SESSION_COOKIE_NAME}=")))
        .map(str::to_owned)
        .collect();
    let mut pairs = others;
    if let Some(value) = value {
        pairs.push(
            Cookie::new(SESSION_COOKIE_NAME, value)
                .encoded()
                .to_string(),
        );
    }
    let headers = req.headers_mut();
    headers.remove(header::COOKIE);
    if let Ok(joined) = HeaderValue::from_str(&pairs.join("; ")) {
        headers.insert(header::COOKIE, joined);
    }
}

/// Opens the request's session cookie, once: keeps its key on the request,
/// re-seals a cookie made with a fallback key, drops one no key opens.
/// Returns whether the browser sent a session cookie that is no good (to
/// be removed from the browser).
pub(crate) fn open_incoming(req: &mut ServiceRequest, settings: &SessionCookieSettings) -> bool {
    let server_side = settings.engine != SessionEngine::Cookie;
    // Read from the raw header: actix caches parsed cookies, and the session
    // middleware must see the rewritten header, not a cached parse.
    match raw_session_cookie(req) {
        Some(value) => match judge(settings, &value) {
            Verdict::Valid(plain) => {
                if server_side {
                    req.extensions_mut().insert(CurrentSessionKey(plain));
                }
                false
            }
            Verdict::Resealed(plain, resealed) => {
                tracing::debug!("session cookie sealed with a fallback key; re-sealed");
                replace_session_cookie(req, Some(&resealed));
                if server_side {
                    req.extensions_mut().insert(CurrentSessionKey(plain));
                }
                false
            }
            Verdict::Tampered => {
                security_event(
                    "a session cookie failed its signature check (tampered, or made with another SECRET_KEY)",
                );
                replace_session_cookie(req, None);
                true
            }
        },
        // Sent, but not even readable as a cookie (bytes that are not
        // text, escapes that decode to none): nobody's session either.
        None => cookie_header::sent(req.headers(), SESSION_COOKIE_NAME),
    }
}

/// Replaces any session cookie the response sets with one that removes it.
pub(crate) fn remove_session_cookie<B>(
    res: &mut ServiceResponse<B>,
) -> Result<(), actix_web::Error> {
    let prefix = format!("{SESSION_COOKIE_NAME}=");
    let headers = res.headers_mut();
    let others: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .filter(|value| !value.as_bytes().starts_with(prefix.as_bytes()))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in others {
        headers.append(header::SET_COOKIE, value);
    }
    res.response_mut()
        .add_cookie(&cookie_header::removal(SESSION_COOKIE_NAME))?;
    Ok(())
}

/// Removes a bad session cookie from the browser, unless the response
/// already sets a new one.
pub(crate) fn drop_bad_cookie<B: MessageBody>(
    res: &mut ServiceResponse<B>,
) -> Result<(), actix_web::Error> {
    let sets_one = res
        .response()
        .cookies()
        .any(|c| c.name() == SESSION_COOKIE_NAME);
    if !sets_one {
        // A browser keeps sending a bad cookie until told to drop it.
        res.response_mut()
            .add_cookie(&cookie_header::removal(SESSION_COOKIE_NAME))?;
    }
    Ok(())
}
