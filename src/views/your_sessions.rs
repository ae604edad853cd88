//! "Your sessions": where a user sees every browser signed in to their
//! account and signs any of them out.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use time::OffsetDateTime;

use crate::{
    auth::{
        AuthContext, CurrentUser,
        audit::{self, EventKind, NewEvent, Origin},
    },
    csrf::CsrfToken,
    errors::AppError,
    paths,
    sessions::{self, SessionBackend, by_user::SessionSummary},
    views::{Message, TimeAgo, messages, render, see_other, site_header::SiteHeader},
};

/// One row of the table, formatted (the staff area shows the same).
pub(crate) struct SessionRow {
    pub(crate) id: i32,
    pub(crate) created_at: TimeAgo,
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
            created_at: TimeAgo::new(&session.created_at, now),
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
    /// `None` when the engine cannot list sessions.
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
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
    header: SiteHeader,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    let sessions = if backend.can_list_sessions() {
        let current = sessions::current_key_hash(&req);
        let found = sessions::by_user::list(auth.pool(), user.id, current).await?;
        let now = OffsetDateTime::now_utc();
        Some(
            found
                .into_iter()
                .map(|session| SessionRow::new(session, now))
                .collect(),
        )
    } else {
        None
    };
    render(&SessionsPage {
        header,
        sessions,
        engine: backend.description(),
        csrf_token: csrf.form_value(),
        messages: messages(&incoming),
    })
}

/// `POST /sessions/{id}/revoke`: signs one of the user's sessions out.
/// Another user's session, or one that is gone, is a 404.
pub async fn revoke(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    if !backend.can_list_sessions() {
        return Err(AppError::NotFound);
    }
    let id = id.into_inner();
    let event = NewEvent::new(EventKind::SessionRevoked, Origin::of(&req))
        .by_user(user.id)
        .detail(serde_json::json!({ "session": id }));
    let also = Box::new(move |conn: &mut _| audit::record(conn, &event));
    if !sessions::by_user::revoke(auth.pool(), user.id, id, also).await? {
        return Err(AppError::NotFound);
    }
    FlashMessage::success("The session was signed out.").send();
    Ok(see_other(paths::SESSIONS))
}

/// `POST /sessions/revoke-others`: signs out every session but this one.
pub async fn revoke_others(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    if !backend.can_list_sessions() {
        return Err(AppError::NotFound);
    }
    let current = sessions::current_key_hash(&req);
    let event = NewEvent::new(EventKind::OtherSessionsRevoked, Origin::of(&req)).by_user(user.id);
    let also = Box::new(move |conn: &mut _| audit::record(conn, &event));
    let ended = sessions::by_user::revoke_others(auth.pool(), user.id, current, also).await?;
    let noun = if ended == 1 { "session" } else { "sessions" };
    FlashMessage::success(format!("{ended} other {noun} signed out.")).send();
    Ok(see_other(paths::SESSIONS))
}
