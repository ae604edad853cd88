//! Step 1 of the dance, the session framework: Django's
//! `django.contrib.sessions`.
//!
//! actix-session's `SessionMiddleware` plays `SessionMiddleware`: it reads
//! the session cookie (which holds nothing but an opaque key), loads the
//! session from the configured engine, lets handlers use it as a map, and
//! saves it at the end of the request, only when it changed (step 6).
//!
//! The engine is a setting ([`SessionEngine`]):
//!
//! | engine   | where the data lives         | the cookie holds            |
//! | -------- | ---------------------------- | --------------------------- |
//! | `db`     | a row in `sessions`          | the key, signed             |
//! | `redis`  | a Redis key, with a TTL      | the key, signed             |
//! | `cookie` | the cookie itself            | the data, signed+encrypted  |
//!
//! Like Django's, this framework knows nothing of users.

pub mod activity;
pub mod by_user;
pub mod cookies;
pub mod db_store;
pub mod expiry;
pub mod faults;
pub mod interruption;
pub mod models;
pub mod redis_store;

use std::time::Instant;

use actix_session::{
    SessionMiddleware,
    config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy},
    storage::{
        CookieSessionStore, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
        generate_session_key,
    },
};
use actix_web::{
    HttpRequest,
    cookie::{Cookie, CookieJar, Key, SameSite, time::Duration},
    web,
};

pub use self::{
    db_store::{DbSessionStore, SessionState},
    redis_store::RedisSessionStore,
};
use crate::{
    db::{DbError, DbPool, with_conn},
    settings::SessionEngine,
    telemetry::{RequestMetrics, security_event},
};

/// The session cookie's name: Django's `SESSION_COOKIE_NAME`.
pub const SESSION_COOKIE_NAME: &str = "sessionid";

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

/// Now, in Unix seconds, as sessions record times in their data.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

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
    fn cookie_content_security(&self) -> CookieContentSecurity {
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
    fn note_fault(&self, err: &anyhow::Error) {
        match self {
            Self::Db(_) => faults::note_if_database_down(err),
            // Every failure of a Redis call is the server being out of reach.
            Self::Redis(_) => faults::note_outage(),
            Self::Cookie => {}
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
        if let Err(LoadError::Other(err)) = &state {
            self.note_fault(err);
        }
        if matches!(state, Ok(None)) {
            security_event(
                "a signed session cookie named no live session (expired, revoked or replayed)",
            );
        }
        state
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        if interruption::is_gone() {
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
        if let Err(SaveError::Other(err)) = &saved {
            self.note_fault(err);
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
        if let Err(UpdateError::Other(err)) = &updated {
            self.note_fault(err);
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
        if let Err(err) = &updated {
            self.note_fault(err);
        }
        updated
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let deleted = match self {
            Self::Db(store) => store.delete(session_key).await,
            Self::Redis(store) => faults::bounded(store.delete(session_key), |e| e).await,
            Self::Cookie => CookieSessionStore::default().delete(session_key).await,
        };
        if let Err(err) = &deleted {
            self.note_fault(err);
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

/// How the session cookie is issued.
#[derive(Clone)]
pub struct SessionCookieSettings {
    /// Key that signs (and for the cookie engine, encrypts) the cookie.
    pub key: Key,
    /// Send the cookie over HTTPS only.
    pub secure: bool,
    /// How long a session lives without activity.
    pub ttl: std::time::Duration,
    /// Which engine keeps the sessions.
    pub engine: SessionEngine,
    /// Keys from `SECRET_KEY_FALLBACKS`: cookies sealed with them are
    /// still accepted.
    pub fallback_keys: Vec<Key>,
    /// `DEBUG`: explain cookies a browser would drop.
    pub debug: bool,
}

impl std::fmt::Debug for SessionCookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookieSettings")
            .field("key", &"[redacted]")
            .field("secure", &self.secure)
            .field("ttl", &self.ttl)
            .field("engine", &self.engine)
            .field("fallback_keys", &self.fallback_keys.len())
            .field("debug", &self.debug)
            .finish()
    }
}

/// The session middleware: step 1 on the way in, step 6 on the way out.
pub fn middleware(
    backend: SessionBackend,
    cookie: &SessionCookieSettings,
) -> SessionMiddleware<SessionBackend> {
    let ttl = Duration::try_from(cookie.ttl).unwrap_or(Duration::WEEK);
    let content_security = backend.cookie_content_security();
    SessionMiddleware::builder(backend, cookie.key.clone())
        .cookie_name(SESSION_COOKIE_NAME.to_owned())
        .cookie_secure(cookie.secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_content_security(content_security)
        // A browser session by default (no Max-Age; see `expiry` for
        // "remember me"). As Django with SESSION_SAVE_EVERY_REQUEST off, the
        // expiry moves only when the session is saved, so a request that
        // changes nothing writes nothing; `activity` saves it at most once a
        // minute, which makes the TTL an idle timeout.
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(ttl)
                .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}

/// The plain value of a `sessionid` cookie value, if it was made with `key`:
/// the session key for server-side engines (signed cookies), the session
/// data for the cookie engine (`private`, encrypted cookies).
pub fn open_session_cookie(key: &Key, value: &str, private: bool) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(SESSION_COOKIE_NAME, value.to_owned()));
    let cookie = if private {
        jar.private(key).get(SESSION_COOKIE_NAME)
    } else {
        jar.signed(key).get(SESSION_COOKIE_NAME)
    };
    cookie.map(|cookie| cookie.value().to_owned())
}

/// Seals `plain` as a `sessionid` cookie value with `key`: the inverse of
/// [`open_session_cookie`].
pub fn seal_session_cookie(key: &Key, plain: &str, private: bool) -> String {
    let mut jar = CookieJar::new();
    let cookie = Cookie::new(SESSION_COOKIE_NAME, plain.to_owned());
    if private {
        jar.private_mut(key).add(cookie);
    } else {
        jar.signed_mut(key).add(cookie);
    }
    jar.get(SESSION_COOKIE_NAME)
        .map(|cookie| cookie.value().to_owned())
        .unwrap_or_default()
}

/// The hash of the session key the request came with, for server-side
/// engines: how "your sessions" knows which row is the current one.
pub fn current_key_hash(req: &HttpRequest) -> Option<String> {
    current_key(req).map(|key| models::hash_key(&key))
}

/// The session key the request came with, for server-side engines. Only the
/// trace page shows it, and only its first characters.
pub fn current_key(req: &HttpRequest) -> Option<String> {
    let settings = req.app_data::<web::Data<SessionCookieSettings>>()?;
    if settings.engine == SessionEngine::Cookie {
        return None;
    }
    let cookie = req.cookie(SESSION_COOKIE_NAME)?;
    open_session_cookie(&settings.key, cookie.value(), false)
}

/// Deletes expired sessions (Django's `clearsessions`); returns how many.
pub async fn clear_expired(pool: &DbPool) -> Result<usize, DbError> {
    with_conn(pool, |conn| {
        models::delete_expired(conn).map_err(DbError::from)
    })
    .await
}
