//! Step 5 of the dance, `login_required`: Django's `@login_required`.
//!
//! [`login_required`] wraps routes: it asks the lazy user (which loads it)
//! and sends anonymous visitors to the login page with `?next=` pointing back
//! here. Handlers behind it take [`CurrentUser`], which reads the user the
//! guard already loaded: no second query.

use std::future::Future;
use std::pin::Pin;

use actix_web::{
    Error, FromRequest, HttpRequest, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{LazyUser, User};
use crate::{errors::AppError, paths};

/// What `next` keeps unescaped: as Django, `/` stays readable.
const NEXT_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The login page, asking to come back to `path_and_query` afterwards.
pub fn login_url(path_and_query: &str) -> String {
    format!(
        "{}?next={}",
        paths::LOGIN,
        utf8_percent_encode(path_and_query, NEXT_ESCAPE)
    )
}

/// The login page, asking to come back to the page `req` asked for.
fn login_url_for(req: &HttpRequest) -> String {
    let here = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    login_url(here)
}

/// The `303 See Other` that sends an anonymous visitor to sign in.
pub fn redirect_to_login(req: &HttpRequest) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, login_url_for(req)))
        .finish()
}

/// Middleware guard: anonymous visitors are redirected to the login page;
/// signed-in users go through, with their user loaded.
pub async fn login_required(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let lazy_user = LazyUser::of(req.request()).ok_or_else(|| {
        AppError::unexpected("login_required needs the authentication middleware")
    })?;
    if lazy_user.get().await.map_err(AppError::from)?.is_some() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = redirect_to_login(req.request());
    Ok(req.into_response(response).map_into_right_body())
}

/// The signed-in user, for handlers behind [`login_required`].
///
/// Used without the guard it guards by itself: an anonymous visitor gets the
/// same redirect to the login page.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequest for CurrentUser {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let lazy_user = LazyUser::of(&req).ok_or_else(|| {
                AppError::unexpected("CurrentUser needs the authentication middleware")
            })?;
            match lazy_user.get().await.map_err(AppError::from)? {
                Some(user) => Ok(CurrentUser(user)),
                None => Err(AppError::LoginRequired(login_url_for(&req)).into()),
            }
        })
    }
}
