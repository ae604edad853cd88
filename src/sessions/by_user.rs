//! A user's own sessions, for "your sessions", "sign out everywhere" and
//! `porter session list --user`: list them, end one, end all the others.
//!
//! Django keeps no index of sessions by user; Porter's engines each keep
//! one of their own: the `db` engine's `sessions` table has a `user_id`
//! column, the `redis` engine a set per user beside the sessions
//! ([`redis_store`](super::redis_store)). The `cookie` engine keeps nothing
//! on the server: it lists nothing and ends one session by itself never;
//! its "sign out everywhere" is the auth side's session generation.

use time::{OffsetDateTime, PrimitiveDateTime};

use super::{
    SessionBackend, SessionState,
    activity::{IP_KEY, LAST_SEEN_KEY, USER_AGENT_KEY},
    db_store::decode_state,
    engine::Store,
    expiry::EXPIRY_KEY,
    models,
};
use crate::{
    db::{DbError, with_conn},
    errors::AppError,
};

/// Why a user's sessions could not be listed or ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The session store (Redis) could not be reached, or refused.
    #[error("the session store could not be reached")]
    Unreachable(#[source] anyhow::Error),
}

impl From<SessionsError> for AppError {
    /// Either store out of reach is an outage, a 503.
    fn from(err: SessionsError) -> Self {
        match err {
            SessionsError::Db(err) => err.into(),
            SessionsError::Unreachable(err) => Self::Unavailable(err),
        }
    }
}

/// One session, as "your sessions" shows it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// What the revoke URL names: the row id on the database engines, the
    /// start of the key's hash on Redis. Never the session key.
    pub id: String,
    /// When its user signed in (UTC), if known.
    pub signed_in_at: Option<PrimitiveDateTime>,
    /// When it was last used (UTC), to the minute.
    pub last_seen: Option<PrimitiveDateTime>,
    /// The browser's `User-Agent`.
    pub user_agent: String,
    /// The client's address.
    pub ip: String,
    /// Whether "remember me" was ticked.
    pub remembered: bool,
    /// Whether this is the session of the request asking.
    pub current: bool,
    /// When it ends, at the latest (UTC).
    pub expires_at: Option<PrimitiveDateTime>,
}

/// Unix seconds as a UTC time.
pub(crate) fn utc(secs: i64) -> Option<PrimitiveDateTime> {
    let at = OffsetDateTime::from_unix_timestamp(secs).ok()?;
    Some(PrimitiveDateTime::new(at.date(), at.time()))
}

/// What a session's own data says about it. `login_time_key` names where
/// the login time is kept (the session framework knows nothing of users).
pub(crate) fn summarise(
    id: String,
    state: &SessionState,
    login_time_key: &str,
    current: bool,
) -> SessionSummary {
    let text = |key: &str| {
        state
            .get(key)
            .and_then(|json| serde_json::from_str::<String>(json).ok())
            .unwrap_or_else(|| "unknown".into())
    };
    let time = |key: &str| {
        state
            .get(key)
            .and_then(|json| serde_json::from_str::<i64>(json).ok())
            .and_then(utc)
    };
    SessionSummary {
        id,
        signed_in_at: time(login_time_key),
        last_seen: time(LAST_SEEN_KEY),
        user_agent: text(USER_AGENT_KEY),
        ip: text(IP_KEY),
        remembered: state.contains_key(EXPIRY_KEY),
        current,
        expires_at: None,
    }
}

fn summarise_row(
    row: models::StoredSession,
    login_time_key: &str,
    current_key_hash: Option<&str>,
) -> SessionSummary {
    let state = decode_state(&row.data).unwrap_or_default();
    let current = current_key_hash == Some(row.key_hash.as_str());
    let mut summary = summarise(row.id.to_string(), &state, login_time_key, current);
    // Rows from before login times were noted: the row's birth is the login
    // (a login always makes a new row).
    summary.signed_in_at = summary.signed_in_at.or(Some(row.created_at));
    summary.expires_at = Some(row.expires_at);
    summary
}

/// The pool of a database engine's rows.
fn rows_of(backend: &SessionBackend) -> Result<&crate::db::DbPool, SessionsError> {
    backend.database().ok_or_else(|| {
        SessionsError::Unreachable(anyhow::anyhow!("this engine keeps no session rows"))
    })
}

/// The live sessions of `user_id`, newest first; the one whose key hashes
/// to `current_key_hash` is marked current. `None` when the engine keeps
/// no sessions on the server (`cookie`).
pub async fn list(
    backend: &SessionBackend,
    user_id: i32,
    current_key_hash: Option<String>,
) -> Result<Option<Vec<SessionSummary>>, SessionsError> {
    let login_time_key = backend.marks().login_time_key;
    match &backend.store {
        Store::Db(_) | Store::CachedDb(_) => {
            let pool = rows_of(backend)?;
            let rows = with_conn(pool, move |conn| {
                models::live_for_user(conn, user_id).map_err(DbError::from)
            })
            .await?;
            Ok(Some(
                rows.into_iter()
                    .map(|row| summarise_row(row, login_time_key, current_key_hash.as_deref()))
                    .collect(),
            ))
        }
        Store::Redis(store) => {
            let mut sessions = store
                .sessions_of(user_id)
                .await
                .map_err(SessionsError::Unreachable)?
                .into_iter()
                .map(|(key_hash, state, expires_at)| {
                    let current = current_key_hash.as_deref() == Some(key_hash.as_str());
                    let id = key_hash[..REDIS_ID_LEN].to_owned();
                    let mut summary = summarise(id, &state, login_time_key, current);
                    summary.expires_at = utc(expires_at);
                    summary
                })
                .collect::<Vec<_>>();
            sessions.sort_by_key(|session| std::cmp::Reverse(session.signed_in_at));
            Ok(Some(sessions))
        }
        Store::Cookie => Ok(None),
    }
}

/// How much of a session key's hash names a Redis session in a URL: 64 bits
/// tell a user's sessions apart, and the whole hash never leaves the server.
const REDIS_ID_LEN: usize = 16;

/// Ends session `id` (as [`SessionSummary::id`] names it) if it is one of
/// `user_id`'s; returns whether it was. Always `false` on the `cookie`
/// engine, which cannot end one session by itself.
pub async fn revoke(
    backend: &SessionBackend,
    user_id: i32,
    id: &str,
) -> Result<bool, SessionsError> {
    match &backend.store {
        Store::Db(_) | Store::CachedDb(_) => {
            let pool = rows_of(backend)?;
            let Ok(id) = id.parse::<i32>() else {
                return Ok(false);
            };
            let ended = with_conn(pool, move |conn| {
                models::delete_for_user(conn, user_id, id).map_err(DbError::from)
            })
            .await?;
            if let (Store::CachedDb(store), Some(key_hash)) = (&backend.store, &ended) {
                store.forget(vec![key_hash.clone()]).await;
            }
            Ok(ended.is_some())
        }
        Store::Redis(store) => {
            let well_formed = id.len() == REDIS_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit());
            if !well_formed {
                return Ok(false);
            }
            store
                .revoke_for_user(user_id, |key_hash| key_hash.starts_with(id))
                .await
                .map(|ended| ended > 0)
                .map_err(SessionsError::Unreachable)
        }
        Store::Cookie => Ok(false),
    }
}

/// Ends every session of `user_id` but the one whose key hashes to `keep`
/// (none when `keep` is `None`); returns how many, or `None` when the
/// engine keeps no sessions on the server (`cookie`).
pub async fn revoke_others(
    backend: &SessionBackend,
    user_id: i32,
    keep: Option<String>,
) -> Result<Option<usize>, SessionsError> {
    match &backend.store {
        Store::Db(_) | Store::CachedDb(_) => {
            let pool = rows_of(backend)?;
            let ended = with_conn(pool, move |conn| {
                models::delete_others_for_user(conn, user_id, keep.as_deref())
                    .map_err(DbError::from)
            })
            .await?;
            let count = ended.len();
            if let Store::CachedDb(store) = &backend.store {
                store.forget(ended).await;
            }
            Ok(Some(count))
        }
        Store::Redis(store) => store
            .revoke_for_user(user_id, |key_hash| Some(key_hash) != keep.as_deref())
            .await
            .map(Some)
            .map_err(SessionsError::Unreachable),
        Store::Cookie => Ok(None),
    }
}
