//! The database layer under both the session store and the user model:
//! Django's `django.db` connection handling, on Diesel and r2d2.
//!
//! Everything that touches the database goes through [`run_blocking`], which
//! moves the work onto actix's blocking thread pool (Diesel is synchronous)
//! and counts the queries it ran for the request's `Server-Timing` header.
//! Nothing outside this module knows which database engine is in use.

use std::{cell::Cell, time::Duration};

use diesel::{
    connection::{Instrumentation, InstrumentationEvent, SimpleConnection},
    prelude::*,
    r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use thiserror::Error;

use crate::telemetry::RequestMetrics;

/// The connection type every query is written against.
pub type DbConnection = SqliteConnection;
/// A pool of [`DbConnection`]s.
pub type DbPool = Pool<ConnectionManager<DbConnection>>;
/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<ConnectionManager<DbConnection>>;

/// The schema migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a request waits for a free connection before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the database layer.
#[derive(Debug, Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("no database connection available")]
    Pool(#[from] diesel::r2d2::PoolError),
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

/// Strips the `sqlite://` scheme from a `DATABASE_URL`, leaving the path
/// SQLite opens. A bare path is accepted as it is.
pub fn sqlite_path(database_url: &str) -> &str {
    database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .unwrap_or(database_url)
}

/// Builds the connection pool and applies pending migrations.
///
/// SQLite creates the database file on first use.
pub fn connect(database_url: &str) -> Result<DbPool, DbError> {
    let path = sqlite_path(database_url);
    // One connection first: it switches the file to WAL (a setting stored in
    // the file, which needs the database to itself) and applies migrations
    // before the pool opens its connections.
    let mut setup =
        DbConnection::establish(path).map_err(|err| DbError::Connect(err.to_string()))?;
    setup.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    migrate(&mut setup)?;
    drop(setup);

    let manager = ConnectionManager::<DbConnection>::new(path);
    let pool = Pool::builder()
        // SQLite allows one writer at a time; a few connections are plenty
        // and keep lock contention short.
        .max_size(8)
        .connection_timeout(CHECKOUT_TIMEOUT)
        // r2d2 would run a query on every checkout to test the connection;
        // a broken connection fails its first real query just as clearly.
        .test_on_check_out(false)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(manager)?;
    Ok(pool)
}

/// Applies every pending migration; returns how many ran.
pub fn migrate(conn: &mut DbConnection) -> Result<usize, DbError> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|err| DbError::Migration(err.to_string()))
}

/// Runs `work` on the blocking thread pool, inside the caller's tracing span,
/// and adds the queries it ran to the current request's metrics.
pub async fn run_blocking<T, F>(work: F) -> Result<T, DbError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    let started = std::time::Instant::now();
    let (value, queries) = actix_web::web::block(move || {
        let _entered = span.enter();
        let before = QUERIES_ON_THIS_THREAD.get();
        let value = work();
        (value, QUERIES_ON_THIS_THREAD.get() - before)
    })
    .await
    .map_err(|_| DbError::Cancelled)?;
    RequestMetrics::record_queries(queries, started.elapsed());
    Ok(value)
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
}

/// Counts queries for [`run_blocking`] and traces them at `debug` level.
#[derive(Debug, Clone, Copy)]
struct QueryCounter;

impl Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            QUERIES_ON_THIS_THREAD.set(QUERIES_ON_THIS_THREAD.get() + 1);
            if tracing::enabled!(target: "porter::sql", tracing::Level::DEBUG) {
                // The SQL only: bound values (password hashes, session data)
                // never reach the log.
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default();
                tracing::debug!(target: "porter::sql", sql, "query");
            }
        }
    }
}

/// Settings every SQLite connection needs before its first query.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        // The busy timeout makes a connection wait for a lock instead of
        // failing with SQLITE_BUSY; in WAL mode (set by `connect`) readers
        // never wait for the writer, and NORMAL sync is safe; foreign keys
        // are off in SQLite unless asked for.
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)?;
        conn.set_instrumentation(QueryCounter);
        Ok(())
    }
}
