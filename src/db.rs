//! The database layer under both the session store and the user model:
//! Django's `django.db` connection handling, on Diesel and r2d2.
//!
//! One binary speaks SQLite (the embedded default) and PostgreSQL (for
//! several instances sharing one database), chosen by `DATABASE_URL` at run
//! time: [`DbConnection`] is a Diesel `MultiConnection` over both, and every
//! query in Porter is written once against it.
//!
//! Everything that touches the database goes through [`run_blocking`], which
//! moves the work onto actix's blocking thread pool (Diesel is synchronous)
//! and counts the queries it ran for the request's `Server-Timing` header.
//! Every transaction goes through [`transaction`], which on SQLite takes the
//! write lock when it begins.
//!
//! Lookups by a unique key end in `get_result`, not `first`: `first` adds
//! `LIMIT ?`, and SQLite re-prepares (parses and plans again) a statement
//! whose `LIMIT` is a bound parameter every time it runs, which defeats
//! Diesel's statement cache on the hot path (see bench/RESULTS.md).
//!
//! The pool survives its server going away (a PostgreSQL restart, a
//! failover): a connection that finds the server gone is discarded, the
//! others are checked once before their next use, and errors that mean
//! "unavailable" are told apart from bugs ([`is_unavailable`]) so that pages
//! can say 503 instead of 500.

use std::{
    cell::{Cell, RefCell},
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use diesel::{
    connection::{Instrumentation, InstrumentationEvent, SimpleConnection},
    pg::PgConnection,
    prelude::*,
    r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection},
    result::DatabaseErrorKind,
    sqlite::SqliteConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use scheduled_thread_pool::ScheduledThreadPool;
use thiserror::Error;

use crate::metrics::{Queries, RequestMetrics};

pub use self::connection::DbConnection;

mod connection {
    // The derive generates a backend type and helpers without docs.
    #![allow(missing_docs)]

    use diesel::{pg::PgConnection, sqlite::SqliteConnection};

    /// A connection to whichever database `DATABASE_URL` names. Queries are
    /// written against this type; only `db` matches on the variant, and the
    /// few hot queries that go through [`on_each_database!`](crate::on_each_database).
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// PostgreSQL, for sites running several instances.
        Postgresql(PgConnection),
        /// SQLite, the embedded default.
        Sqlite(SqliteConnection),
    }
}

/// Runs `$body` with `$inner` bound to the connection's own type, SQLite or
/// PostgreSQL: for the queries every signed-in request runs. Through the
/// [`DbConnection`] enum, Diesel writes a query's SQL text anew on every
/// run, even when its prepared statement is cached, which cost more of the
/// server's time on `/profile` than SQLite spent answering (see
/// bench/RESULTS.md). Also for the odd statement both databases have but
/// [`DbConnection`] cannot express (an upsert). The body is written once
/// and compiled for each database.
#[macro_export]
macro_rules! on_each_database {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($inner) => $body,
            $crate::db::DbConnection::Postgresql($inner) => $body,
        }
    };
}

/// A pool of [`DbConnection`]s: r2d2's, which it derefs to, with a
/// checkout that fails fast while the server is known to be unreachable.
#[derive(Clone, Debug)]
pub struct DbPool {
    pool: Pool<DbConnectionManager>,
    health: Arc<ServerHealth>,
}

impl std::ops::Deref for DbPool {
    type Target = Pool<DbConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

impl DbPool {
    /// Checks a connection out, waiting up to the pool's checkout timeout;
    /// see [`get_timeout`](Self::get_timeout).
    pub fn get(&self) -> Result<PooledConn, r2d2::PoolError> {
        self.get_timeout(self.pool.connection_timeout())
    }

    /// Checks a connection out, waiting up to `timeout`, or only briefly
    /// while the pool's last attempt to connect failed: during an outage
    /// every request would otherwise hold a thread for the whole timeout
    /// before failing, and requests would pile up behind them. (These
    /// shadow r2d2's methods of the same names, so every caller gets this.)
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConn, r2d2::PoolError> {
        let timeout = if self.health.unreachable.load(Ordering::Acquire) {
            timeout.min(OUTAGE_CHECKOUT_TIMEOUT)
        } else {
            timeout
        };
        self.pool.get_timeout(timeout)
    }
}

/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<DbConnectionManager>;

/// The SQLite schema migrations, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL schema migrations, compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a free SQLite connection before giving up.
/// SQLite does not go away; waiting only means other requests hold the
/// connections, and they finish.
const SQLITE_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a PostgreSQL connection before it gets a
/// 503. r2d2 also retries a failed connect at most every half of this, so it
/// bounds how soon the pool notices the server is back: at 1 s, the pool
/// reconnects within half a second of the server's return.
const POSTGRES_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a checkout waits while the server is known to be unreachable
/// (see [`DbPool::get_timeout`]).
const OUTAGE_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(100);

/// libpq's `connect_timeout` (seconds; 2 is its minimum) when the URL sets
/// none: without it, connecting to a host that drops packets waits for the
/// operating system's TCP timeout, minutes, and holds one of r2d2's few
/// connecting threads all that time.
const POSTGRES_CONNECT_TIMEOUT_SECS: u32 = 2;

/// Errors of the database layer.
#[derive(Debug, Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("no database connection available")]
    Pool(#[from] r2d2::PoolError),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Connect(String),
    /// Migrations could not be applied.
    #[error("database migrations failed: {0}")]
    Migration(String),
    /// The blocking thread pool dropped the work (the server is shutting down).
    #[error("the blocking task was cancelled")]
    Cancelled,
}

impl DbError {
    /// Whether the database is unreachable right now (no connection to be
    /// had, or the server went away mid-query), rather than a query being
    /// wrong: the first is worth a retry, the second is a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Query(err) => is_connection_lost(err),
            Self::Connect(_) | Self::Migration(_) | Self::Cancelled => false,
        }
    }
}

/// Whether `err`, or any error in its chain of causes, says the database is
/// unreachable (see [`DbError::is_unavailable`]). For errors that wrap a
/// database error in their own type.
pub fn is_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |err| err.source()).any(|err| {
        err.downcast_ref::<DbError>()
            .is_some_and(DbError::is_unavailable)
            || err.is::<r2d2::PoolError>()
            || err
                .downcast_ref::<diesel::result::Error>()
                .is_some_and(is_connection_lost)
    })
}

/// Whether a query failed because the connection to the server is gone, as
/// opposed to the server refusing the query. libpq reports a closed socket
/// as one of these two.
fn is_connection_lost(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// Which database a `DATABASE_URL` names.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file at this path.
    Sqlite(String),
    /// A PostgreSQL server.
    Postgres(String),
}

impl DatabaseUrl {
    /// Reads `postgres://…`, `postgresql://…`, `sqlite://PATH` or a bare
    /// path. Any other scheme is refused.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "unknown scheme {scheme:?}; use sqlite://PATH or postgres://…"
            ));
        }
        if path.is_empty() {
            return Err("names no database; use sqlite://PATH or postgres://…".into());
        }
        Ok(Self::Sqlite(path.to_owned()))
    }

    /// `url` as it may be shown: a PostgreSQL password is replaced by `***`.
    pub fn describe(url: &str) -> String {
        match url.split_once("://") {
            Some((scheme, rest)) if scheme.starts_with("postgres") => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let authority = match authority.rsplit_once('@') {
                    Some((user_info, host)) => {
                        let user = user_info.split(':').next().unwrap_or_default();
                        let hidden = if user_info.contains(':') { ":***" } else { "" };
                        format!("{user}{hidden}@{host}")
                    }
                    None => authority.to_owned(),
                };
                format!("{scheme}://{authority}/{path}")
            }
            _ => url.to_owned(),
        }
    }

    /// The engine's name, for logs and messages.
    pub fn engine(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    /// A PostgreSQL URL may carry a password: show the engine only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({path:?})"),
            Self::Postgres(_) => f.write_str("Postgres([redacted])"),
        }
    }
}

/// Opens connections of the kind the URL names, and never another: a
/// PostgreSQL URL whose server is down is an error, not a new SQLite file.
///
/// It also decides which connections the pool may hand out again. A
/// connection whose query found the server gone is discarded when it comes
/// back to the pool. Its idle siblings probably lost the server too, but
/// they cannot know until they try: so every such failure (and every failed
/// connect) moves a shared counter, and a connection older than the last
/// failure runs one `SELECT 1` at its next checkout. While nothing fails,
/// a checkout costs one atomic read and no query.
#[derive(Debug, Clone)]
pub struct DbConnectionManager {
    url: DatabaseUrl,
    health: Arc<ServerHealth>,
}

/// What the pool has seen of its server, shared by the manager and every
/// connection it opened.
#[derive(Debug, Default)]
struct ServerHealth {
    /// How many times a connection lost the server or a connect failed.
    failures: AtomicU64,
    /// The last attempt to connect failed. r2d2 retries until one succeeds,
    /// so this clears itself soon after the server is back.
    unreachable: AtomicBool,
}

impl ServerHealth {
    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    fn note_failure(&self) {
        self.failures.fetch_add(1, Ordering::AcqRel);
    }
}

impl DbConnectionManager {
    /// A manager for `url`.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            health: Arc::default(),
        }
    }

    fn establish(&self) -> ConnectionResult<DbConnection> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
            DatabaseUrl::Postgres(url) => {
                prepare_tls();
                PgConnection::establish(&with_connect_timeout(url)).map(DbConnection::Postgresql)
            }
        }
    }
}

/// Readies OpenSSL, which libpq speaks TLS through, before a PostgreSQL
/// connection is made; only the first call does anything. Initialised by
/// libpq instead, OpenSSL frees its global state when the process exits,
/// while the pool's threads may still be closing connections over TLS: an
/// occasional crash on the way out (`free(): invalid pointer`), seen at the
/// end of a test run. Initialised here, it skips that clean-up.
pub fn prepare_tls() {
    openssl_sys::init();
}

/// `url` with libpq's `connect_timeout`, unless it sets its own.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={POSTGRES_CONNECT_TIMEOUT_SECS}")
}

/// The watch a connection of this pool carries, if it has one.
fn watch_of(conn: &mut DbConnection) -> Option<&mut ConnectionWatch> {
    conn.instrumentation().downcast_mut::<ConnectionWatch>()
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.establish() {
            Ok(mut conn) => {
                self.health.unreachable.store(false, Ordering::Release);
                conn.set_instrumentation(ConnectionWatch {
                    health: Arc::clone(&self.health),
                    known_good_at: self.health.failures(),
                    lost: false,
                });
                Ok(conn)
            }
            Err(err) => {
                self.health.unreachable.store(true, Ordering::Release);
                self.health.note_failure();
                Err(r2d2::Error::ConnectionError(err))
            }
        }
    }

    /// Runs on every checkout (`test_on_check_out`), so it queries only a
    /// connection that may have lost the server since it last worked.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        let failures = self.health.failures();
        let suspect = watch_of(conn).is_none_or(|watch| watch.known_good_at != failures);
        if suspect {
            conn.batch_execute("SELECT 1")
                .map_err(r2d2::Error::QueryError)?;
            if let Some(watch) = watch_of(conn) {
                watch.known_good_at = failures;
            }
        }
        Ok(())
    }

    /// Runs when a connection comes back to the pool; must not block.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A panic mid-query may leave a transaction open. Diesel's own check
        // sees a transaction left open or failed, and (on PostgreSQL) a
        // connection whose state libpq lost with its socket; `lost` is the
        // watch's own record of the server going away, however Diesel
        // reported it.
        std::thread::panicking()
            || R2D2Connection::is_broken(conn)
            || watch_of(conn).is_some_and(|watch| watch.lost)
    }
}

/// Opens the database `database_url` names, applies pending migrations and
/// returns a pool. SQLite creates its file on first use; PostgreSQL must be
/// reachable.
pub fn connect(database_url: &str) -> Result<DbPool, DbError> {
    let url = DatabaseUrl::parse(database_url).map_err(DbError::Connect)?;
    let manager = DbConnectionManager::new(url.clone());
    let health = Arc::clone(&manager.health);
    // One connection first: for SQLite it switches the file to WAL (a
    // setting stored in the file, which needs the database to itself), and
    // migrations run before the pool opens its connections.
    let mut setup = manager.establish().map_err(|err| {
        // libpq's messages span lines; the error is one.
        DbError::Connect(
            err.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    })?;
    if let DbConnection::Sqlite(conn) = &mut setup {
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    }
    migrate(&mut setup)?;
    drop(setup);

    // The last figure: the threads r2d2 opens and reaps connections on.
    let (max_size, min_idle, checkout_timeout, pool_threads) = match url {
        // SQLite allows one writer at a time; a few connections are plenty
        // and keep lock contention short. One is opened at start-up, the
        // others when the load asks (a millisecond each, on this file), on
        // one thread: r2d2's default three each cost a stack and an
        // allocator heap.
        DatabaseUrl::Sqlite(_) => (4, Some(1), SQLITE_CHECKOUT_TIMEOUT, 1),
        // Opened as the load asks for them rather than all sixteen at
        // start-up: each costs memory here and a backend process on the
        // server, and the few blocking threads rarely use more than a
        // handful. r2d2 keeps two idle ones ready and closes any left idle
        // for ten minutes. r2d2's three threads: a connect to a server that
        // stalls (up to its connect timeout) holds only one of them.
        DatabaseUrl::Postgres(_) => (16, Some(2), POSTGRES_CHECKOUT_TIMEOUT, 3),
    };
    let pool = Pool::builder()
        .max_size(max_size)
        .min_idle(min_idle)
        .connection_timeout(checkout_timeout)
        // r2d2's check on checkout is the manager's `is_valid`, which runs
        // a query only on connections made suspect by a failure.
        .test_on_check_out(true)
        .connection_customizer(Box::new(ConnectionSetup))
        .thread_pool(Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(pool_threads)
                .thread_name_pattern("r2d2-worker-{}")
                .build(),
        ))
        .build(manager)?;
    Ok(DbPool { pool, health })
}

/// How many blocking threads each server worker gets. Few, because on a
/// small machine thread switches cost more than the queries (measured in
/// `bench/`, see RESULTS.md). SQLite answers in microseconds from this
/// process: one thread per worker keeps up and stays awake while requests
/// queue, where a second one mostly adds wake-ups (1 serves about 10% more
/// than 2). A PostgreSQL query waits on the network, so two threads overlap
/// those waits; more did not serve more, and each one more made the slowest
/// requests slower (p99 7 ms with 2, 28 ms with 8, on 2 cores shared with
/// PostgreSQL's own processes).
pub fn blocking_threads_per_worker(database_url: &str) -> usize {
    match DatabaseUrl::parse(database_url) {
        Ok(DatabaseUrl::Postgres(_)) => 2,
        _ => 1,
    }
}

/// Applies every pending migration for the connection's engine; returns how
/// many ran.
pub fn migrate(conn: &mut DbConnection) -> Result<usize, DbError> {
    let applied = match conn {
        DbConnection::Sqlite(conn) => conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|applied| applied.len()),
        DbConnection::Postgresql(conn) => conn
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|applied| applied.len()),
    };
    applied.map_err(|err| DbError::Migration(err.to_string()))
}

/// Runs `work` on the blocking thread pool, inside the caller's tracing span,
/// and adds the queries it ran to the current request's metrics.
pub async fn run_blocking<T, F>(work: F) -> Result<T, DbError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    let record_sql = RequestMetrics::records_sql();
    let (value, queries) = actix_web::web::block(move || {
        let _entered = span.enter();
        count_queries(record_sql, work)
    })
    .await
    .map_err(|_| DbError::Cancelled)?;
    RequestMetrics::record_queries(queries);
    Ok(value)
}

/// Runs `work` on this thread and returns how many queries it ran, how long
/// they took, and their SQL when `record_sql` (the trace page, in debug).
/// For code that moves work to threads of its own, as [`run_blocking`] does.
pub fn count_queries<T>(record_sql: bool, work: impl FnOnce() -> T) -> (T, Queries) {
    let (count_before, time_before) = (
        QUERIES_ON_THIS_THREAD.get(),
        QUERY_TIME_ON_THIS_THREAD.get(),
    );
    RECORDING_SQL.set(record_sql);
    let value = work();
    RECORDING_SQL.set(false);
    let queries = Queries {
        count: QUERIES_ON_THIS_THREAD.get() - count_before,
        time: QUERY_TIME_ON_THIS_THREAD.get().saturating_sub(time_before),
        sql: RECORDED_SQL.with_borrow_mut(std::mem::take),
    };
    (value, queries)
}

/// Checks a connection out of `pool` and runs `query` with it, on the
/// blocking thread pool.
pub async fn with_conn<T, E, F>(pool: &DbPool, query: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    run_blocking(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        query(&mut conn)
    })
    .await?
}

/// Runs `work` in a transaction, Django's `transaction.atomic`: committed
/// if it returns `Ok`, rolled back if it returns `Err`. Every transaction in
/// Porter goes through here rather than Diesel's `Connection::transaction`
/// (clippy.toml refuses that one).
///
/// On SQLite it begins with `BEGIN IMMEDIATE`, taking the write lock at
/// the start and waiting for it under `busy_timeout`. A plain `BEGIN`
/// defers the lock to the first write, and a transaction that reads first
/// (a check, then the change it allows) fails at once with "database is
/// locked" if another connection committed in between: its snapshot is
/// stale, and SQLite cannot wait that out. On PostgreSQL it is an ordinary
/// transaction (READ COMMITTED), where a check made inside it does not stop
/// another connection's change: write conditionally instead (`UPDATE …
/// WHERE` the value checked, as `models::replace_password_hash` does).
/// Nested, it is a savepoint.
pub fn transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};

    type Manager = <DbConnection as Connection>::TransactionManager;
    let DbConnection::Sqlite(sqlite) = conn else {
        #[allow(clippy::disallowed_methods)] // this is the one place
        return conn.transaction(work);
    };
    let nested = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
        .transaction_depth()?
        .is_some();
    if nested {
        #[allow(clippy::disallowed_methods)] // a savepoint
        return conn.transaction(work);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// The current time in UTC, as the database stores it: every table's
/// timestamps are UTC without a zone.
pub fn now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}

/// How long a health check waits for a connection: load balancers want a
/// quick answer, and a database that cannot hand out a connection in this
/// time is not serving.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers whether the database can run a query right now.
pub async fn ping(pool: &DbPool) -> Result<(), DbError> {
    let pool = pool.clone();
    run_blocking(move || {
        let mut conn = pool.get_timeout(PING_TIMEOUT)?;
        // A prepared statement Diesel keeps, not SQL text parsed on every
        // ping: load balancers call this often.
        let one = diesel::dsl::select(1.into_sql::<diesel::sql_types::Integer>());
        on_each_database!(&mut *conn, |conn| one.execute(conn))?;
        Ok(())
    })
    .await?
}

thread_local! {
    /// Queries run by connections on this thread, ever. Blocking work runs
    /// start to finish on one thread, so the difference before and after it
    /// is exactly what it ran.
    static QUERIES_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    /// Time spent in those queries, ever.
    static QUERY_TIME_ON_THIS_THREAD: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// When the query running on this thread started.
    static QUERY_STARTED: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    /// Whether the work running on this thread wants its SQL kept.
    static RECORDING_SQL: Cell<bool> = const { Cell::new(false) };
    /// The SQL run on this thread since the current work began, when recording.
    static RECORDED_SQL: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Rides on every pooled connection: counts its queries for
/// [`run_blocking`], traces them at `debug` level, and notices when the
/// server went away under it.
#[derive(Debug)]
struct ConnectionWatch {
    health: Arc<ServerHealth>,
    /// [`ServerHealth::failures`] when this connection last worked.
    known_good_at: u64,
    /// A query found the server gone: the pool must not reuse it.
    lost: bool,
}

impl Instrumentation for ConnectionWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error, .. } = event {
            if let Some(started) = QUERY_STARTED.take() {
                QUERY_TIME_ON_THIS_THREAD.set(QUERY_TIME_ON_THIS_THREAD.get() + started.elapsed());
            }
            if error.is_some_and(is_connection_lost) && !self.lost {
                self.lost = true;
                self.health.note_failure();
            }
            return;
        }
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            QUERY_STARTED.set(Some(std::time::Instant::now()));
            QUERIES_ON_THIS_THREAD.set(QUERIES_ON_THIS_THREAD.get() + 1);
            let recording = RECORDING_SQL.get();
            if recording || tracing::enabled!(target: "porter::sql", tracing::Level::DEBUG) {
                // The SQL only: bound values (password hashes, session data)
                // never reach the log or the trace page.
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default().trim();
                tracing::debug!(target: "porter::sql", sql, "query");
                if recording {
                    RECORDED_SQL.with_borrow_mut(|recorded| recorded.push(sql.to_owned()));
                }
            }
        }
    }
}

/// What every new connection needs before its first query.
#[derive(Debug, Clone, Copy)]
struct ConnectionSetup;

impl CustomizeConnection<DbConnection, r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        if let DbConnection::Sqlite(sqlite) = conn {
            // The busy timeout makes a connection wait for a lock instead of
            // failing with SQLITE_BUSY; in WAL mode (set by `connect`)
            // readers never wait for the writer, and NORMAL sync is safe;
            // foreign keys are off in SQLite unless asked for.
            sqlite
                .batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two connections to one SQLite file. The first reads in a
    /// transaction; the second tries to write, without waiting; the first
    /// then writes what its read allowed. With a deferred `BEGIN` the
    /// second write gets in, and the first one's then fails at once
    /// ("database is locked"): its snapshot is stale.
    #[test]
    fn a_transaction_that_reads_first_keeps_other_writers_out_until_it_ends() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("porter.db").display());
        let pool = connect(&url).expect("a database");
        let mut conn = pool.get().expect("a connection");
        conn.batch_execute("CREATE TABLE marks (n INTEGER)")
            .expect("a table");
        let (read, has_read) = std::sync::mpsc::channel();
        let (tried, has_tried) = std::sync::mpsc::channel();
        let other = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                has_read.recv().expect("the first connection read");
                let mut conn = pool.get().expect("a second connection");
                conn.batch_execute("PRAGMA busy_timeout = 0")
                    .expect("no waiting");
                let got_in = conn.batch_execute("INSERT INTO marks VALUES (2)").is_ok();
                tried.send(got_in).expect("the first connection waits");
                conn.batch_execute("PRAGMA busy_timeout = 5000")
                    .expect("waiting again");
                if !got_in {
                    conn.batch_execute("INSERT INTO marks VALUES (2)")
                        .expect("the other write, once the lock is free");
                }
            })
        };

        let mut other_got_in = None;
        let outcome = transaction(&mut conn, |conn| {
            conn.batch_execute("SELECT count(*) FROM marks")?;
            read.send(()).expect("the other thread waits");
            other_got_in = Some(has_tried.recv().expect("the other write was tried"));
            conn.batch_execute("INSERT INTO marks VALUES (1)")
        });

        assert!(outcome.is_ok(), "the transaction failed: {outcome:?}");
        assert_eq!(
            other_got_in,
            Some(false),
            "another write got in mid-transaction"
        );
        other.join().expect("the other write succeeded");
        let rolled_back: Result<(), diesel::result::Error> = transaction(&mut conn, |conn| {
            conn.batch_execute("INSERT INTO marks VALUES (3)")?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(rolled_back.is_err());
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count: Count = diesel::sql_query("SELECT count(*) AS n FROM marks")
            .get_result(&mut conn)
            .expect("a count");
        assert_eq!(count.n, 2, "both writes kept, the rolled-back one not");
    }

    #[test]
    fn urls_name_their_engine() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://porter.db"),
            Ok(DatabaseUrl::Sqlite("porter.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/porter.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/porter.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@db/porter"),
            Ok(DatabaseUrl::Postgres("postgres://u:p@db/porter".into()))
        );
        assert!(DatabaseUrl::parse("mysql://db/porter").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(
            !format!("{:?}", DatabaseUrl::parse("postgres://u:secret@db/p")).contains("secret")
        );
        assert_eq!(
            DatabaseUrl::describe("postgres://u:secret@db:5432/p"),
            "postgres://u:***@db:5432/p"
        );
    }

    #[test]
    fn postgres_connections_give_up_connecting_unless_the_url_says_otherwise() {
        assert_eq!(
            with_connect_timeout("postgres://u@db/p"),
            "postgres://u@db/p?connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@db/p?sslmode=require"),
            "postgres://u@db/p?sslmode=require&connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@db/p?connect_timeout=10"),
            "postgres://u@db/p?connect_timeout=10"
        );
    }
}
