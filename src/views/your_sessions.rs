//! "Your sessions": where a user sees every browser signed in to their
//! account and signs any of them out, or all but this one. Django has no
//! such page; its sessions cannot be found by user.
//!
//! Every engine but `cookie` lists them ([`sessions::by_user`]). The
//! `cookie` engine keeps nothing on the server: the page says so, and offers
//! "sign out everywhere else", which raises the user's session generation
//! ([`auth::sign_out`](crate::auth::sign_out)).

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use time::OffsetDateTime;

use crate::{
    auth::{
        AlsoInTransaction, AuthContext, CurrentUser,
        audit::{self, EventKind, NewEvent, Origin},
        end_other_sessions,
    },
    csrf::CsrfToken,
    db::{DbError, with_conn},
    errors::AppError,
    paths,
    sessions::{self, SessionBackend, by_user::SessionSummary},
    views::{Message, TimeAgo, messages, render, see_other, site_header::SiteHeader},
};

/// One row of the table, formatted (the staff area shows the same).
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) signed_in_at: Option<TimeAgo>,
    pub(crate) last_seen: Option<TimeAgo>,
    /// "Firefox on Linux", or the whole `User-Agent` when it is not
    /// recognised.
    pub(crate) browser: String,
    /// The whole `User-Agent`, when `browser` is a name made from it.
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: String,
    pub(crate) remembered: bool,
    pub(crate) current: bool,
}

impl SessionRow {
    pub(crate) fn new(session: SessionSummary, now: OffsetDateTime) -> Self {
        let (browser, user_agent) = match browser_name(&session.user_agent) {
            Some(name) => (name, Some(session.user_agent)),
            None => (session.user_agent, None),
        };
        Self {
            id: session.id,
            signed_in_at: session.signed_in_at.map(|at| TimeAgo::new(&at, now)),
            last_seen: session.last_seen.map(|at| TimeAgo::new(&at, now)),
            browser,
            user_agent,
            ip: session.ip,
            remembered: session.remembered,
            current: session.current,
        }
    }
}

/// A browser's name as people say it, "Firefox on Linux", read from its
/// `User-Agent` by woothee (the parser behind several log analysers); `None`
/// when the string names no browser woothee knows.
pub fn browser_name(user_agent: &str) -> Option<String> {
    let parsed = woothee::parser::Parser::new().parse(user_agent)?;
    if parsed.name == woothee::woothee::VALUE_UNKNOWN {
        return None;
    }
    Some(if parsed.os == woothee::woothee::VALUE_UNKNOWN {
        parsed.name.to_owned()
    } else {
        format!("{} on {}", parsed.name, parsed.os)
    })
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    header: SiteHeader,
    /// `None` when the engine keeps no sessions on the server.
    sessions: Option<Vec<SessionRow>>,
    /// Where sessions live, in words, for engines that cannot list them.
    engine: &'static str,
    csrf_token: String,
    messages: Vec<Message>,
}

/// `GET /sessions`, behind `login_required`.
pub async fn list(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    backend: web::Data<SessionBackend>,
    header: SiteHeader,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    let current = sessions::current_key_hash(&req);
    let now = OffsetDateTime::now_utc();
    let sessions = sessions::by_user::list(&backend, user.id, current)
        .await?
        .map(|found| {
            found
                .into_iter()
                .map(|session| SessionRow::new(session, now))
                .collect()
        });
    render(&SessionsPage {
        header,
        sessions,
        engine: backend.description(),
        csrf_token: csrf.form_value(),
        messages: messages(&incoming),
    })
}

/// `POST /sessions/{id}/revoke`: signs one of the user's sessions out.
/// Another user's session, one that is gone, or any on the `cookie` engine
/// (which cannot end one session alone), is a 404.
pub async fn revoke(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    id: web::Path<String>,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    if !sessions::by_user::revoke(&backend, user.id, &id).await? {
        return Err(AppError::NotFound);
    }
    // After the fact: on the redis engine no transaction spans the store
    // and the log, so the line records a revocation that happened.
    let event = NewEvent::new(EventKind::SessionRevoked, Origin::of(&req))
        .by_user(user.id)
        .detail(serde_json::json!({ "session": id.into_inner() }));
    with_conn(auth.pool(), move |conn| {
        audit::record(conn, &event).map_err(DbError::from)
    })
    .await?;
    FlashMessage::success("The session was signed out.").send();
    Ok(see_other(paths::SESSIONS))
}

/// `POST /sessions/revoke-others`: signs out every session but this one,
/// on every engine.
pub async fn revoke_others(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    let event = NewEvent::new(EventKind::OtherSessionsRevoked, Origin::of(&req)).by_user(user.id);
    let also: AlsoInTransaction = Box::new(move |conn| audit::record(conn, &event));
    let message = match end_other_sessions(&req, &auth, &backend, &user, also).await? {
        Some(1) => "1 other session signed out.".to_owned(),
        Some(ended) => format!("{ended} other sessions signed out."),
        None => "Every other browser is signed out.".to_owned(),
    };
    FlashMessage::success(message).send();
    Ok(see_other(paths::SESSIONS))
}
