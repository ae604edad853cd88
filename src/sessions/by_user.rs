//! A user's own sessions, for "your sessions": list them, end one, end all
//! the others. Only the `db` engine can do this; the `sessions` table keeps
//! the user id for exactly this purpose.

use time::{OffsetDateTime, PrimitiveDateTime};

use super::{
    activity::{IP_KEY, LAST_SEEN_KEY, USER_AGENT_KEY},
    db_store::decode_state,
    expiry::EXPIRY_KEY,
    models,
};
use crate::db::{DbError, DbPool, with_conn};

/// One session, as "your sessions" shows it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// The row id: what the revoke URL names. Not the session key.
    pub id: i32,
    /// When the session was created (UTC).
    pub created_at: PrimitiveDateTime,
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
}

fn summarise(row: models::StoredSession, current_key_hash: Option<&str>) -> SessionSummary {
    let state = decode_state(&row.data).unwrap_or_default();
    let text = |key: &str| {
        state
            .get(key)
            .and_then(|json| serde_json::from_str::<String>(json).ok())
            .unwrap_or_else(|| "unknown".into())
    };
    let last_seen = state
        .get(LAST_SEEN_KEY)
        .and_then(|json| serde_json::from_str::<i64>(json).ok())
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .map(|at| PrimitiveDateTime::new(at.date(), at.time()));
    SessionSummary {
        id: row.id,
        created_at: row.created_at,
        last_seen,
        user_agent: text(USER_AGENT_KEY),
        ip: text(IP_KEY),
        remembered: state.contains_key(EXPIRY_KEY),
        current: current_key_hash == Some(row.key_hash.as_str()),
    }
}

/// The live sessions of `user_id`, newest first; the one whose key hashes
/// to `current_key_hash` is marked current.
pub async fn list(
    pool: &DbPool,
    user_id: i32,
    current_key_hash: Option<String>,
) -> Result<Vec<SessionSummary>, DbError> {
    let rows = with_conn(pool, move |conn| {
        models::live_for_user(conn, user_id).map_err(DbError::from)
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| summarise(row, current_key_hash.as_deref()))
        .collect())
}

/// Ends session `id` if it is one of `user_id`'s; returns whether it was.
pub async fn revoke(pool: &DbPool, user_id: i32, id: i32) -> Result<bool, DbError> {
    with_conn(pool, move |conn| {
        models::delete_for_user(conn, user_id, id).map_err(DbError::from)
    })
    .await
}

/// Ends every session of `user_id` except the current one; returns how many.
pub async fn revoke_others(
    pool: &DbPool,
    user_id: i32,
    current_key_hash: Option<String>,
) -> Result<usize, DbError> {
    with_conn(pool, move |conn| {
        models::delete_others_for_user(conn, user_id, current_key_hash.as_deref())
            .map_err(DbError::from)
    })
    .await
}
