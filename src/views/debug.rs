//! `GET /debug/trace`: the dance, made visible on the visitor's own request
//! (only with `DEBUG` on; a 404 otherwise). Each step of the walkthrough is
//! shown as this very request met it, with its timing, and links to the
//! source that implements it (`/debug/source/…`, also debug-only).
//!
//! The same trace is served as JSON to `Accept: application/json`.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use askama::Template;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    auth::{LazyUser, SessionKeys},
    errors::AppError,
    metrics::RequestMetrics,
    sessions::{self, SESSION_COOKIE_NAME, SessionBackend, db_store::state_as_json},
    views::{render, site_header::SiteHeader},
};

/// The source files the trace links to, compiled in so that the page works
/// from any directory.
const SOURCES: &[(&str, &str)] = &[
    ("src/sessions/mod.rs", include_str!("../sessions/mod.rs")),
    (
        "src/sessions/db_store.rs",
        include_str!("../sessions/db_store.rs"),
    ),
    (
        "src/auth/middleware.rs",
        include_str!("../auth/middleware.rs"),
    ),
    (
        "src/sessions/cookies.rs",
        include_str!("../sessions/cookies.rs"),
    ),
    (
        "src/sessions/layers.rs",
        include_str!("../sessions/layers.rs"),
    ),
    (
        "src/auth/session_user.rs",
        include_str!("../auth/session_user.rs"),
    ),
    ("src/auth/backends.rs", include_str!("../auth/backends.rs")),
    ("src/auth/guards.rs", include_str!("../auth/guards.rs")),
    ("src/startup.rs", include_str!("../startup.rs")),
    ("src/db.rs", include_str!("../db.rs")),
];

/// One step of the journey, as this request met it.
#[derive(Debug, Serialize)]
pub struct Step {
    /// The step's place on this page: 1, 2, 3… in the order the request
    /// met them.
    pub number: usize,
    /// Which step of the dance it belongs to, as the README's "How a
    /// request travels" numbers them: `1`, `2`, `2½`, `6`.
    pub dance_step: &'static str,
    /// What happens at this step.
    pub title: &'static str,
    /// What happened on this request.
    pub detail: String,
    /// Structured data, where the step has some (the decoded session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// How long it took, in milliseconds, where it was timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<f64>,
    /// The file that implements it.
    pub source: &'static str,
}

/// The whole trace.
#[derive(Debug, Serialize)]
pub struct Trace {
    /// The session engine.
    pub engine: &'static str,
    /// The steps, in the order the request met them.
    pub steps: Vec<Step>,
    /// The SQL this request ran, in order, without bound values.
    pub queries: Vec<String>,
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    header: SiteHeader,
    trace: Trace,
    data: Vec<Option<String>>,
}

fn ms(took: Option<std::time::Duration>) -> Option<f64> {
    took.map(|took| (took.as_secs_f64() * 1e6).round() / 1e3)
}

/// The session's entries as JSON values, the auth hash masked.
fn decoded_session(req: &HttpRequest) -> Map<String, Value> {
    let mut decoded = state_as_json(req.get_session().entries().iter());
    if let Some(hash) = decoded.get_mut(SessionKeys::HASH) {
        *hash = Value::String("•••••••• (masked)".into());
    }
    decoded
}

/// Builds the trace of `req`. Loads the lazy user, as a page would.
async fn trace(req: &HttpRequest, engine: &'static str) -> Result<Trace, AppError> {
    let before = RequestMetrics::snapshot();
    let cookie = req.cookie(SESSION_COOKIE_NAME);
    let session = decoded_session(req);
    let lazy_user = LazyUser::of(req).ok_or(AppError::unexpected("no lazy user"))?;
    let was_loaded = lazy_user.is_loaded().await;
    let user = lazy_user.get().await?;
    let after = RequestMetrics::snapshot();

    let cookie_detail = match (&cookie, sessions::current_key(req)) {
        (None, _) => "No sessionid cookie: this visitor has no session yet.".to_owned(),
        (Some(_), Some(key)) => format!(
            "sessionid cookie found, signed; it holds only the session key, {}… (shown truncated).",
            key.chars().take(8).collect::<String>()
        ),
        (Some(cookie), None) => format!(
            "sessionid cookie found ({} bytes): with this engine it holds the session data itself, encrypted.",
            cookie.value().len()
        ),
    };
    let identity = session.get(SessionKeys::USER_ID).map_or_else(
        || "actix-identity finds no _auth_user_id: the visitor is anonymous.".to_owned(),
        |id| format!("actix-identity says this session belongs to user id {id}."),
    );
    let backend = session
        .get(SessionKeys::BACKEND)
        .and_then(Value::as_str)
        .unwrap_or("none");
    let user_detail = match &user {
        Some(user) => format!(
            "Not loaded by the middleware{}; loaded when this page asked: {} (id {}), by {backend}, its auth hash checked.",
            if was_loaded {
                " (already loaded earlier)"
            } else {
                ""
            },
            user.username,
            user.id
        ),
        None => "The page asked and the answer is anonymous: no user query was needed.".to_owned(),
    };

    let mut steps = vec![
            Step {
                number: 0,
                dance_step: "1",
                title: "The session middleware reads the cookie",
                detail: cookie_detail,
                data: None,
                took_ms: None,
                source: "src/sessions/cookies.rs",
            },
            Step {
                number: 0,
                dance_step: "1",
                title: "…and loads the session from the engine",
                detail: match before.session {
                    Some(_) => format!("Loaded from the {engine} engine."),
                    None => "Nothing to load: a new, empty session.".into(),
                },
                data: Some(Value::Object(session.clone())),
                took_ms: ms(before.session),
                source: "src/sessions/db_store.rs",
            },
            Step {
                number: 0,
                dance_step: "2",
                title: "The auth middleware notes the identity and attaches a lazy user",
                detail: identity,
                data: None,
                took_ms: None,
                source: "src/auth/middleware.rs",
            },
            Step {
                number: 0,
                dance_step: "2½",
                title: "The lazy user is loaded when first asked for",
                detail: user_detail,
                data: None,
                took_ms: ms(after.user),
                source: "src/auth/session_user.rs",
            },
            Step {
                number: 0,
                dance_step: "6",
                title: "On the way out, the session is saved only if it changed",
                detail: "This page changes nothing, so nothing is written (unless \"last seen\" is more than a minute old).".into(),
                data: None,
                took_ms: None,
                source: "src/sessions/layers.rs",
            },
        ];
    // Numbered by place, so that the page neither skips nor repeats one.
    for (place, step) in steps.iter_mut().enumerate() {
        step.number = place + 1;
    }
    Ok(Trace {
        engine,
        steps,
        queries: after.sql,
    })
}

/// `GET /debug/trace`.
pub async fn trace_page(
    req: HttpRequest,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    let engine = backend.engine().as_str();
    let trace = trace(&req, engine).await?;
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok().json(&trace));
    }
    let data = trace
        .steps
        .iter()
        .map(|step| {
            step.data
                .as_ref()
                .and_then(|data| serde_json::to_string_pretty(data).ok())
        })
        .collect();
    // After the trace: the header loads the user, which the trace shows
    // happening lazily.
    let header = SiteHeader::for_request(&req).await?;
    render(&TracePage {
        header,
        trace,
        data,
    })
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage<'a> {
    header: SiteHeader,
    path: &'a str,
    text: &'a str,
}

/// `GET /debug/source/{path}`: one of the files the trace links to.
pub async fn source(path: web::Path<String>, header: SiteHeader) -> Result<HttpResponse, AppError> {
    let (path, text) = SOURCES
        .iter()
        .find(|(name, _)| *name == path.as_str())
        .ok_or(AppError::NotFound)?;
    render(&SourcePage { header, path, text })
}
