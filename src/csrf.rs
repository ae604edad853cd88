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
//!   names another origin than the site's (`SITE_URL`) or a trusted one
//!   (`TRUSTED_ORIGINS`) is refused even with a valid token;
//! * a `csrftoken` cookie that is not a secret Porter made is ignored and
//!   removed, never an error.
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

use crate::{
    cookie_header,
    errors::{self, AppError},
    origin::Origin,
};

/// The cookie holding the secret: Django's `CSRF_COOKIE_NAME`.
pub const CSRF_COOKIE_NAME: &str = "csrftoken";
/// The hidden form field carrying the masked token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The header that may carry the token instead, for scripts.
pub const CSRF_HEADER: &str = "x-csrftoken";

const SECRET_LEN: usize = 32;

/// How the CSRF cookie is issued and which origins may post; registered as
/// app data.
#[derive(Debug, Clone)]
pub struct CsrfConfig {
    /// Send the cookie over HTTPS only.
    pub cookie_secure: bool,
    /// The site's own origin (`SITE_URL`); without it, the origin the
    /// request was sent to.
    pub site_url: Option<Origin>,
    /// Other origins whose requests are accepted (`TRUSTED_ORIGINS`).
    pub trusted_origins: Vec<Origin>,
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

/// The origin the request was sent to: its own `Host` header (or, in
/// HTTP/2, the URI's authority) and the scheme of the connection itself.
/// Forwarding headers (`X-Forwarded-Host`, `Forwarded`) are ignored: any
/// client can write them.
fn request_origin(req: &ServiceRequest) -> Option<Origin> {
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = match req.headers().get(header::HOST) {
        Some(host) => host.to_str().ok()?,
        None => req.uri().authority()?.as_str(),
    };
    Origin::from_parts(scheme, host)
}

/// Why the request looks cross-site, if it does: its `Origin`, or without
/// one its `Referer`, names an origin (scheme, host and port) other than the
/// site's own (`SITE_URL`, else the request's) or a trusted one.
fn cross_site(req: &ServiceRequest, config: &CsrfConfig) -> Option<&'static str> {
    let sent_to = match &config.site_url {
        Some(_) => None,
        None => request_origin(req),
    };
    let own = config.site_url.as_ref().or(sent_to.as_ref());
    let accepted = |url: &str| {
        Origin::parse(url)
            .is_some_and(|origin| own == Some(&origin) || config.trusted_origins.contains(&origin))
    };
    let header = |name| {
        req.headers()
            .get(name)
            .map(|value| value.to_str().unwrap_or_default())
    };
    if let Some(origin) = header(header::ORIGIN) {
        return (!accepted(origin)).then_some("the request came from another site (Origin)");
    }
    if let Some(referer) = header(header::REFERER) {
        return (!accepted(referer)).then_some("the request came from another site (Referer)");
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
    let config = req
        .app_data::<web::Data<CsrfConfig>>()
        .cloned()
        .unwrap_or_else(|| {
            web::Data::new(CsrfConfig {
                cookie_secure: true,
                site_url: None,
                trusted_origins: Vec::new(),
            })
        });
    let cookie_secret = req
        .cookie(CSRF_COOKIE_NAME)
        .and_then(|cookie| parse_secret(cookie.value()));
    // A cookie that holds no secret of ours (garbage, or a value that does
    // not even decode) counts as absent, and the browser is told to drop it.
    let bad_cookie =
        cookie_secret.is_none() && cookie_header::sent(req.headers(), CSRF_COOKIE_NAME);
    match verify_request(&mut req, &config, cookie_secret).await {
        Ok(()) => {
            let mut res = pass(req, next, config.cookie_secure, cookie_secret).await?;
            if bad_cookie
                && res
                    .response()
                    .cookies()
                    .all(|c| c.name() != CSRF_COOKIE_NAME)
            {
                res.response_mut()
                    .add_cookie(&cookie_header::removal(CSRF_COOKIE_NAME))?;
            }
            Ok(res.map_into_left_body())
        }
        Err(refusal) => {
            let mut res = req.error_response(refusal);
            if bad_cookie {
                res.response_mut()
                    .add_cookie(&cookie_header::removal(CSRF_COOKIE_NAME))?;
            }
            Ok(res.map_into_right_body())
        }
    }
}

/// Checks an unsafe request against the cookie's secret, if any.
async fn verify_request(
    req: &mut ServiceRequest,
    config: &CsrfConfig,
    cookie_secret: Option<Secret>,
) -> Result<(), AppError> {
    if !is_unsafe(req.method()) {
        return Ok(());
    }
    if let Some(reason) = cross_site(req, config) {
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
    Ok(())
}

/// Lets a request through with its [`CsrfToken`]; sets the cookie when a
/// new secret was used.
async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    cookie_secure: bool,
    cookie_secret: Option<Secret>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
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
            .secure(cookie_secure)
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
