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
//!
//! **Indexed by user** (as Spring Session's indexed Redis repository): a
//! signed-in session's key hash is also a member of its user's sorted set,
//! `REDIS_KEY_PREFIX` + `user:` + the user id, scored with the session's
//! expiry (Unix seconds). Each write and delete is one Lua script, so the
//! session and its index entry change together; the set lives as long as
//! its longest session, and a read drops the members whose session expired
//! or is gone, so the listing never shows one. (The scripts touch the index
//! key they compute: a single Redis server or a primary, not a Cluster.)

use std::{sync::LazyLock, time::Duration as StdDuration};

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use anyhow::Context;
use redis::{
    AsyncCommands, Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{
    db_store::{
        SAVE_ATTEMPTS, SessionState, decode_state, decode_stored, encode_state, no_unused_key,
        user_id_in,
    },
    models, outcome, unix_now,
};

/// Stores a session (`SET` with `NX` or `XX`) and, when it was stored and
/// has a user, adds it to the user's index, both or neither.
///
/// KEYS: the session's key, then the user's index if signed in. ARGV: the
/// data, `NX` or `XX`, the TTL in seconds, the key hash (the member), the
/// expiry in Unix seconds (its score).
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local stored = redis.call('SET', KEYS[1], ARGV[1], ARGV[2], 'EX', ARGV[3])
        if not stored then return 0 end
        if KEYS[2] then
            redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
            if redis.call('TTL', KEYS[2]) < tonumber(ARGV[3]) then
                redis.call('EXPIRE', KEYS[2], ARGV[3])
            end
        end
        return 1
        ",
    )
});

/// Deletes a session and its entry in its user's index; returns 1 if there
/// was a session. The user id is read from the session's own data.
///
/// KEYS: the session's key. ARGV: the session key holding the user id
/// (empty when none is configured), the index keys' prefix, the key hash.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local data = redis.call('GET', KEYS[1])
        if not data then return 0 end
        redis.call('DEL', KEYS[1])
        if ARGV[1] ~= '' then
            local ok, session = pcall(cjson.decode, data)
            if ok and type(session) == 'table' and session[ARGV[1]] ~= nil then
                redis.call('ZREM', ARGV[2] .. tostring(session[ARGV[1]]), ARGV[3])
            end
        end
        return 1
        ",
    )
});

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
    user_id_key: Option<&'static str>,
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
            user_id_key: None,
        })
    }

    /// Names the session key that holds the signed-in user's id, so that the
    /// store can index sessions by user. The session framework knows nothing
    /// of users: start-up tells it where to look.
    pub fn with_user_id_key(mut self, key: &'static str) -> Self {
        self.user_id_key = Some(key);
        self
    }

    /// The Redis key of a session key: the prefix and the key's SHA-256.
    pub fn redis_key(&self, session_key: &str) -> String {
        self.key_of_hash(&models::hash_key(session_key))
    }

    /// The Redis key of a session, from its key's hash.
    fn key_of_hash(&self, key_hash: &str) -> String {
        format!("{}{key_hash}", self.prefix)
    }

    /// The prefix of the index keys: `REDIS_KEY_PREFIX` + `user:`. (Session
    /// keys end in a hex hash, so the two never meet.)
    fn index_prefix(&self) -> String {
        format!("{}user:", self.prefix)
    }

    /// The Redis key of a user's index.
    pub fn index_key(&self, user_id: i32) -> String {
        format!("{}{user_id}", self.index_prefix())
    }

    /// The live sessions of `user_id`: each key hash, state and expiry
    /// (Unix seconds). Members whose session expired, is gone, or names
    /// another user are dropped from the index on the way.
    pub async fn sessions_of(
        &self,
        user_id: i32,
    ) -> anyhow::Result<Vec<(String, SessionState, i64)>> {
        let index = self.index_key(user_id);
        let mut connection = self.connection.clone();
        let (members,): (Vec<(String, f64)>,) = redis::pipe()
            .atomic()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(unix_now())
            .ignore()
            .cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .context("Redis refused to read a user's sessions")?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = members
            .iter()
            .map(|(hash, _)| self.key_of_hash(hash))
            .collect();
        let data: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .context("Redis refused to read a user's sessions")?;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for ((hash, expires_at), data) in members.into_iter().zip(data) {
            let state = data.and_then(|data| decode_state(&data).ok());
            let theirs = state.filter(|state| {
                self.user_id_key
                    .and_then(|key| user_id_in(state, key))
                    .is_some_and(|id| id == user_id)
            });
            match theirs {
                // Scores are whole seconds written by `WRITE`.
                #[allow(clippy::cast_possible_truncation)]
                Some(state) => live.push((hash, state, expires_at as i64)),
                None => stale.push(hash),
            }
        }
        if !stale.is_empty() {
            let _: usize = connection
                .zrem(&index, &stale)
                .await
                .context("Redis refused to prune a user's index")?;
        }
        Ok(live)
    }

    /// Ends the sessions of `user_id` whose key hash `chosen` picks, with
    /// their index entries; returns how many were live.
    pub async fn revoke_for_user(
        &self,
        user_id: i32,
        chosen: impl Fn(&str) -> bool,
    ) -> anyhow::Result<usize> {
        let index = self.index_key(user_id);
        let mut connection = self.connection.clone();
        let members: Vec<String> = connection
            .zrange(&index, 0, -1)
            .await
            .context("Redis refused to read a user's sessions")?;
        let ending: Vec<String> = members.into_iter().filter(|hash| chosen(hash)).collect();
        if ending.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ending.iter().map(|hash| self.key_of_hash(hash)).collect();
        let (ended,): (usize,) = redis::pipe()
            .atomic()
            .del(&keys)
            .zrem(&index, &ending)
            .ignore()
            .query_async(&mut connection)
            .await
            .context("Redis refused to end a user's sessions")?;
        Ok(ended)
    }

    /// The session cached under `key_hash`, for the `cached_db` engine.
    pub(crate) async fn cached(&self, key_hash: &str) -> anyhow::Result<Option<SessionState>> {
        let data: Option<String> = self
            .connection
            .clone()
            .get(self.key_of_hash(key_hash))
            .await
            .context("Redis refused a cache read")?;
        Ok(data.and_then(|data| decode_state(&data).ok()))
    }

    /// Caches `state` under `key_hash` for `ttl_secs`, for the `cached_db`
    /// engine.
    pub(crate) async fn cache(
        &self,
        key_hash: &str,
        state: &SessionState,
        ttl_secs: i64,
    ) -> anyhow::Result<()> {
        let _: () = self
            .connection
            .clone()
            .set_ex(
                self.key_of_hash(key_hash),
                encode_state(state),
                u64::try_from(ttl_secs.max(1)).unwrap_or(1),
            )
            .await
            .context("Redis refused a cache write")?;
        Ok(())
    }

    /// Drops the cached sessions of these key hashes, for the `cached_db`
    /// engine.
    pub(crate) async fn forget(&self, key_hashes: &[String]) -> anyhow::Result<()> {
        if key_hashes.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = key_hashes
            .iter()
            .map(|hash| self.key_of_hash(hash))
            .collect();
        let _: usize = self
            .connection
            .clone()
            .del(keys)
            .await
            .context("Redis refused a cache delete")?;
        Ok(())
    }

    /// Stores `state` under `session_key` if (`only_existing`) the key is
    /// there already, or if (`!only_existing`) it is not, and enters it in
    /// its user's index; returns whether it was stored.
    async fn set(
        &self,
        session_key: &str,
        state: &SessionState,
        ttl: &Duration,
        only_existing: bool,
    ) -> anyhow::Result<bool> {
        let key_hash = models::hash_key(session_key);
        let ttl = ttl.whole_seconds().max(1);
        let mut write = WRITE.key(self.key_of_hash(&key_hash));
        if let Some(user_id) = self.user_id_key.and_then(|key| user_id_in(state, key)) {
            write.key(self.index_key(user_id));
        }
        let stored: i32 = write
            .arg(encode_state(state))
            .arg(if only_existing { "XX" } else { "NX" })
            .arg(ttl)
            .arg(&key_hash)
            .arg(unix_now() + ttl)
            .invoke_async(&mut self.connection.clone())
            .await
            .context("Redis refused a session write")?;
        Ok(stored == 1)
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
        let key_hash = models::hash_key(session_key.as_ref());
        let deleted: i32 = DELETE
            .key(self.key_of_hash(&key_hash))
            .arg(self.user_id_key.unwrap_or_default())
            .arg(self.index_prefix())
            .arg(&key_hash)
            .invoke_async(&mut self.connection.clone())
            .await
            .context("Redis refused to delete a session")?;
        if deleted == 0 {
            outcome::note_gone();
        }
        Ok(())
    }
}
