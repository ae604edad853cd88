//! Sudo mode: sensitive actions ask for proof again when the sign-in is not
//! recent. Django has no guard for it built in (`django-sudo` adds one);
//! GitHub calls it sudo mode.
//!
//! `login` stamps the session with the time ([`SessionKeys::VERIFIED_AT`]);
//! so does `/sudo` once the user typed their password, a TOTP code or used a
//! passkey. [`recent_login_required`] wraps routes like
//! [`login_required`](super::login_required), one step stricter: a signed-in
//! user whose stamp is older than `SUDO_TTL` is sent to `/sudo?next=…` and
//! comes back. A stolen session cookie alone then cannot change the
//! password, the address, the factors, or sign the owner out everywhere.

use actix_session::Session;
use actix_web::{
    Error, HttpRequest, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
    web,
};
use percent_encoding::utf8_percent_encode;

use super::{LazyUser, SessionKeys, guards::redirect_to_login};
use crate::{errors::AppError, paths, settings::Settings};

/// Records in the session that the user proved who they are just now.
pub fn stamp(session: &Session) -> Result<(), actix_session::SessionInsertError> {
    session.insert(SessionKeys::VERIFIED_AT, unix_now())
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether the session's last proof is younger than `ttl`.
pub fn is_recent(session: &Session, ttl: std::time::Duration) -> bool {
    let Ok(Some(at)) = session.get::<i64>(SessionKeys::VERIFIED_AT) else {
        return false;
    };
    let age = unix_now().saturating_sub(at);
    (0..=i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)).contains(&age)
}

/// Where `/sudo` should send the user back to: the page asked for, or for
/// a form post, the page the form was on (its `Referer`, reduced to a path
/// here; `/sudo` checks it again), else the security page.
fn come_back_to(req: &HttpRequest) -> String {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());
    }
    req.headers()
        .get(header::REFERER)
        .and_then(|referer| url::Url::parse(referer.to_str().ok()?).ok())
        .map(|referer| match referer.query() {
            Some(query) => format!("{}?{query}", referer.path()),
            None => referer.path().to_owned(),
        })
        .unwrap_or_else(|| paths::SECURITY.to_owned())
}

/// `/sudo`, asking to come back to `next` afterwards.
pub fn sudo_url(next: &str) -> String {
    format!(
        "{}?next={}",
        paths::SUDO,
        utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Middleware guard: anonymous visitors go to the login page (as with
/// `login_required`); signed-in users whose last proof is older than
/// `SUDO_TTL` go to `/sudo`, and come back after it.
pub async fn recent_login_required(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let lazy_user = LazyUser::of(req.request()).ok_or_else(|| {
        AppError::unexpected("recent_login_required needs the authentication middleware")
    })?;
    if lazy_user.get().await.map_err(AppError::from)?.is_none() {
        let response = redirect_to_login(req.request());
        return Ok(req.into_response(response).map_into_right_body());
    }
    let ttl = req
        .app_data::<web::Data<Settings>>()
        .map(|settings| settings.sudo_ttl)
        .ok_or_else(|| AppError::unexpected("Settings are not registered as app data"))?;
    let session = actix_session::SessionExt::get_session(req.request());
    if is_recent(&session, ttl) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, sudo_url(&come_back_to(req.request()))))
        .finish();
    Ok(req.into_response(response).map_into_right_body())
}
