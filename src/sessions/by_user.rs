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
use diesel::{Connection, QueryResult};

use crate::db::{DbConnection, DbError, DbPool, with_conn};

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

/// A change to make in the same transaction as a revocation (the line in
/// the security log that records it, say): the session framework knows
/// nothing of what it is.
pub type AlsoInTransaction = Box<dyn FnOnce(&mut DbConnection) -> QueryResult<()> + Send>;

/// Ends session `id` if it is one of `user_id`'s, and makes `also` in the
/// same transaction if it was; returns whether it was.
pub async fn revoke(
    pool: &DbPool,
    user_id: i32,
    id: i32,
    also: AlsoInTransaction,
) -> Result<bool, DbError> {
    with_conn(pool, move |conn| {
        conn.transaction(|conn| {
            let revoked = models::delete_for_user(conn, user_id, id)?;
            if revoked {
                also(conn)?;
            }
            QueryResult::Ok(revoked)
        })
        .map_err(DbError::from)
    })
    .await
}

/// Ends every session of `user_id` except the current one (all of them
/// when `current_key_hash` is `None`), and makes `also` in the same
/// transaction; returns how many ended.
pub async fn revoke_others(
    pool: &DbPool,
    user_id: i32,
    current_key_hash: Option<String>,
    also: AlsoInTransaction,
) -> Result<usize, DbError> {
    with_conn(pool, move |conn| {
        conn.transaction(|conn| {
            let ended = models::delete_others_for_user(conn, user_id, current_key_hash.as_deref())?;
            also(conn)?;
            QueryResult::Ok(ended)
        })
        .map_err(DbError::from)
    })
    .await
}

/// Nothing more to do in the transaction.
pub fn nothing_else() -> AlsoInTransaction {
    Box::new(|_| Ok(()))
}
