//! The `cached_db` engine: Django's `django.contrib.sessions.backends.cached_db`,
//! as an actix-session [`SessionStore`]: the `db` engine's rows, with Redis
//! in front for reads.
//!
//! * **Reads** ask Redis first; a miss reads the row and caches it.
//! * **Writes** go to the row first (it decides, as on the `db` engine,
//!   whether a session is gone), then through to Redis.
//! * **Deletes** (logout, revocation, "sign out everywhere") delete the row
//!   and the cached copy.
//! * **Listing and revocation** come from the database
//!   ([`by_user`](super::by_user)), which keeps every guarantee of `db`.
//!
//! The row is the truth; the cache only saves the read. A cached copy lives
//! at most [`CACHE_TTL`]. **When Redis is out of reach**, every call to it
//! gives up within [`CACHE_CALL_TIMEOUT`] and the store serves from the
//! database alone, without an error, skipping Redis for
//! [`CACHE_PAUSE`] before trying again. The cached copies it could not
//! drop meanwhile (a logout, a revocation) are remembered and dropped
//! before this instance reads the cache again; an instance that never
//! lost Redis may serve such a copy until it expires, within `CACHE_TTL`.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration as StdDuration,
};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::{DbSessionStore, RedisSessionStore, SessionState, faults, models, outcome};

/// The longest a cached copy lives, whatever the session's own lifetime:
/// bounds how stale a copy can be after a delete that missed Redis.
pub const CACHE_TTL: StdDuration = StdDuration::from_secs(60);
/// How long one call to the cache may take: a cache that answers slowly is
/// no cache, and the database is there.
pub const CACHE_CALL_TIMEOUT: StdDuration = StdDuration::from_millis(250);
/// How long the cache is skipped after a call to it failed.
pub const CACHE_PAUSE: StdDuration = StdDuration::from_secs(1);

/// Sessions in the database, read through a Redis cache.
#[derive(Clone)]
pub struct CachedDbSessionStore {
    db: DbSessionStore,
    cache: RedisSessionStore,
    health: Arc<CacheHealth>,
}

/// Whether the cache is worth asking, and what it still holds wrongly.
#[derive(Debug, Default)]
struct CacheHealth {
    /// Unix milliseconds before which the cache is skipped.
    paused_until: AtomicI64,
    /// Key hashes whose cached copy should have been dropped, but the
    /// cache could not be reached.
    to_forget: Mutex<HashSet<String>>,
}

fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl std::fmt::Debug for CachedDbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDbSessionStore")
            .field("db", &self.db)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl CachedDbSessionStore {
    /// The rows of `db`, cached in `cache`.
    pub fn new(db: DbSessionStore, cache: RedisSessionStore) -> Self {
        Self {
            db,
            cache,
            health: Arc::default(),
        }
    }

    /// The store that keeps the rows: listing and revocation use it.
    pub(crate) fn db(&self) -> &DbSessionStore {
        &self.db
    }

    /// Runs one call to the cache, unless it is paused; `None` when it was
    /// skipped or failed (which pauses it). A cache that comes back first
    /// drops the copies it should have dropped meanwhile.
    async fn ask<T>(&self, call: impl Future<Output = anyhow::Result<T>>) -> Option<T> {
        if now_millis() < self.health.paused_until.load(Ordering::Relaxed) {
            return None;
        }
        let pending: Vec<String> = self
            .health
            .to_forget
            .lock()
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        let answer = async {
            if !pending.is_empty() {
                self.cache.forget(&pending).await?;
                if let Ok(mut set) = self.health.to_forget.lock() {
                    for hash in &pending {
                        set.remove(hash);
                    }
                }
            }
            call.await
        };
        match faults::bounded_for(CACHE_CALL_TIMEOUT, answer, |err| err).await {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(error = %err, "the session cache is out of reach; using the database alone");
                let resume =
                    now_millis() + i64::try_from(CACHE_PAUSE.as_millis()).unwrap_or(i64::MAX);
                self.health.paused_until.store(resume, Ordering::Relaxed);
                None
            }
        }
    }

    /// Drops the cached copies of these sessions, now or, if the cache is
    /// out of reach, before this instance reads it again.
    pub(crate) async fn forget(&self, key_hashes: Vec<String>) {
        if key_hashes.is_empty() {
            return;
        }
        if self.ask(self.cache.forget(&key_hashes)).await.is_none()
            && let Ok(mut set) = self.health.to_forget.lock()
        {
            set.extend(key_hashes);
        }
    }

    /// Caches `state` for as long as the session lives, at most
    /// [`CACHE_TTL`]. When the cache cannot take a write (`written`), the
    /// copy it may hold is stale and is dropped as soon as it can be; a copy
    /// read from the database changes nothing the cache holds.
    async fn put(&self, key_hash: &str, state: &SessionState, ttl_secs: i64, written: bool) {
        let cache_secs = i64::try_from(CACHE_TTL.as_secs()).unwrap_or(i64::MAX);
        let ttl_secs = ttl_secs.min(cache_secs);
        if ttl_secs <= 0 {
            return;
        }
        if self
            .ask(self.cache.cache(key_hash, state, ttl_secs))
            .await
            .is_none()
            && written
        {
            // A stale copy may sit in the cache: it must go before it is read.
            self.forget(vec![key_hash.to_owned()]).await;
        }
    }
}

impl SessionStore for CachedDbSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let key_hash = models::hash_key(session_key.as_ref());
        if let Some(Some(state)) = self.ask(self.cache.cached(&key_hash)).await {
            return Ok(Some(state));
        }
        let Some((state, expires_at)) = self.db.load_live(key_hash.clone()).await? else {
            return Ok(None);
        };
        let left = (expires_at - models::now()).whole_seconds();
        self.put(&key_hash, &state, left, false).await;
        Ok(Some(state))
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = self.db.save(state.clone(), ttl).await?;
        self.put(
            &models::hash_key(key.as_ref()),
            &state,
            ttl.whole_seconds(),
            true,
        )
        .await;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let key_hash = models::hash_key(session_key.as_ref());
        if self.db.update_live(key_hash.clone(), &state, ttl).await? {
            self.put(&key_hash, &state, ttl.whole_seconds(), true).await;
        } else {
            // Gone while this request ran: never resurrect it (see
            // `outcome`), and drop any copy the cache still has.
            outcome::note_gone();
            self.forget(vec![key_hash]).await;
        }
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        // Only under `TtlExtensionPolicy::OnEveryRequest`, which Porter does
        // not use: the row moves; the copy expires on its own soon enough.
        self.db.update_ttl(session_key, ttl).await
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let deleted = self.db.delete(session_key).await;
        self.forget(vec![models::hash_key(session_key.as_ref())])
            .await;
        deleted
    }
}
