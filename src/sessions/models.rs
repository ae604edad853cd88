//! The `sessions` table: Django's `django.contrib.sessions.models.Session`.
//!
//! Rows are found by the SHA-256 of the session key; the key itself is never
//! stored. A row whose `expires_at` has passed is dead: no query here returns it.

use diesel::prelude::*;
use sha2::{Digest, Sha256};
use time::PrimitiveDateTime;

pub use crate::db::now;
use crate::{
    db::{DbConnection, transaction},
    schema::sessions,
};

/// A stored session.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct StoredSession {
    /// Surrogate id, safe to show; not the session key.
    pub id: i32,
    /// SHA-256 of the session key, hex-encoded.
    pub key_hash: String,
    /// The session dictionary as a JSON object.
    pub data: String,
    /// When the session stops being valid (UTC).
    pub expires_at: PrimitiveDateTime,
    /// The signed-in user, if any.
    pub user_id: Option<i32>,
    /// When the session was first saved (UTC).
    pub created_at: PrimitiveDateTime,
}

/// A session about to be inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewStoredSession<'a> {
    /// SHA-256 of the new session key, hex-encoded.
    pub key_hash: &'a str,
    /// The session dictionary as a JSON object.
    pub data: &'a str,
    /// When the session stops being valid (UTC).
    pub expires_at: PrimitiveDateTime,
    /// The signed-in user, if any.
    pub user_id: Option<i32>,
    /// Now (UTC).
    pub created_at: PrimitiveDateTime,
}

/// The SHA-256 of a session key, hex-encoded: what the table stores.
pub fn hash_key(session_key: &str) -> String {
    hex::encode(Sha256::digest(session_key.as_bytes()))
}

/// The live (unexpired) session whose key hashes to `key_hash`.
pub fn find_live_by_key_hash(
    conn: &mut DbConnection,
    key_hash: &str,
) -> QueryResult<Option<StoredSession>> {
    // Every request with a session cookie runs this one.
    crate::on_each_database!(conn, |conn| {
        sessions::table
            .filter(sessions::key_hash.eq(key_hash))
            .filter(sessions::expires_at.gt(now()))
            .select(StoredSession::as_select())
            .get_result(conn)
            .optional()
    })
}

/// Inserts a session. Fails with a unique violation when the key is taken:
/// an existing session is never overwritten.
pub fn insert(conn: &mut DbConnection, session: &NewStoredSession<'_>) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

/// Replaces the data of a live session; returns whether there was one.
pub fn update_live(
    conn: &mut DbConnection,
    key_hash: &str,
    data: &str,
    user_id: Option<i32>,
    expires_at: PrimitiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        sessions::table
            .filter(sessions::key_hash.eq(key_hash))
            .filter(sessions::expires_at.gt(now())),
    )
    .set((
        sessions::data.eq(data),
        sessions::user_id.eq(user_id),
        sessions::expires_at.eq(expires_at),
    ))
    .execute(conn)
    .map(|rows| rows > 0)
}

/// Moves the expiry of a live session.
pub fn touch(
    conn: &mut DbConnection,
    key_hash: &str,
    expires_at: PrimitiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        sessions::table
            .filter(sessions::key_hash.eq(key_hash))
            .filter(sessions::expires_at.gt(now())),
    )
    .set(sessions::expires_at.eq(expires_at))
    .execute(conn)
    .map(drop)
}

/// Deletes a session, live or not; returns whether there was one.
pub fn delete_by_key_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<bool> {
    diesel::delete(sessions::table.filter(sessions::key_hash.eq(key_hash)))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// Deletes every expired session (Django's `clearsessions`); returns how many.
pub fn delete_expired(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now()))).execute(conn)
}

/// The session whose key hashes to `key_hash`, live or expired (for
/// inspection; requests only ever see live ones).
pub fn find_by_key_hash(
    conn: &mut DbConnection,
    key_hash: &str,
) -> QueryResult<Option<StoredSession>> {
    sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .select(StoredSession::as_select())
        .get_result(conn)
        .optional()
}

/// The live sessions of one user, newest first.
pub fn live_for_user(conn: &mut DbConnection, user_id: i32) -> QueryResult<Vec<StoredSession>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now()))
        .order(sessions::created_at.desc())
        .select(StoredSession::as_select())
        .load(conn)
}

/// Deletes session `id` if it belongs to `user_id`; returns its key hash
/// if it did (for a cache to drop its copy).
pub fn delete_for_user(
    conn: &mut DbConnection,
    user_id: i32,
    id: i32,
) -> QueryResult<Option<String>> {
    transaction(conn, |conn| {
        let mine = sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::user_id.eq(user_id));
        let key_hash = mine
            .select(sessions::key_hash)
            .get_result(conn)
            .optional()?;
        diesel::delete(mine).execute(conn)?;
        Ok(key_hash)
    })
}

/// Deletes every session of `user_id` but the one whose key hash is
/// `keep`; returns the key hashes of those deleted.
pub fn delete_others_for_user(
    conn: &mut DbConnection,
    user_id: i32,
    keep: Option<&str>,
) -> QueryResult<Vec<String>> {
    transaction(conn, |conn| {
        let hashes: Vec<String> = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .select(sessions::key_hash)
            .load(conn)?;
        let ending: Vec<String> = hashes
            .into_iter()
            .filter(|hash| Some(hash.as_str()) != keep)
            .collect();
        diesel::delete(sessions::table.filter(sessions::key_hash.eq_any(&ending))).execute(conn)?;
        Ok(ending)
    })
}

/// Every live session, or one user's, newest first (for `porter session list`).
pub fn live(conn: &mut DbConnection, user_id: Option<i32>) -> QueryResult<Vec<StoredSession>> {
    let mut query = sessions::table
        .filter(sessions::expires_at.gt(now()))
        .order(sessions::created_at.desc())
        .select(StoredSession::as_select())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(sessions::user_id.eq(user_id));
    }
    query.load(conn)
}
