//! The one place where errors become pages: Django's `handler404`,
//! `handler500` and `csrf_failure` views.
//!
//! Every module has its own error type; [`AppError`] gathers them and turns
//! each into a status code and a readable page. A 5xx page never shows the
//! cause: the log gets the whole chain, the visitor a short apology.
//!
//! A database or session store that cannot be reached is not a bug: those
//! errors become [`AppError::Unavailable`], a `503` with `Retry-After`,
//! while a query that is wrong stays a `500`.

use actix_web::{
    HttpResponse, ResponseError,
    error::{PayloadError, UrlencodedError},
    http::{StatusCode, header},
};
use askama::Template;
use thiserror::Error;

use crate::{
    db::{self, DbError},
    security_log,
};

/// What `Retry-After` says while the database or session store is
/// unreachable, in seconds: a restart or failover is usually over by then.
pub const RETRY_UNAVAILABLE_AFTER: u64 = 5;

/// Any error a request can end in.
#[derive(Debug, Error)]
pub enum AppError {
    /// No such page.
    #[error("page not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the route does accept, for the `Allow` header.
        allow: &'static str,
    },
    /// A POST failed the CSRF check.
    #[error("CSRF verification failed: {0}")]
    Csrf(&'static str),
    /// The request could not be understood.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is larger than the server accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Too many attempts of one kind: try again after this many seconds.
    #[error("too many {action}")]
    Throttled {
        /// What there were too many of, in words: "failed sign-in attempts".
        action: &'static str,
        /// Seconds until the next attempt is accepted.
        retry_after: u64,
    },
    /// The server is too busy for this request right now (the queue of
    /// password work is full): try again after this many seconds.
    #[error("server busy")]
    Busy {
        /// Seconds to wait before trying again.
        retry_after: u64,
    },
    /// A signed-in user reached a page or action their permissions do not
    /// allow (Django's `PermissionDenied`).
    #[error("permission denied")]
    Forbidden,
    /// An anonymous visitor reached a page that needs a user; carries the
    /// login URL to redirect to.
    #[error("login required")]
    LoginRequired(String),
    /// The database or the session store cannot be reached right now (a
    /// restart, a failover, a cut network): the visitor gets a `503` and is
    /// asked to come back shortly. Errors that mean this become this
    /// variant on conversion.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The database failed.
    #[error(transparent)]
    Db(DbError),
    /// A template failed to render.
    #[error("template rendering failed")]
    Template(#[from] askama::Error),
    /// Anything else that should not have happened.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable(err.into())
        } else {
            Self::Db(err)
        }
    }
}

/// A query's error inside a view's transaction ([`crate::db::transaction`]).
impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        DbError::from(err).into()
    }
}

impl AppError {
    /// An unexpected failure described by `message`.
    pub fn unexpected(message: &'static str) -> Self {
        Self::Unexpected(anyhow::anyhow!(message))
    }

    /// Whether this is an outage rather than a fault: [`Self::Unavailable`],
    /// or an unexpected error whose cause is an unreachable database (some
    /// views wrap errors before they reach this type).
    fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Unexpected(err) => err.chain().any(db::is_unavailable),
            _ => false,
        }
    }

    fn title_and_message(&self) -> (&'static str, String) {
        if self.is_unavailable() {
            return (
                "Service unavailable",
                "We cannot reach our data store right now; this usually passes in seconds. \
                 Please try again shortly."
                    .into(),
            );
        }
        match self {
            Self::NotFound => ("Page not found", "There is no page at this address.".into()),
            Self::MethodNotAllowed { allow } => (
                "Method not allowed",
                format!("This address only answers {allow} requests."),
            ),
            Self::Csrf(reason) => (
                "Forbidden",
                format!(
                    "CSRF verification failed: {reason}. Reload the page you came from and try again."
                ),
            ),
            Self::BadRequest(reason) => ("Bad request", format!("{reason}.")),
            Self::PayloadTooLarge => (
                "Request too large",
                "What you sent is larger than this site accepts.".into(),
            ),
            Self::Throttled {
                action,
                retry_after,
            } => (
                "Too many attempts",
                format!(
                    "Too many {action}. Please wait {} before trying again.",
                    wait_in_words(*retry_after)
                ),
            ),
            Self::Busy { retry_after } => (
                "Busy",
                format!(
                    "The server is busy right now and nothing was changed. Please try again in {}.",
                    wait_in_words(*retry_after)
                ),
            ),
            Self::Forbidden => (
                "Permission denied",
                "You are signed in, but your account may not see this page or do this. \
                 If you need to, ask an administrator for the permission."
                    .into(),
            ),
            Self::LoginRequired(_) => ("Sign in required", "Please sign in.".into()),
            Self::Unavailable(_) | Self::Db(_) | Self::Template(_) | Self::Unexpected(_) => (
                "Server error",
                "Something went wrong on our side. It has been logged; please try again.".into(),
            ),
        }
    }
}

/// The page every error is rendered into.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        if self.is_unavailable() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Csrf(_) | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::LoginRequired(_) => StatusCode::SEE_OTHER,
            Self::Unavailable(_) | Self::Db(_) | Self::Template(_) | Self::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if self.is_unavailable() {
            // An outage fails every request: a warning each, not an alarm.
            tracing::warn!(error.cause_chain = ?self, "request failed: {self}");
        } else if status.is_server_error() && !matches!(self, Self::Busy { .. }) {
            // A full queue (`Busy`) is load, not a fault: answering it is
            // the fix.
            tracing::error!(error.cause_chain = ?self, "request failed: {self}");
        } else if let Self::Csrf(reason) = self {
            // Anyone can send forged POSTs in bulk: rate-limited, as
            // tampered cookies are.
            security_log::security_event_because("CSRF verification failed", Some(reason));
        }

        let mut response = HttpResponse::build(status);
        match self {
            Self::LoginRequired(location) => {
                return response
                    .insert_header((header::LOCATION, location.as_str()))
                    .finish();
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Throttled { retry_after, .. } | Self::Busy { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ if self.is_unavailable() => {
                response.insert_header((header::RETRY_AFTER, RETRY_UNAVAILABLE_AFTER.to_string()));
            }
            _ => {}
        }
        let (title, message) = self.title_and_message();
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
        };
        match page.render() {
            Ok(html) => response.content_type("text/html; charset=utf-8").body(html),
            Err(_) => response
                .content_type("text/plain; charset=utf-8")
                .body(format!("{} {title}", status.as_u16())),
        }
    }
}

/// Turns a form body that failed to parse into a page, for `FormConfig`.
pub fn form_error(err: UrlencodedError) -> AppError {
    match err {
        UrlencodedError::Overflow { .. } | UrlencodedError::Payload(PayloadError::Overflow) => {
            AppError::PayloadTooLarge
        }
        UrlencodedError::ContentType => {
            AppError::BadRequest("the form was not sent as a form".into())
        }
        other => AppError::BadRequest(format!("the form could not be read ({other})")),
    }
}

/// Turns a body that could not be read (by the CSRF check, for one) into a page.
pub fn body_error(err: &actix_web::Error) -> AppError {
    match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => AppError::PayloadTooLarge,
        _ => AppError::BadRequest("the request body could not be read".into()),
    }
}

/// Turns a bad query string into a page, for `QueryConfig`.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> AppError {
    AppError::BadRequest(format!("the address could not be read ({err})"))
}

/// `90` → `2 minutes`: rounded up, in the largest unit that fits.
fn wait_in_words(secs: u64) -> String {
    let (n, unit) = if secs < 60 {
        (secs.max(1), "second")
    } else {
        (secs.div_ceil(60), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
