//! The header every page shows: "Sign in" and "Sign up" for a visitor; the
//! user's name, "Sessions", "Security" and "Sign out" for a signed-in user,
//! and "Staff" for staff (`is_staff`) only; the link to
//! the page being shown marked `aria-current`. Django puts the same in its
//! `base.html`, reading `request.user` (which makes the lazy user load,
//! step 2 of the dance).
//!
//! Pages take a [`SiteHeader`] as an extractor and hand it to their
//! template, whose `base.html` renders it. A visitor costs no query: the
//! lazy user finds no claim in the session. Error pages do not take one
//! (`templates/error.html` shows a header without the account links): the
//! error may be the database itself, and a 404 should not cost a query.

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};
use futures_util::future::LocalBoxFuture;

use crate::{
    auth::{LazyUser, User},
    csrf::CsrfToken,
    errors::AppError,
};

/// What the header needs to know about the request.
#[derive(Debug, Clone)]
pub struct SiteHeader {
    /// The signed-in user's name; `None` for a visitor.
    pub username: Option<String>,
    /// Whether the user is staff: only staff see the link to their area.
    pub is_staff: bool,
    /// The token for the header's sign-out form; empty for a visitor, whose
    /// page sets no CSRF cookie.
    pub csrf_token: String,
    /// The path of the page shown, for `aria-current`.
    path: String,
}

impl SiteHeader {
    /// The header for `req`: loads the lazy user if nothing did yet.
    pub async fn for_request(req: &HttpRequest) -> Result<Self, AppError> {
        let user = match LazyUser::of(req) {
            Some(lazy) => lazy.get().await?,
            None => None,
        };
        let csrf = req.extensions().get::<CsrfToken>().cloned();
        Ok(Self::new(user.as_ref(), csrf.as_ref(), req.path()))
    }

    /// The header for `user` (or a visitor) on the page at `path`.
    pub fn new(user: Option<&User>, csrf: Option<&CsrfToken>, path: &str) -> Self {
        // Only the sign-out form needs a token: a visitor's page must not
        // start a CSRF cookie.
        let csrf_token = match (user, csrf) {
            (Some(_), Some(csrf)) => csrf.form_value(),
            _ => String::new(),
        };
        Self {
            username: user.map(|user| user.username.clone()),
            is_staff: user.is_some_and(|user| user.is_staff),
            csrf_token,
            path: path.to_owned(),
        }
    }

    /// Whether the page shown is `path`: its link gets `aria-current`.
    pub fn is_current(&self, path: &str) -> bool {
        self.path == path
    }
}

impl FromRequest for SiteHeader {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Self::for_request(&req).await?) })
    }
}
