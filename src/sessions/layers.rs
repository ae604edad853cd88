//! Steps 1 and 6 of the dance as layers: Django's `SessionMiddleware`.
//!
//! actix-session's `SessionMiddleware` loads the session, hands it to the
//! request as a map, and saves it on the way out when it changed. Porter
//! puts one layer on each side of it:
//!
//! * [`around_session`], outside it and outside everything that parses
//!   cookies (actix caches the parse, and a re-sealed cookie must be seen by
//!   the session middleware): opens the incoming cookie once
//!   ([`cookies`]), and on the way out answers what the
//!   store reported ([`outcome`]): a session gone at save
//!   time loses its cookie, a store out of reach gives the 503 page; it also
//!   gives a "remember me" session's cookie its `Max-Age`. Before the
//!   session loads, it asks the registered [`prefetch`] whether this request
//!   wants its work to ride on the load.
//! * [`before_save`], inside: touches the session just before it is saved:
//!   "last seen" ([`activity`]), and notes its own expiry
//!   ([`expiry`]) for the cookie, cut to what is left of the session's
//!   absolute lifetime (`SESSION_MAX_AGE`).

use actix_session::SessionExt;
use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{EitherBody, MessageBody},
    cookie::time::Duration,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use super::{
    SESSION_COOKIE_NAME, SessionBackend, SessionCookieSettings, activity, cookies, expiry, outcome,
    prefetch::{self, SessionPrefetch},
};
use crate::errors::AppError;

/// The cookie lifetime [`before_save`] found, for [`around_session`].
#[derive(Debug, Clone, Copy)]
struct CookieMaxAge(u64);

/// Middleware, outside the session middleware and everything that reads
/// cookies.
pub async fn around_session(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(settings) = req.app_data::<web::Data<SessionCookieSettings>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let bad_cookie = cookies::open_incoming(&mut req, &settings);
    let insecure_transport =
        settings.debug && settings.secure && req.connection_info().scheme() != "https";

    // What the request will certainly ask for rides on its session's load.
    let prefetch = req
        .app_data::<web::Data<dyn SessionPrefetch>>()
        .filter(|prefetch| prefetch.wanted(&req))
        .map(|prefetch| prefetch.clone().into_inner());
    let (res, outcome) = prefetch::scope(prefetch, outcome::track(next.call(req))).await;
    let mut res = res?;
    if outcome.unreachable {
        // The request ran without its session and stored nothing: answer
        // with the 503 page, whatever the view said.
        let (request, _) = res.into_parts();
        let page = AppError::Unavailable(anyhow::anyhow!("the session store could not be reached"))
            .error_response();
        return Ok(ServiceResponse::new(request, page).map_into_right_body());
    }
    if outcome.gone {
        cookies::remove_session_cookie(&mut res)?;
    } else if bad_cookie {
        cookies::drop_bad_cookie(&mut res)?;
    }
    let max_age = res.request().extensions().get::<CookieMaxAge>().copied();
    if let Some(CookieMaxAge(secs)) = max_age {
        expiry::add_max_age(res.headers_mut(), secs);
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
    Ok(res.map_into_left_body())
}

/// Middleware, just inside the session middleware: the last touches before
/// the session is saved.
pub async fn before_save(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let res = next.call(req).await?;
    let session = res.request().get_session();
    activity::note_activity(&session, res.request());
    if let Some(secs) = expiry::cookie_max_age(&session) {
        // A "remember me" cookie never outlives the session's absolute
        // lifetime either.
        let secs = match res.request().app_data::<web::Data<SessionBackend>>() {
            Some(backend) => {
                let asked = Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
                let capped = backend.marks().cap(&session.entries(), asked);
                u64::try_from(capped.whole_seconds()).unwrap_or(0)
            }
            None => secs,
        };
        res.request().extensions_mut().insert(CookieMaxAge(secs));
    }
    Ok(res)
}
