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

use std::{
    cell::{Cell, RefCell},
    fmt,
    time::Duration,
};

use diesel::{
    connection::{Instrumentation, InstrumentationEvent, SimpleConnection},
    pg::PgConnection,
    prelude::*,
    r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection},
    sqlite::SqliteConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use thiserror::Error;

use crate::telemetry::RequestMetrics;

pub use self::connection::DbConnection;

mod connection {
    // The derive generates a backend type and helpers without docs.
    #![allow(missing_docs)]

    use diesel::{pg::PgConnection, sqlite::SqliteConnection};

    /// A connection to whichever database `DATABASE_URL` names. Queries are
    /// written against this type; only `db` matches on the variant.
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// PostgreSQL, for sites running several instances.
        Postgresql(PgConnection),
        /// SQLite, the embedded default.
        Sqlite(SqliteConnection),
    }
}

/// A pool of [`DbConnection`]s.
pub type DbPool = Pool<DbConnectionManager>;
/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<DbConnectionManager>;

/// The SQLite schema migrations, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL schema migrations, compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a free connection before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

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
#[derive(Debug, Clone)]
pub struct DbConnectionManager {
    url: DatabaseUrl,
}

impl DbConnectionManager {
    /// A manager for `url`.
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    fn establish(&self) -> ConnectionResult<DbConnection> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(url).map(DbConnection::Postgresql)
            }
        }
    }
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Opens the database `database_url` names, applies pending migrations and
/// returns a pool. SQLite creates its file on first use; PostgreSQL must be
/// reachable.
pub fn connect(database_url: &str) -> Result<DbPool, DbError> {
    let url = DatabaseUrl::parse(database_url).map_err(DbError::Connect)?;
    let manager = DbConnectionManager::new(url.clone());
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

    let max_size = match url {
        // SQLite allows one writer at a time; a few connections are plenty
        // and keep lock contention short.
        DatabaseUrl::Sqlite(_) => 4,
        DatabaseUrl::Postgres(_) => 16,
    };
    let pool = Pool::builder()
        .max_size(max_size)
        .connection_timeout(CHECKOUT_TIMEOUT)
        // r2d2 would run a query on every checkout to test the connection;
        // a broken connection fails its first real query just as clearly.
        .test_on_check_out(false)
        .connection_customizer(Box::new(ConnectionSetup))
        .build(manager)?;
    Ok(pool)
}

/// How many blocking threads each server worker gets. SQLite answers in
/// microseconds from this process, so two per worker keep its connections
/// busy; more only add context switches and per-thread memory (measured in
/// `bench/`). A PostgreSQL query waits on the network, so more threads
/// overlap those waits.
pub fn blocking_threads_per_worker(database_url: &str) -> usize {
    match DatabaseUrl::parse(database_url) {
        Ok(DatabaseUrl::Postgres(_)) => 8,
        _ => 2,
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

/// How long a health check waits for a connection: load balancers want a
/// quick answer, and a database that cannot hand out a connection in this
/// time is not serving.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers whether the database can run a query right now.
pub async fn ping(pool: &DbPool) -> Result<(), DbError> {
    let pool = pool.clone();
    run_blocking(move || {
        let mut conn = pool.get_timeout(PING_TIMEOUT)?;
        conn.batch_execute("SELECT 1")?;
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

/// Counts queries for [`run_blocking`] and traces them at `debug` level.
#[derive(Debug, Clone, Copy)]
struct QueryCounter;

impl Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { .. } = event {
            if let Some(started) = QUERY_STARTED.take() {
                QUERY_TIME_ON_THIS_THREAD.set(QUERY_TIME_ON_THIS_THREAD.get() + started.elapsed());
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
        conn.set_instrumentation(QueryCounter);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
