//! Step 5 of the dance, `login_required`: Django's `@login_required`,
//! `LoginRequiredMiddleware` (5.1), `@staff_member_required` and
//! `@permission_required`.
//!
//! [`login_required_by_default`] runs on every request: a route not marked
//! public ([`PublicRoutes`]) needs a signed-in user, so a page added to the
//! route table is protected unless someone decides otherwise.
//! [`login_required`] does the same for one route. [`staff_required`] and
//! [`permission_required`] add what the user must be or hold; they compose
//! with it. Every guard asks the lazy user (which loads it once) and sends
//! anonymous visitors to the login page with `?next=` pointing back here;
//! a signed-in user who lacks what the route needs gets `403`. Handlers
//! behind them take [`CurrentUser`] or [`StaffUser`], which read the user
//! the guard already loaded: no second query.

use std::future::Future;
use std::pin::Pin;

use std::collections::BTreeSet;

use actix_web::{
    Error, FromRequest, HttpRequest, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform},
    http::header,
    middleware::{Next, from_fn},
    web,
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

/// What a guard asks of the request's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Signed in.
    SignedIn,
    /// Signed in, and staff.
    Staff,
    /// Signed in, and holding this permission (a codename).
    Permission(&'static str),
}

/// Whether the request's user passes `rule`: `Ok(None)` when they do, or
/// the answer for them when they do not (to sign in, or `403`).
async fn check(req: &HttpRequest, rule: Rule) -> Result<Option<AppError>, AppError> {
    let lazy_user = LazyUser::of(req)
        .ok_or_else(|| AppError::unexpected("the guards need the authentication middleware"))?;
    let Some(user) = lazy_user.get().await? else {
        return Ok(Some(AppError::LoginRequired(login_url_for(req))));
    };
    let allowed = match rule {
        Rule::SignedIn => true,
        Rule::Staff => user.is_staff,
        Rule::Permission(codename) => lazy_user.has_perm(codename).await?,
    };
    Ok((!allowed).then_some(AppError::Forbidden))
}

/// Runs `rule` before the route: the route's answer when it passes, the
/// guard's when not (to sign in, `403`, or `503` when the user cannot be
/// loaded), always as a response.
async fn guard<B: MessageBody>(
    rule: Rule,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let refusal = match check(req.request(), rule).await {
        Ok(None) => return Ok(next.call(req).await?.map_into_left_body()),
        Ok(Some(refusal)) => refusal,
        // The user could not be loaded (an outage): the 503 page, as a
        // response, so that the outer layers dress it like every page.
        Err(err) => err,
    };
    let response = actix_web::ResponseError::error_response(&refusal);
    Ok(req.into_response(response).map_into_right_body())
}

/// Middleware guard: anonymous visitors are redirected to the login page;
/// signed-in users go through, with their user loaded.
pub async fn login_required(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    guard(Rule::SignedIn, req, next).await
}

/// Middleware guard, Django's `@staff_member_required`: anonymous visitors
/// go to the login page, signed-in users who are not staff get `403`.
pub async fn staff_required(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    guard(Rule::Staff, req, next).await
}

/// Middleware guard, Django's `@permission_required(codename,
/// raise_exception=True)`: anonymous visitors go to the login page,
/// signed-in users without the permission (directly, through a group, or
/// as superuser) get `403`. Wrap a resource with it:
/// `.wrap(permission_required(permissions::VIEW_USERS.codename))`.
pub fn permission_required<S, B>(
    codename: &'static str,
) -> impl Transform<
    S,
    ServiceRequest,
    Response = ServiceResponse<EitherBody<B>>,
    Error = Error,
    InitError = (),
> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    from_fn(move |req: ServiceRequest, next: Next<B>| guard(Rule::Permission(codename), req, next))
}

/// The route patterns anyone may reach, signed in or not (Django's
/// `@login_not_required`): the route table marks them, start-up registers
/// them as app data for [`login_required_by_default`].
#[derive(Debug, Clone, Default)]
pub struct PublicRoutes(BTreeSet<String>);

impl PublicRoutes {
    /// The public routes, by their patterns as the route table spells them
    /// (`/password/reset/{uid}/{token}`).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        Self(patterns.into_iter().map(str::to_owned).collect())
    }

    /// Whether the route with this pattern is public.
    pub fn contains(&self, pattern: &str) -> bool {
        self.0.contains(pattern)
    }

    /// Whether [`login_required_by_default`] lets `req` through without a
    /// user: its route is public, or no route matches (its `404` is the
    /// same for everyone). Any other request's user is loaded before its
    /// view runs.
    pub fn is_open(&self, req: &HttpRequest) -> bool {
        // The router is not run yet, but its map is: the pattern this path will match.
        req.match_pattern()
            .is_none_or(|pattern| self.contains(&pattern))
    }
}

/// Middleware, Django 5.1's `LoginRequiredMiddleware`: every route needs a
/// signed-in user unless [`PublicRoutes`] lists its pattern. A path no route
/// matches goes through (to its `404`, the same for everyone).
pub async fn login_required_by_default(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let public = req
        .app_data::<web::Data<PublicRoutes>>()
        .ok_or_else(|| AppError::unexpected("PublicRoutes is not registered as app data"))?;
    if public.is_open(req.request()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    guard(Rule::SignedIn, req, next).await
}

/// The signed-in user, for handlers behind [`login_required`].
///
/// Used without the guard it guards by itself: an anonymous visitor gets the
/// same redirect to the login page.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The signed-in staff member, for handlers behind [`staff_required`]: the
/// checked user. Used without the guard it guards by itself: anonymous
/// visitors are sent to sign in, other users get `403`.
#[derive(Debug, Clone)]
pub struct StaffUser(pub User);

impl FromRequest for StaffUser {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(refusal) = check(&req, Rule::Staff).await? {
                return Err(refusal.into());
            }
            let user = LazyUser::of(&req)
                .ok_or_else(|| {
                    AppError::unexpected("StaffUser needs the authentication middleware")
                })?
                .get()
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| AppError::LoginRequired(login_url_for(&req)))?;
            Ok(StaffUser(user))
        })
    }
}

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
