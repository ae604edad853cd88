//! The `redis` session engine: Django's `django.contrib.sessions.backends.cache`,
//! as an actix-session [`SessionStore`] over one Redis key per session.
//!
//! Each session lives under `REDIS_KEY_PREFIX` + the SHA-256 of its key (the
//! key itself is never stored, as in the `sessions` table), as the same JSON
//! object the database keeps, with a Redis TTL as its expiry. Every write is
//! one atomic command:
//!
//! * a new session is `SET … NX`: an existing key is never overwritten;
//! * an update is `SET … XX`: a session that is gone (signed out, revoked,
//!   expired) is never re-created, under its key or a new one.

use std::time::Duration as StdDuration;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use anyhow::Context;
use redis::{
    AsyncCommands, Client,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{
    db_store::{SAVE_ATTEMPTS, SessionState, decode_stored, encode_state, no_unused_key},
    models, outcome,
};

/// How long one Redis command may take before the request gives up on it.
const RESPONSE_TIMEOUT: StdDuration = StdDuration::from_secs(2);
/// How long connecting to Redis may take.
const CONNECTION_TIMEOUT: StdDuration = StdDuration::from_secs(2);
/// The longest wait between attempts to reconnect, in milliseconds. The
/// client's own backoff grows to a minute, and every command waits for the
/// reconnection in progress: sessions would stay unreachable long after
/// Redis is back.
const RECONNECT_MAX_DELAY_MS: u64 = 250;

/// Sessions stored in Redis.
#[derive(Clone)]
pub struct RedisSessionStore {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    /// Connects to the Redis server at `url`; keys start with `prefix`. The
    /// connection is re-established by itself after Redis comes back.
    pub async fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_max_delay(RECONNECT_MAX_DELAY_MS);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    /// The Redis key of a session key: the prefix and the key's SHA-256.
    pub fn redis_key(&self, session_key: &str) -> String {
        format!("{}{}", self.prefix, models::hash_key(session_key))
    }

    /// Stores `state` under `session_key` if (`only_existing`) the key is
    /// there already, or if (`!only_existing`) it is not; returns whether it
    /// was stored.
    async fn set(
        &self,
        session_key: &str,
        state: &SessionState,
        ttl: &Duration,
        only_existing: bool,
    ) -> anyhow::Result<bool> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.redis_key(session_key))
            .arg(encode_state(state))
            .arg(if only_existing { "XX" } else { "NX" })
            .arg("EX")
            .arg(ttl.whole_seconds().max(1));
        let stored: Option<String> = command
            .query_async(&mut self.connection.clone())
            .await
            .context("Redis refused a session write")?;
        Ok(stored.is_some())
    }
}

impl SessionStore for RedisSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let data: Option<String> = self
            .connection
            .clone()
            .get(self.redis_key(session_key.as_ref()))
            .await
            .context("Redis refused a session read")
            .map_err(LoadError::Other)?;
        decode_stored(data.as_deref())
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        for _ in 0..SAVE_ATTEMPTS {
            let key = generate_session_key();
            if self
                .set(key.as_ref(), &state, ttl, false)
                .await
                .map_err(SaveError::Other)?
            {
                return Ok(key);
            }
        }
        Err(SaveError::Other(no_unused_key()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let updated = self
            .set(session_key.as_ref(), &state, ttl, true)
            .await
            .map_err(UpdateError::Other)?;
        Ok(outcome::updated_or_gone(updated, session_key))
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let _: bool = self
            .connection
            .clone()
            .expire(
                self.redis_key(session_key.as_ref()),
                ttl.whole_seconds().max(1),
            )
            .await
            .context("Redis refused to move a session's expiry")?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let deleted: usize = self
            .connection
            .clone()
            .del(self.redis_key(session_key.as_ref()))
            .await
            .context("Redis refused to delete a session")?;
        if deleted == 0 {
            outcome::note_gone();
        }
        Ok(())
    }
}
