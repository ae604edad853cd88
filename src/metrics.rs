//! What one request spent on the session, the user and the database: the
//! numbers behind `Server-Timing` and the trace page (what Django Debug
//! Toolbar shows in a panel). A leaf: the database layer, the session store
//! and the lazy user record into it; [`telemetry`](crate::telemetry)
//! reports it.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    rc::Rc,
    time::Duration,
};

/// What a piece of blocking work asked of the database.
#[derive(Debug, Default)]
pub struct Queries {
    /// How many queries ran.
    pub count: u64,
    /// How long they took, from the start of each to its end: not the wait
    /// for a thread or a connection, nor any password hashing around them.
    pub time: Duration,
    /// Their SQL, without bound values, when it was recorded.
    pub sql: Vec<String>,
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
    /// Trips off the worker thread (to the blocking or hashing threads):
    /// each costs two thread switches.
    hand_offs: Cell<u64>,
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

    /// Records database work done on the request's behalf, in one trip to
    /// another thread.
    pub fn record_queries(queries: Queries) {
        Self::with_current(|m| {
            m.hand_offs.set(m.hand_offs.get() + 1);
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

    /// The `Server-Timing` header value for these metrics.
    pub fn server_timing(&self) -> String {
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
        let hand_offs = self.hand_offs.get();
        let trips = if hand_offs == 1 {
            "hand-off"
        } else {
            "hand-offs"
        };
        entries.push(format!(
            "db;dur={:.2};desc=\"{queries} {noun}, {hand_offs} {trips}\"",
            ms(self.db_time.get())
        ));
        entries.join(", ")
    }
}

impl RequestMetrics {
    /// Fresh metrics for a request; `record_sql` keeps the SQL text too.
    pub fn new(record_sql: bool) -> Self {
        Self {
            record_sql,
            ..Self::default()
        }
    }

    /// Whether `Server-Timing` was withheld from this response.
    pub fn is_withheld(&self) -> bool {
        self.withheld.get()
    }

    /// Runs `request` with `metrics` as the current request's metrics.
    pub async fn scope<F: Future>(metrics: Rc<Self>, request: F) -> F::Output {
        CURRENT.scope(metrics, request).await
    }
}
