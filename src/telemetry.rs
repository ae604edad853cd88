//! Observability: the tracing subscriber, a span per request, and
//! per-request metrics reported in a `Server-Timing` header (what Django Debug Toolbar shows in a panel).
//!
//! The header is sent when `SERVER_TIMING` is on (by default only with
//! `DEBUG`), never on `POST /login`. It says how long the session took to load (`session`), how long
//! the user took to load (`user`, present only when the lazy user was
//! actually loaded), and how many database queries the request ran (`db`):
//!
//! ```text
//! Server-Timing: session;dur=0.41, user;dur=0.38, db;dur=0.62;desc="2 queries"
//! ```

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::{db::Queries, settings::Settings};

/// Installs the global tracing subscriber, filtered by `rust_log`
/// (`RUST_LOG` syntax). Calling it twice is harmless.
pub fn init_tracing(rust_log: &str) {
    let filter = EnvFilter::try_new(rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

tokio::task_local! {
    static CURRENT: Rc<RequestMetrics>;
}

/// What one request spent on the session, the user and the database.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    session: Cell<Option<Duration>>,
    user: Cell<Option<Duration>>,
    queries: Cell<u64>,
    db_time: Cell<Duration>,
    /// Keep the SQL text (the trace page, in debug): an allocation per query.
    record_sql: bool,
    /// This response must not carry `Server-Timing` (see [`Self::withhold_server_timing`]).
    withheld: Cell<bool>,
    sql: RefCell<Vec<String>>,
}

/// What the request has spent so far, for the trace page.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// How long the session took to load, if it was loaded from a store.
    pub session: Option<Duration>,
    /// How long the user took to load, if it was loaded.
    pub user: Option<Duration>,
    /// Queries run so far.
    pub queries: u64,
    /// Their SQL, when `DEBUG` records it.
    pub sql: Vec<String>,
}

impl RequestMetrics {
    fn with_current(record: impl FnOnce(&RequestMetrics)) {
        // Outside a request (the CLI, start-up) there is nothing to record.
        let _ = CURRENT.try_with(|metrics| record(metrics));
    }

    /// Records that the session was loaded from its store, and how long it took.
    pub fn record_session_load(took: Duration) {
        Self::with_current(|m| {
            m.session
                .set(Some(m.session.get().unwrap_or_default() + took))
        });
    }

    /// Records that the lazy user was loaded, and how long it took.
    pub fn record_user_load(took: Duration) {
        Self::with_current(|m| m.user.set(Some(took)));
    }

    /// Records database work done on the request's behalf.
    pub fn record_queries(queries: Queries) {
        Self::with_current(|m| {
            m.queries.set(m.queries.get() + queries.count);
            m.db_time.set(m.db_time.get() + queries.time);
            m.sql.borrow_mut().extend(queries.sql);
        });
    }

    /// Keeps `Server-Timing` off the current response, whatever
    /// `SERVER_TIMING` says: for responses whose timings could tell an
    /// unknown username from a wrong password (`POST /login`).
    pub fn withhold_server_timing() {
        Self::with_current(|m| m.withheld.set(true));
    }

    /// Whether the current request keeps the SQL it runs.
    pub fn records_sql() -> bool {
        CURRENT.try_with(|m| m.record_sql).unwrap_or(false)
    }

    /// The current request's metrics so far.
    pub fn snapshot() -> MetricsSnapshot {
        CURRENT
            .try_with(|m| MetricsSnapshot {
                session: m.session.get(),
                user: m.user.get(),
                queries: m.queries.get(),
                sql: m.sql.borrow().clone(),
            })
            .unwrap_or_default()
    }

    fn server_timing(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut entries = Vec::with_capacity(3);
        if let Some(took) = self.session.get() {
            entries.push(format!("session;dur={:.2}", ms(took)));
        }
        if let Some(took) = self.user.get() {
            entries.push(format!("user;dur={:.2}", ms(took)));
        }
        let queries = self.queries.get();
        let noun = if queries == 1 { "query" } else { "queries" };
        entries.push(format!(
            "db;dur={:.2};desc=\"{queries} {noun}\"",
            ms(self.db_time.get())
        ));
        entries.join(", ")
    }
}

/// Middleware, outermost: a tracing span for the request, the request's
/// [`RequestMetrics`], and the `Server-Timing` header on the response.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Field values are only formatted when the span is enabled.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.path(),
        status = tracing::field::Empty,
    );
    let (debug, server_timing) = req
        .app_data::<web::Data<Settings>>()
        .map_or((false, false), |settings| {
            (settings.debug, settings.server_timing)
        });
    let metrics = Rc::new(RequestMetrics {
        record_sql: debug,
        ..RequestMetrics::default()
    });
    let res = CURRENT
        .scope(Rc::clone(&metrics), next.call(req))
        .instrument(span.clone())
        .await;
    let mut res = match res {
        Ok(res) => res,
        Err(err) => {
            tracing::warn!(parent: &span, error = %err, "request failed in middleware");
            return Err(err);
        }
    };
    span.record("status", res.status().as_u16());
    if server_timing
        && !metrics.withheld.get()
        && let Ok(value) = HeaderValue::from_str(&metrics.server_timing())
    {
        res.headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(res)
}

/// At most one security event of each text is logged per this period; the
/// next one says how many were suppressed meanwhile.
const SECURITY_EVENT_PERIOD: Duration = Duration::from_secs(10);

/// Logs a security event (`target: "porter::security"`, level `warn`),
/// rate-limited so that an attacker cannot flood the log.
pub fn security_event(what: &'static str) {
    security_event_because(what, None);
}

/// [`security_event`] with the reason it happened (logged as `reason`);
/// each (event, reason) pair is rate-limited on its own.
pub fn security_event_because(what: &'static str, reason: Option<&'static str>) {
    type Seen = HashMap<(&'static str, Option<&'static str>), (Instant, u64)>;
    static LIMITER: Mutex<Option<Seen>> = Mutex::new(None);
    let Ok(mut guard) = LIMITER.lock() else {
        return;
    };
    let seen = guard.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match seen.get_mut(&(what, reason)) {
        Some((last, suppressed)) if now.duration_since(*last) < SECURITY_EVENT_PERIOD => {
            *suppressed += 1;
        }
        entry => {
            let suppressed = entry.map_or(0, |(_, suppressed)| *suppressed);
            seen.insert((what, reason), (now, 0));
            match reason {
                Some(reason) => tracing::warn!(
                    target: "porter::security",
                    suppressed,
                    reason,
                    "security event: {what}"
                ),
                None => {
                    tracing::warn!(target: "porter::security", suppressed, "security event: {what}")
                }
            }
        }
    }
}
