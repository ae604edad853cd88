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
    outcome,
};
use crate::db::{DbPool, with_conn};

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
        let raw = state.get(self.user_id_key?)?;
        match serde_json::from_str::<Value>(raw).ok()? {
            Value::String(id) => id.parse().ok(),
            Value::Number(id) => id.as_i64().and_then(|id| i32::try_from(id).ok()),
            _ => None,
        }
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

impl SessionStore for DbSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let key_hash = models::hash_key(session_key.as_ref());
        let row = with_conn(&self.pool, move |conn| {
            models::find_live_by_key_hash(conn, &key_hash).map_err(anyhow::Error::from)
        })
        .await
        .map_err(LoadError::Other)?;
        decode_stored(row.as_ref().map(|row| row.data.as_str()))
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
        let data = encode_state(&state);
        let user_id = self.user_id(&state);
        let expires_at = expiry_after(ttl);
        let updated = with_conn(&self.pool, move |conn| {
            models::update_live(conn, &key_hash, &data, user_id, expires_at)
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(UpdateError::Other)?;
        Ok(outcome::updated_or_gone(updated, session_key))
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
