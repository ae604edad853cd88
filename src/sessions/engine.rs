//! The session engines behind the session middleware: Django's
//! `SESSION_ENGINE` setting and the stores it names.
//!
//! [`SessionBackend`] is chosen at run time and passes each call to its
//! store (`db`, `cached_db`, `redis`, `cookie`), applying what every engine
//! shares once, here: a session's own expiry ("remember me"), cut to its
//! absolute lifetime (`SESSION_MAX_AGE`), the store-load timing, the
//! interrupted-session rule ([`outcome`]) and the fault rules ([`faults`]).

use std::time::Instant;

use actix_session::{
    config::CookieContentSecurity,
    storage::{
        CookieSessionStore, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
        generate_session_key,
    },
};
use actix_web::cookie::time::Duration;

use super::{
    CachedDbSessionStore, DbSessionStore, RedisSessionStore, SessionState, expiry, faults, models,
    outcome, prefetch, unix_now,
};
use crate::{
    db::{DbError, DbPool, with_conn},
    metrics::RequestMetrics,
    security_log::security_event,
    settings::SessionEngine,
};

/// The store behind the session middleware, chosen at run time by
/// `SESSION_ENGINE`, with what every engine shares: a session's own expiry,
/// the absolute lifetime, the load timing and the fault rules.
#[derive(Clone)]
pub struct SessionBackend {
    pub(super) store: Store,
    marks: LoginMarks,
}

/// The engines' stores.
#[derive(Clone)]
pub(super) enum Store {
    /// The `db` engine.
    Db(DbSessionStore),
    /// The `cached_db` engine.
    CachedDb(CachedDbSessionStore),
    /// The `redis` engine.
    Redis(RedisSessionStore),
    /// The `cookie` engine.
    Cookie,
}

impl std::fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("SessionBackend");
        match &self.store {
            Store::Db(store) => out.field("db", store),
            Store::CachedDb(store) => out.field("cached_db", store),
            Store::Redis(store) => out.field("redis", store),
            Store::Cookie => out.field("cookie", &"in the browser"),
        };
        out.field("marks", &self.marks).finish()
    }
}

/// What a sign-in leaves in a session, as far as the stores care, and how
/// long it may last. The session framework knows nothing of users (as in
/// Django): start-up tells it which session keys hold the user's id (to
/// index sessions by user) and the time of the login (for
/// `SESSION_MAX_AGE`).
#[derive(Debug, Clone, Copy)]
pub struct LoginMarks {
    /// The session key holding the signed-in user's id.
    pub user_id_key: &'static str,
    /// The session key holding when the user signed in, in Unix seconds.
    pub login_time_key: &'static str,
    /// `SESSION_MAX_AGE`: no session outlives its login by more.
    pub max_age: std::time::Duration,
}

impl LoginMarks {
    /// When the session's user signed in, if someone did.
    pub fn login_time(&self, state: &SessionState) -> Option<i64> {
        serde_json::from_str(state.get(self.login_time_key)?).ok()
    }

    /// The lifetime a session saved now may have: `ttl`, cut to what is
    /// left of its absolute lifetime.
    pub fn cap(&self, state: &SessionState, ttl: Duration) -> Duration {
        let Some(logged_in_at) = self.login_time(state) else {
            return ttl;
        };
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        let left = logged_in_at.saturating_add(max_age) - unix_now();
        ttl.min(Duration::seconds(left.max(0)))
    }
}

/// The session key the `cookie` engine uses to carry its own expiry (Unix
/// seconds): a browser can keep a cookie as long as it likes, so the server
/// checks the time itself.
pub const COOKIE_EXPIRES_KEY: &str = "_expires_at";

/// How long start-up waits for Redis to answer.
const REDIS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the session store could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: cannot connect to Redis: {0}")]
pub struct EngineError(String);

impl SessionBackend {
    /// The store for `engine`; `marks` name what a sign-in leaves in a
    /// session. Connects to Redis for the `redis` engine.
    pub async fn new(
        engine: SessionEngine,
        pool: &DbPool,
        redis: &RedisSettings,
        marks: LoginMarks,
    ) -> Result<Self, EngineError> {
        let store = match engine {
            SessionEngine::Db => {
                Store::Db(DbSessionStore::new(pool.clone()).with_user_id_key(marks.user_id_key))
            }
            SessionEngine::CachedDb => Store::CachedDb(CachedDbSessionStore::new(
                DbSessionStore::new(pool.clone()).with_user_id_key(marks.user_id_key),
                Self::connect_redis(redis).await?,
            )),
            SessionEngine::Redis => Store::Redis(
                Self::connect_redis(redis)
                    .await?
                    .with_user_id_key(marks.user_id_key),
            ),
            SessionEngine::Cookie => Store::Cookie,
        };
        Ok(Self { store, marks })
    }

    async fn connect_redis(redis: &RedisSettings) -> Result<RedisSessionStore, EngineError> {
        let connecting = RedisSessionStore::connect(&redis.url, &redis.key_prefix);
        // Start-up should say at once that Redis is not there.
        actix_web::rt::time::timeout(REDIS_CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| EngineError("no answer within 5 seconds".into()))?
            .map_err(|err| EngineError(err.to_string()))
    }

    /// The engine this backend is.
    pub fn engine(&self) -> SessionEngine {
        match self.store {
            Store::Db(_) => SessionEngine::Db,
            Store::CachedDb(_) => SessionEngine::CachedDb,
            Store::Redis(_) => SessionEngine::Redis,
            Store::Cookie => SessionEngine::Cookie,
        }
    }

    /// The pool the sessions' rows live in, on the database engines (`db`,
    /// `cached_db`).
    pub(crate) fn database(&self) -> Option<&DbPool> {
        match &self.store {
            Store::Db(store) => Some(store.pool()),
            Store::CachedDb(store) => Some(store.db().pool()),
            Store::Redis(_) | Store::Cookie => None,
        }
    }

    /// What a sign-in leaves in a session, as the stores were told.
    pub fn marks(&self) -> &LoginMarks {
        &self.marks
    }

    /// A server-side store only needs the cookie signed (the key is random
    /// and carries nothing); the cookie store must also encrypt its data.
    pub(crate) fn cookie_content_security(&self) -> CookieContentSecurity {
        match self.store {
            Store::Db(_) | Store::CachedDb(_) | Store::Redis(_) => CookieContentSecurity::Signed,
            Store::Cookie => CookieContentSecurity::Private,
        }
    }

    /// Where this engine keeps sessions, in words for a page.
    pub fn description(&self) -> &'static str {
        match self.store {
            Store::Db(_) => "in the database",
            Store::CachedDb(_) => "in the database, cached in Redis",
            Store::Redis(_) => "in Redis",
            Store::Cookie => "in signed, encrypted cookies in each browser",
        }
    }

    /// The lifetime a session asked for (remember me), else `ttl`, cut to
    /// what is left of its absolute lifetime (`SESSION_MAX_AGE`). Applied
    /// here, once, for every engine.
    fn ttl_for(&self, state: &SessionState, ttl: &Duration) -> Duration {
        let ttl = expiry::expiry_of(state)
            .and_then(|own| Duration::try_from(own).ok())
            .unwrap_or(*ttl);
        self.marks.cap(state, ttl)
    }

    /// Tells [`faults`] about a store error, so that an outage is answered
    /// with a 503 rather than actix-session's bare 500.
    ///
    /// Returns whether the error was an outage that the request will answer
    /// with the 503 page: the caller then carries on without the store.
    fn note_fault(&self, err: &anyhow::Error) -> bool {
        match self.store {
            // The cache's own faults never reach here: without it, the
            // `cached_db` engine is the `db` engine.
            Store::Db(_) | Store::CachedDb(_) => faults::note_if_database_down(err),
            // Every failure of a Redis call is the server being out of reach.
            Store::Redis(_) => outcome::note_unreachable(),
            Store::Cookie => false,
        }
    }

    /// The cookie engine stamps its own expiry into the data it seals.
    fn stamp_cookie_expiry(mut state: SessionState, ttl: &Duration) -> SessionState {
        let expires_at = unix_now() + ttl.whole_seconds();
        state.insert(COOKIE_EXPIRES_KEY.to_owned(), expires_at.to_string());
        state
    }
}

impl SessionStore for SessionBackend {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let started = Instant::now();
        let state = match &self.store {
            Store::Db(store) => store.load(session_key).await,
            Store::CachedDb(store) => store.load(session_key).await,
            Store::Redis(store) => faults::bounded(store.load(session_key), LoadError::Other).await,
            Store::Cookie => CookieSessionStore::default()
                .load(session_key)
                .await
                .map(|state| {
                    state.filter(|state| {
                        let expires_at = state
                            .get(COOKIE_EXPIRES_KEY)
                            .and_then(|secs| secs.parse::<i64>().ok());
                        expires_at.is_some_and(|at| at > unix_now())
                    })
                }),
        };
        // What rode on the load is the user's time, recorded as such.
        RequestMetrics::record_session_load(
            started.elapsed().saturating_sub(prefetch::time_taken()),
        );
        if let Err(LoadError::Other(err)) = &state
            && self.note_fault(err)
        {
            // An outage: no session, and the 503 page (see `outcome`).
            return Ok(None);
        }
        if matches!(state, Ok(None)) {
            security_event(
                "a signed session cookie named no live session (expired, revoked or replayed)",
            );
        }
        state
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        if outcome::is_gone() {
            // The key being cycled was already gone: store nothing. The
            // key returned names no session, and the cookie is removed.
            return Ok(generate_session_key());
        }
        let ttl = self.ttl_for(&state, ttl);
        let saved = match &self.store {
            Store::Db(store) => store.save(state, &ttl).await,
            Store::CachedDb(store) => store.save(state, &ttl).await,
            Store::Redis(store) => faults::bounded(store.save(state, &ttl), SaveError::Other).await,
            Store::Cookie => {
                let state = Self::stamp_cookie_expiry(state, &ttl);
                CookieSessionStore::default().save(state, &ttl).await
            }
        };
        if let Err(SaveError::Other(err)) = &saved
            && self.note_fault(err)
        {
            // Nothing stored; the key names nothing and the page is a 503.
            return Ok(generate_session_key());
        }
        saved
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let ttl = self.ttl_for(&state, ttl);
        let key_text = session_key.as_ref().to_owned();
        let updated = match &self.store {
            Store::Db(store) => store.update(session_key, state, &ttl).await,
            Store::CachedDb(store) => store.update(session_key, state, &ttl).await,
            Store::Redis(store) => {
                faults::bounded(store.update(session_key, state, &ttl), UpdateError::Other).await
            }
            Store::Cookie => {
                let state = Self::stamp_cookie_expiry(state, &ttl);
                CookieSessionStore::default()
                    .update(session_key, state, &ttl)
                    .await
            }
        };
        if let Err(UpdateError::Other(err)) = &updated
            && self.note_fault(err)
            && let Ok(key) = SessionKey::try_from(key_text)
        {
            return Ok(key);
        }
        updated
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let updated = match &self.store {
            Store::Db(store) => store.update_ttl(session_key, ttl).await,
            Store::CachedDb(store) => store.update_ttl(session_key, ttl).await,
            Store::Redis(store) => faults::bounded(store.update_ttl(session_key, ttl), |e| e).await,
            Store::Cookie => {
                CookieSessionStore::default()
                    .update_ttl(session_key, ttl)
                    .await
            }
        };
        if let Err(err) = &updated
            && self.note_fault(err)
        {
            return Ok(());
        }
        updated
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let deleted = match &self.store {
            Store::Db(store) => store.delete(session_key).await,
            Store::CachedDb(store) => store.delete(session_key).await,
            Store::Redis(store) => faults::bounded(store.delete(session_key), |e| e).await,
            Store::Cookie => CookieSessionStore::default().delete(session_key).await,
        };
        if let Err(err) = &deleted
            && self.note_fault(err)
        {
            return Ok(());
        }
        deleted
    }
}

/// Where the `redis` engine keeps sessions.
#[derive(Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`.
    pub url: String,
    /// `REDIS_KEY_PREFIX`: prepended to every key, so that several sites
    /// (or test runs) can share one Redis.
    pub key_prefix: String,
}

/// Deletes expired sessions (Django's `clearsessions`); returns how many.
pub async fn clear_expired(pool: &DbPool) -> Result<usize, DbError> {
    with_conn(pool, |conn| {
        models::delete_expired(conn).map_err(DbError::from)
    })
    .await
}
