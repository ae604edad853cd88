//! Step 1 of the dance, the session framework: Django's
//! `django.contrib.sessions`.
//!
//! actix-session's `SessionMiddleware` plays `SessionMiddleware`: it reads
//! the session cookie (which holds nothing but an opaque key), loads the
//! session from the configured engine, lets handlers use it as a map, and
//! saves it at the end of the request, only when it changed (step 6).
//!
//! The engine is a setting ([`SessionEngine`](crate::settings::SessionEngine)):
//!
//! | engine      | where the data lives         | the cookie holds           |
//! | ----------- | ---------------------------- | -------------------------- |
//! | `db`        | a row in `sessions`          | the key, signed            |
//! | `cached_db` | the row, cached in Redis     | the key, signed            |
//! | `redis`     | a Redis key, with a TTL      | the key, signed            |
//! | `cookie`    | the cookie itself            | the data, signed+encrypted |
//!
//! Like Django's, this framework knows nothing of users: where a store
//! needs the user's id (to find a user's sessions) or the login time (for
//! the absolute lifetime), start-up tells it which session keys hold them
//! ([`LoginMarks`]); what should be read on the session's own trip to the
//! database (the user of a page that is not public), start-up registers
//! too ([`prefetch`]).

pub mod activity;
pub mod by_user;
pub mod cached_db_store;
pub mod cookies;
pub mod db_store;
pub mod engine;
pub mod expiry;
pub mod faults;
pub mod layers;
pub mod models;
pub mod outcome;
pub mod prefetch;
pub mod redis_store;

pub use self::{
    cached_db_store::CachedDbSessionStore,
    cookies::{
        SessionCookieSettings, current_key, current_key_hash, open_session_cookie,
        seal_session_cookie, session_middleware,
    },
    db_store::{DbSessionStore, SessionState},
    engine::{
        COOKIE_EXPIRES_KEY, EngineError, LoginMarks, RedisSettings, SessionBackend, clear_expired,
    },
    redis_store::RedisSessionStore,
};

/// The session cookie's name: Django's `SESSION_COOKIE_NAME`.
pub const SESSION_COOKIE_NAME: &str = "sessionid";

/// Now, in Unix seconds, as sessions record times in their data.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
