//! Cross-site request forgery protection: Django's `CsrfViewMiddleware`.
//!
//! The guard does not live in the session, so that an anonymous visitor who
//! only looks at the login form leaves no session row behind. As in Django:
//!
//! * a random 32-byte secret lives in its own cookie, `csrftoken`;
//! * each form carries the secret *masked* with a fresh one-time pad, so the
//!   token differs on every page (no BREACH-style compression oracle);
//! * every unsafe request (POST, PUT, PATCH, DELETE) must carry a token, in
//!   the `csrf_token` form field or the `X-CSRFToken` header, that unmasks
//!   to the cookie's secret; otherwise it is refused with 403;
//! * `login` rotates the secret, so a token seen before login is useless
//!   after it;
//! * in depth, an unsafe request whose `Origin` (or, without one, `Referer`)
//!   names another site is refused even with a valid token.
//!
//! It is written out here rather than taken from a crate because it is
//! small, it is part of the machinery this project explains, and the actix
//! CSRF crates available describe themselves as unaudited.

use std::{cell::RefCell, rc::Rc};

use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest,
    body::{EitherBody, MessageBody},
    cookie::{Cookie, SameSite, time::Duration},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
    web,
};
use futures_util::future::{Ready, ready};
use subtle::ConstantTimeEq;

use crate::errors::{self, AppError};

/// The cookie holding the secret: Django's `CSRF_COOKIE_NAME`.
pub const CSRF_COOKIE_NAME: &str = "csrftoken";
/// The hidden form field carrying the masked token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The header that may carry the token instead, for scripts.
pub const CSRF_HEADER: &str = "x-csrftoken";

const SECRET_LEN: usize = 32;

/// How the CSRF cookie is issued; registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct CsrfConfig {
    /// Send the cookie over HTTPS only.
    pub cookie_secure: bool,
}

type Secret = [u8; SECRET_LEN];

fn new_secret() -> Secret {
    let mut secret = [0u8; SECRET_LEN];
    rand::fill(&mut secret);
    secret
}

/// Masks the secret with a fresh pad: `hex(pad || secret XOR pad)`.
fn mask(secret: &Secret) -> String {
    let pad = new_secret();
    let mut token = Vec::with_capacity(SECRET_LEN * 2);
    token.extend_from_slice(&pad);
    token.extend(secret.iter().zip(pad).map(|(s, p)| s ^ p));
    hex::encode(token)
}

fn unmask(token: &str) -> Option<Secret> {
    let bytes = hex::decode(token.trim()).ok()?;
    let (pad, masked) = bytes.split_at_checked(SECRET_LEN)?;
    let mut secret = [0u8; SECRET_LEN];
    if masked.len() != SECRET_LEN {
        return None;
    }
    for (out, (m, p)) in secret.iter_mut().zip(masked.iter().zip(pad)) {
        *out = m ^ p;
    }
    Some(secret)
}

fn parse_secret(cookie_value: &str) -> Option<Secret> {
    hex::decode(cookie_value).ok()?.try_into().ok()
}

#[derive(Debug)]
struct CsrfState {
    secret: Secret,
    /// The browser does not have this secret yet: set the cookie on the way out.
    pending: bool,
    /// A form was rendered with this secret.
    used: bool,
}

/// The request's CSRF token, for rendering forms.
#[derive(Debug, Clone)]
pub struct CsrfToken(Rc<RefCell<CsrfState>>);

impl CsrfToken {
    /// The value for the hidden `csrf_token` field: the secret, freshly masked.
    pub fn form_value(&self) -> String {
        let mut state = self.0.borrow_mut();
        state.used = true;
        mask(&state.secret)
    }

    fn cookie_to_set(&self) -> Option<String> {
        let state = self.0.borrow();
        (state.pending && state.used).then(|| hex::encode(state.secret))
    }
}

impl FromRequest for CsrfToken {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Self>().cloned().ok_or_else(|| {
            AppError::unexpected("CsrfToken requested but csrf::protect is not installed").into()
        }))
    }
}

/// Replaces the secret with a new one (Django's `rotate_token`): `login`
/// calls it so that tokens from before the login stop working.
pub fn rotate_token(req: &HttpRequest) {
    if let Some(token) = req.extensions().get::<CsrfToken>() {
        let mut state = token.0.borrow_mut();
        state.secret = new_secret();
        state.pending = true;
        state.used = true;
    }
}

/// The authority (`host[:port]`) of an absolute URL, lowercased.
fn authority(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Drop any user info: "https://user@host/" names host.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Why the request looks cross-site, if it does: its `Origin`, or without
/// one its `Referer`, names a host other than the one it was sent to.
fn cross_site(req: &ServiceRequest) -> Option<&'static str> {
    let host = req.connection_info().host().to_ascii_lowercase();
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    if let Some(origin) = header(header::ORIGIN) {
        return (authority(origin).as_deref() != Some(host.as_str()))
            .then_some("the request came from another site (Origin)");
    }
    if let Some(referer) = header(header::REFERER) {
        return (authority(referer).as_deref() != Some(host.as_str()))
            .then_some("the request came from another site (Referer)");
    }
    None
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Finds the token in the request: the header first, else the form field.
/// Reading the form consumes the body, so it is put back for the handler.
async fn submitted_token(req: &mut ServiceRequest) -> Result<Option<String>, AppError> {
    if let Some(value) = req.headers().get(CSRF_HEADER) {
        return Ok(value.to_str().ok().map(str::to_owned));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(None);
    }
    // Honours the app's `PayloadConfig` limit: an oversized body is a 413.
    let body = req
        .extract::<web::Bytes>()
        .await
        .map_err(|err| errors::body_error(&err))?;
    let token = form_urlencoded_field(&body, CSRF_FIELD);
    req.set_payload(Payload::from(body));
    Ok(token)
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Middleware: checks every unsafe request and provides [`CsrfToken`]. A
/// refused request is answered here with the 403 page, as a response (not
/// an error), so the layers outside still dress it with their headers.
pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    match check(&mut req).await {
        Ok(cookie_secret) => Ok(pass(req, next, cookie_secret).await?.map_into_left_body()),
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// Checks an unsafe request; returns the cookie's secret, if any.
async fn check(req: &mut ServiceRequest) -> Result<Option<Secret>, AppError> {
    let cookie_secret = req
        .cookie(CSRF_COOKIE_NAME)
        .and_then(|cookie| parse_secret(cookie.value()));
    if !is_unsafe(req.method()) {
        return Ok(cookie_secret);
    }
    if let Some(reason) = cross_site(req) {
        return Err(AppError::Csrf(reason));
    }
    let Some(secret) = cookie_secret else {
        return Err(AppError::Csrf("the CSRF cookie is missing"));
    };
    let submitted = submitted_token(req).await?;
    let Some(submitted) = submitted.as_deref().and_then(unmask) else {
        return Err(AppError::Csrf("the CSRF token is missing or malformed"));
    };
    if !bool::from(submitted.ct_eq(&secret)) {
        return Err(AppError::Csrf("the CSRF token is incorrect"));
    }
    Ok(Some(secret))
}

/// Lets a request through with its [`CsrfToken`]; sets the cookie when a
/// new secret was used.
async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    cookie_secret: Option<Secret>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let config = req
        .app_data::<web::Data<CsrfConfig>>()
        .map(|config| *config.get_ref())
        .unwrap_or(CsrfConfig {
            cookie_secure: true,
        });

    let token = CsrfToken(Rc::new(RefCell::new(CsrfState {
        secret: cookie_secret.unwrap_or_else(new_secret),
        pending: cookie_secret.is_none(),
        used: false,
    })));
    req.extensions_mut().insert(token.clone());

    let mut res = next.call(req).await?;
    if let Some(value) = token.cookie_to_set() {
        let cookie = Cookie::build(CSRF_COOKIE_NAME, value)
            .path("/")
            .http_only(true)
            .secure(config.cookie_secure)
            .same_site(SameSite::Lax)
            // As Django's CSRF_COOKIE_AGE: a year.
            .max_age(Duration::days(365))
            .finish();
        res.response_mut().add_cookie(&cookie)?;
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_token_unmasks_to_its_secret_and_differs_each_time() {
        let secret = new_secret();
        let (a, b) = (mask(&secret), mask(&secret));
        assert_ne!(a, b);
        assert_eq!(unmask(&a), Some(secret));
        assert_eq!(unmask(&b), Some(secret));
    }

    #[test]
    fn authorities_are_read_from_origins_and_referers() {
        assert_eq!(
            authority("https://Example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            authority("http://localhost:8080/login?next=/").as_deref(),
            Some("localhost:8080")
        );
        assert_eq!(
            authority("https://user@evil.example/").as_deref(),
            Some("evil.example")
        );
        assert_eq!(authority("null"), None);
    }

    #[test]
    fn malformed_tokens_do_not_unmask() {
        for bad in [
            "",
            "zz",
            &"ab".repeat(SECRET_LEN),
            &"ab".repeat(SECRET_LEN * 3),
        ] {
            assert_eq!(unmask(bad), None, "{bad}");
        }
    }
}
