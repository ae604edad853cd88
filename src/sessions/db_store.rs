//! The `db` session engine: Django's `django.contrib.sessions.backends.db`,
//! as an actix-session [`SessionStore`].
//!
//! actix-session hands the store the session as a map of keys to JSON texts;
//! the store keeps it as one JSON object in the `data` column, under the
//! SHA-256 of the key, so the table reads like Django's `get_decoded()`.

use std::collections::HashMap;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use anyhow::Context;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::{Map, Value};

use super::{
    models::{self, NewStoredSession},
    outcome, prefetch,
};
use crate::db::{DbError, DbPool, run_blocking, with_conn};

/// The session state actix-session works with: keys to JSON texts.
pub type SessionState = HashMap<String, String>;

/// How many fresh keys a store tries before giving up on a save. Two random
/// 64-character keys colliding is not going to happen; this is a bound, not
/// a retry policy.
pub(crate) const SAVE_ATTEMPTS: usize = 3;

/// A save that found every key it tried taken.
pub(crate) fn no_unused_key() -> anyhow::Error {
    anyhow::anyhow!("no unused session key after {SAVE_ATTEMPTS} attempts")
}

/// Sessions stored in the `sessions` table.
#[derive(Clone)]
pub struct DbSessionStore {
    pool: DbPool,
    user_id_key: Option<&'static str>,
}

impl DbSessionStore {
    /// A store over `pool`.
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            user_id_key: None,
        }
    }

    /// Names the session key that holds the signed-in user's id, so the store
    /// can fill the `user_id` column. The session framework knows nothing of
    /// users: start-up tells it where to look.
    pub fn with_user_id_key(mut self, key: &'static str) -> Self {
        self.user_id_key = Some(key);
        self
    }

    fn user_id(&self, state: &SessionState) -> Option<i32> {
        user_id_in(state, self.user_id_key?)
    }

    /// The database pool the sessions live in.
    pub(crate) fn pool(&self) -> &DbPool {
        &self.pool
    }
}

/// The user id a session holds under `user_id_key`, if any.
pub(crate) fn user_id_in(state: &SessionState, user_id_key: &str) -> Option<i32> {
    let raw = state.get(user_id_key)?;
    match serde_json::from_str::<Value>(raw).ok()? {
        Value::String(id) => id.parse().ok(),
        Value::Number(id) => id.as_i64().and_then(|id| i32::try_from(id).ok()),
        _ => None,
    }
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSessionStore")
            .field("user_id_key", &self.user_id_key)
            .finish_non_exhaustive()
    }
}

/// actix-session's map of JSON texts as JSON values: what `session show`,
/// the trace page and the `data` column show.
pub fn state_as_json<'a>(
    state: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Map<String, Value> {
    state
        .into_iter()
        .map(|(key, json)| {
            let value = serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.clone()));
            (key.clone(), value)
        })
        .collect()
}

/// Encodes actix-session's map of JSON texts as one JSON object.
pub fn encode_state(state: &SessionState) -> String {
    Value::Object(state_as_json(state)).to_string()
}

/// Decodes a stored JSON object back into actix-session's map of JSON texts.
pub fn decode_state(data: &str) -> Result<SessionState, serde_json::Error> {
    let object: Map<String, Value> = serde_json::from_str(data)?;
    Ok(object
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect())
}

/// A session as a store read it, if it has one: its stored JSON, decoded.
pub(crate) fn decode_stored(data: Option<&str>) -> Result<Option<SessionState>, LoadError> {
    data.map(decode_state)
        .transpose()
        .context("the stored session data is not a JSON object")
        .map_err(LoadError::Deserialization)
}

/// When a session saved now expires. (A session's own expiry, "remember
/// me", is applied by `SessionBackend` before it calls the store.)
fn expiry_after(ttl: &Duration) -> time::PrimitiveDateTime {
    models::now().saturating_add(*ttl)
}

impl DbSessionStore {
    /// The live session whose key hashes to `key_hash`, and its expiry;
    /// with the request's [`prefetch`] on the same trip to the blocking pool.
    pub(crate) async fn load_live(
        &self,
        key_hash: String,
    ) -> Result<Option<(SessionState, time::PrimitiveDateTime)>, LoadError> {
        let pool = self.pool.clone();
        let prefetch = prefetch::pending();
        let (loaded, answer) = run_blocking(move || {
            let row = {
                let mut conn = pool
                    .get()
                    .map_err(|err| LoadError::Other(DbError::from(err).into()))?;
                models::find_live_by_key_hash(&mut conn, &key_hash)
                    .map_err(|err| LoadError::Other(err.into()))?
            };
            let Some(row) = row else {
                return Ok((None, (None, std::time::Duration::ZERO)));
            };
            let state = decode_state(&row.data)
                .context("the stored session data is not a JSON object")
                .map_err(LoadError::Deserialization)?;
            // The connection is back in the pool: the prefetch takes its own.
            let answer = prefetch::run(prefetch, &state);
            Ok((Some((state, row.expires_at)), answer))
        })
        .await
        .map_err(|err| LoadError::Other(err.into()))??;
        prefetch::deliver(answer);
        Ok(loaded)
    }

    /// Replaces the data of the live session whose key hashes to
    /// `key_hash`; returns whether there was one.
    pub(crate) async fn update_live(
        &self,
        key_hash: String,
        state: &SessionState,
        ttl: &Duration,
    ) -> Result<bool, UpdateError> {
        let data = encode_state(state);
        let user_id = self.user_id(state);
        let expires_at = expiry_after(ttl);
        with_conn(&self.pool, move |conn| {
            models::update_live(conn, &key_hash, &data, user_id, expires_at)
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(UpdateError::Other)
    }
}

impl SessionStore for DbSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let key_hash = models::hash_key(session_key.as_ref());
        Ok(self
            .load_live(key_hash)
            .await?
            .map(|(state, _expires_at)| state))
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let data = encode_state(&state);
        let user_id = self.user_id(&state);
        let expires_at = expiry_after(ttl);
        with_conn(&self.pool, move |conn| {
            for _ in 0..SAVE_ATTEMPTS {
                let key = generate_session_key();
                let key_hash = models::hash_key(key.as_ref());
                let row = NewStoredSession {
                    key_hash: &key_hash,
                    data: &data,
                    expires_at,
                    user_id,
                    created_at: models::now(),
                };
                match models::insert(conn, &row) {
                    Ok(()) => return Ok(key),
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                    Err(err) => return Err(anyhow::Error::from(err)),
                }
            }
            Err(no_unused_key())
        })
        .await
        .map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let key_hash = models::hash_key(session_key.as_ref());
        if !self.update_live(key_hash, &state, ttl).await? {
            // Gone while this request ran (signed out, revoked, expired):
            // never resurrect it, under its key or a new one.
            outcome::note_gone();
        }
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let key_hash = models::hash_key(session_key.as_ref());
        // Only called under `TtlExtensionPolicy::OnEveryRequest`, which Porter
        // does not use; without the state, the configured timeout applies.
        let expires_at = expiry_after(ttl);
        with_conn(&self.pool, move |conn| {
            models::touch(conn, &key_hash, expires_at).map_err(anyhow::Error::from)
        })
        .await
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let key_hash = models::hash_key(session_key.as_ref());
        let deleted = with_conn(&self.pool, move |conn| {
            models::delete_by_key_hash(conn, &key_hash).map_err(anyhow::Error::from)
        })
        .await?;
        if !deleted {
            // Cycling the key of a session that is already gone.
            outcome::note_gone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_one_json_object() {
        let mut state = SessionState::new();
        state.insert("_auth_user_id".into(), "\"7\"".into());
        state.insert("count".into(), "3".into());
        let data = encode_state(&state);
        let object: Value = serde_json::from_str(&data).expect("JSON");
        assert_eq!(object["_auth_user_id"], "7");
        assert_eq!(object["count"], 3);
        assert_eq!(decode_state(&data).expect("decodes"), state);
    }
}
