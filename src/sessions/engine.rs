//! The session engines behind the session middleware: Django's
//! `SESSION_ENGINE` setting and the stores it names.
//!
//! [`SessionBackend`] is chosen at run time and passes each call to its
//! store, applying what every engine shares once, here: a session's own
//! expiry ("remember me"), the store-load timing, the interrupted-session
//! rule ([`outcome`]) and the fault rules ([`faults`]).

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
    DbSessionStore, RedisSessionStore, SessionState, expiry, faults, models, outcome, unix_now,
};
use crate::{
    db::{DbError, DbPool, with_conn},
    metrics::RequestMetrics,
    security_log::security_event,
    settings::SessionEngine,
};

/// The store behind the session middleware, chosen at run time by
/// `SESSION_ENGINE`. It also reports how long each load took.
#[derive(Clone)]
pub enum SessionBackend {
    /// The `db` engine.
    Db(DbSessionStore),
    /// The `redis` engine.
    Redis(RedisSessionStore),
    /// The `cookie` engine.
    Cookie,
}

impl std::fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(store) => f.debug_tuple("Db").field(store).finish(),
            Self::Redis(_) => f.write_str("Redis"),
            Self::Cookie => f.write_str("Cookie"),
        }
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
    /// The store for `engine`. `user_id_key` names the session key holding
    /// the signed-in user's id, for stores that index sessions by user.
    /// Connects to Redis for the `redis` engine.
    pub async fn new(
        engine: SessionEngine,
        pool: &DbPool,
        redis: &RedisSettings,
        user_id_key: &'static str,
    ) -> Result<Self, EngineError> {
        Ok(match engine {
            SessionEngine::Db => {
                Self::Db(DbSessionStore::new(pool.clone()).with_user_id_key(user_id_key))
            }
            SessionEngine::Redis => {
                let connecting = RedisSessionStore::connect(&redis.url, &redis.key_prefix);
                // Start-up should say at once that Redis is not there.
                let store = actix_web::rt::time::timeout(REDIS_CONNECT_TIMEOUT, connecting)
                    .await
                    .map_err(|_| EngineError("no answer within 5 seconds".into()))?
                    .map_err(|err| EngineError(err.to_string()))?;
                Self::Redis(store)
            }
            SessionEngine::Cookie => Self::Cookie,
        })
    }

    /// A server-side store only needs the cookie signed (the key is random
    /// and carries nothing); the cookie store must also encrypt its data.
    pub(crate) fn cookie_content_security(&self) -> CookieContentSecurity {
        match self {
            Self::Db(_) | Self::Redis(_) => CookieContentSecurity::Signed,
            Self::Cookie => CookieContentSecurity::Private,
        }
    }

    /// Where this engine keeps sessions, in words for a page.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Db(_) => "in the database",
            Self::Redis(_) => "in Redis, under keys no one can look up by user",
            Self::Cookie => "in signed, encrypted cookies in each browser",
        }
    }

    /// Whether this engine can list and revoke a user's sessions.
    pub fn can_list_sessions(&self) -> bool {
        matches!(self, Self::Db(_))
    }

    /// The lifetime a session asked for (remember me), else `ttl`. Applied
    /// here, once, for every engine.
    fn ttl_for(state: &SessionState, ttl: &Duration) -> Duration {
        expiry::expiry_of(state)
            .and_then(|own| Duration::try_from(own).ok())
            .unwrap_or(*ttl)
    }

    /// Tells [`faults`] about a store error, so that an outage is answered
    /// with a 503 rather than actix-session's bare 500.
    ///
    /// Returns whether the error was an outage that the request will answer
    /// with the 503 page: the caller then carries on without the store.
    fn note_fault(&self, err: &anyhow::Error) -> bool {
        match self {
            Self::Db(_) => faults::note_if_database_down(err),
            // Every failure of a Redis call is the server being out of reach.
            Self::Redis(_) => outcome::note_unreachable(),
            Self::Cookie => false,
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
        let state = match self {
            Self::Db(store) => store.load(session_key).await,
            Self::Redis(store) => faults::bounded(store.load(session_key), LoadError::Other).await,
            Self::Cookie => CookieSessionStore::default()
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
        RequestMetrics::record_session_load(started.elapsed());
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
        let ttl = Self::ttl_for(&state, ttl);
        let saved = match self {
            Self::Db(store) => store.save(state, &ttl).await,
            Self::Redis(store) => faults::bounded(store.save(state, &ttl), SaveError::Other).await,
            Self::Cookie => {
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
        let ttl = Self::ttl_for(&state, ttl);
        let key_text = session_key.as_ref().to_owned();
        let updated = match self {
            Self::Db(store) => store.update(session_key, state, &ttl).await,
            Self::Redis(store) => {
                faults::bounded(store.update(session_key, state, &ttl), UpdateError::Other).await
            }
            Self::Cookie => {
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
        let updated = match self {
            Self::Db(store) => store.update_ttl(session_key, ttl).await,
            Self::Redis(store) => faults::bounded(store.update_ttl(session_key, ttl), |e| e).await,
            Self::Cookie => {
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
        let deleted = match self {
            Self::Db(store) => store.delete(session_key).await,
            Self::Redis(store) => faults::bounded(store.delete(session_key), |e| e).await,
            Self::Cookie => CookieSessionStore::default().delete(session_key).await,
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
