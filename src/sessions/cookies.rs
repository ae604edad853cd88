//! Checks on the session cookie before the session middleware reads it.
//!
//! * **Secret rotation.** A cookie sealed with a key from
//!   `SECRET_KEY_FALLBACKS` is re-sealed with the current key before the
//!   session middleware sees it, so rotating `SECRET_KEY` signs nobody out;
//!   the browser gets a cookie under the new key the next time the session
//!   is saved. Removing a fallback ends the sessions that still depend on it.
//! * **Tampering.** A cookie no key opens is dropped (the visitor is
//!   anonymous), removed from the browser, and reported as a rate-limited
//!   security event, not an error.
//! * **Interruption.** When the session turned out to be gone at save time
//!   (see [`interruption`]), the response removes the cookie instead of
//!   setting it.
//! * **Development.** With `DEBUG` on, a `Secure` cookie sent over plain
//!   http, which a browser would drop, is explained in the log.

use actix_web::{
    Error,
    body::MessageBody,
    cookie::Cookie,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
    web,
};

use super::{
    SESSION_COOKIE_NAME, SessionCookieSettings, interruption, open_session_cookie,
    seal_session_cookie,
};
use crate::{cookie_header, settings::SessionEngine, telemetry::security_event};

/// What to do with the incoming session cookie.
enum Verdict {
    Valid,
    Resealed(String),
    Tampered,
}

fn judge(settings: &SessionCookieSettings, value: &str) -> Verdict {
    let private = settings.engine == SessionEngine::Cookie;
    if open_session_cookie(&settings.key, value, private).is_some() {
        return Verdict::Valid;
    }
    let opened = settings
        .fallback_keys
        .iter()
        .find_map(|key| open_session_cookie(key, value, private));
    match opened {
        Some(plain) => Verdict::Resealed(seal_session_cookie(&settings.key, &plain, private)),
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

/// Replaces any session cookie the response sets with one that removes it.
fn remove_session_cookie<B>(res: &mut ServiceResponse<B>) -> Result<(), Error> {
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

/// Middleware, outside everything that reads cookies.
pub async fn check(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(settings) = req.app_data::<web::Data<SessionCookieSettings>>().cloned() else {
        return next.call(req).await;
    };
    // Read from the raw header: actix caches parsed cookies, and the session
    // middleware must see the rewritten header, not a cached parse.
    let mut bad_cookie = false;
    match raw_session_cookie(&req) {
        Some(value) => match judge(&settings, &value) {
            Verdict::Valid => {}
            Verdict::Resealed(value) => {
                tracing::debug!("session cookie sealed with a fallback key; re-sealed");
                replace_session_cookie(&mut req, Some(&value));
            }
            Verdict::Tampered => {
                security_event(
                    "a session cookie failed its signature check (tampered, or made with another SECRET_KEY)",
                );
                replace_session_cookie(&mut req, None);
                bad_cookie = true;
            }
        },
        // Sent, but not even readable as a cookie (bytes that are not
        // text, escapes that decode to none): nobody's session either.
        None => bad_cookie = cookie_header::sent(req.headers(), SESSION_COOKIE_NAME),
    }

    let insecure_transport =
        settings.debug && settings.secure && req.connection_info().scheme() != "https";
    let (res, gone) = interruption::track(next.call(req)).await;
    let mut res = res?;
    if gone {
        remove_session_cookie(&mut res)?;
    } else if bad_cookie
        && res
            .response()
            .cookies()
            .all(|c| c.name() != SESSION_COOKIE_NAME)
    {
        // A browser keeps sending a bad cookie until told to drop it.
        res.response_mut()
            .add_cookie(&cookie_header::removal(SESSION_COOKIE_NAME))?;
    }
    if insecure_transport
        && res
            .response()
            .cookies()
            .any(|c| c.name() == SESSION_COOKIE_NAME)
    {
        tracing::warn!(
            "the session cookie is Secure but this request came over plain http: the browser \
             will drop it and you will not stay signed in. For local development set \
             COOKIE_SECURE=false (the default when DEBUG is on), or serve over https"
        );
    }
    Ok(res)
}
