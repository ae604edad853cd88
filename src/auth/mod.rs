//! Steps 2 to 5 of the dance, authentication: Django's `django.contrib.auth`.
//!
//! | step | here | Django |
//! | ---- | ---- | ------ |
//! | 2. a lazy user on every request | [`middleware`] | `AuthenticationMiddleware`, `LazyUser` |
//! | 3. `authenticate(credentials)` | [`backends`] | `authenticate()`, `ModelBackend` |
//! | 4. `login(request, user)` | [`login`](mod@login) | `login()`, `logout()`, `get_user()` |
//! | 5. `login_required` | [`guards`] | `@login_required` |
//! | then: what the user may do | [`permissions`], [`guards`] | `Permission`, `Group`, `has_perm`, `@permission_required` |
//!
//! Identity itself (which user id this session claims) is kept by
//! actix-identity under Django's session key `_auth_user_id`.

pub mod audit;
pub mod backends;
pub mod device_cookies;
pub mod email_address;
pub mod grants;
pub mod guards;
pub mod hashers;
pub mod login;
pub mod middleware;
pub mod models;
pub mod permissions;
pub mod redirects;
pub mod session_user;
pub mod signals;
pub mod throttle;
pub mod tokens;
pub mod user_fields;
pub mod user_manager;
pub mod validators;

use std::{fmt, sync::Arc};

use actix_web::HttpRequest;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

pub use self::{
    backends::{AuthBackend, Authenticated, Credentials, ModelBackend, authenticate},
    guards::{CurrentUser, StaffUser, login_required, permission_required, staff_required},
    hashers::{HashingPool, PasswordHasher},
    login::{end_all_sessions, login, logout},
    middleware::LazyUser,
    models::User,
    session_user::{SessionKeys, update_session_auth_hash},
    signals::{AuthEvent, AuthListener},
};
use crate::{
    db::{self, DbError, DbPool},
    errors::AppError,
    settings::SecretKey,
};

/// Errors of the authentication machinery. All of them are server faults:
/// wrong credentials are not an error, they are `Ok(None)`.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed.
    #[error("a user query failed")]
    Query(#[from] diesel::result::Error),
    /// A connection could not be had.
    #[error("no database connection available")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The session could not be written.
    #[error("the session could not be updated")]
    Session(#[from] actix_session::SessionInsertError),
    /// Identity could not be recorded.
    #[error("the identity could not be recorded")]
    Identity(#[from] actix_identity::error::LoginError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] hashers::HashError),
    /// The password work did not run (too busy, or shutting down).
    #[error(transparent)]
    Hashing(#[from] hashers::HashingPoolError),
}

impl From<AuthError> for AppError {
    /// An outage is a 503, a full hashing queue a 503 with its own words;
    /// anything else is a fault of ours.
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Hashing(err) => err.into(),
            err if db::is_unavailable(&err) => Self::Unavailable(err.into()),
            err => Self::Unexpected(err.into()),
        }
    }
}

/// What the dance needs at run time, shared by every worker: Django's
/// `AUTHENTICATION_BACKENDS` and the key for session auth hashes.
pub struct AuthContext {
    pool: DbPool,
    hashing: HashingPool,
    hasher: Arc<PasswordHasher>,
    backends: Vec<Arc<dyn AuthBackend>>,
    listeners: Vec<Arc<dyn AuthListener>>,
    /// The key for session auth hashes, then those of `SECRET_KEY_FALLBACKS`.
    auth_hash_keys: Vec<[u8; 32]>,
    /// The key of [`AuthContext::username_digest`].
    username_digest_key: [u8; 32],
}

/// How a session's auth hash compares with the user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCheck {
    /// Made with the current secret key.
    Current,
    /// Made with a fallback key: valid, but to be re-stamped.
    Fallback,
    /// Not this password's hash (or made with a key no longer accepted).
    Mismatch,
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.backends.iter().map(|b| b.name()).collect();
        f.debug_struct("AuthContext")
            .field("backends", &names)
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// The context for `backends`, tried in order, hashing with `hasher` on
    /// the threads of `hashing`. Session auth hashes are made with
    /// `secret_key` and accepted under any of `fallbacks`.
    pub fn new(
        pool: DbPool,
        (hashing, hasher): (HashingPool, Arc<PasswordHasher>),
        secret_key: &SecretKey,
        fallbacks: &[SecretKey],
        backends: Vec<Arc<dyn AuthBackend>>,
    ) -> Self {
        Self {
            pool,
            hashing,
            hasher,
            backends,
            listeners: Vec::new(),
            auth_hash_keys: SecretKey::derive_all(
                secret_key,
                fallbacks,
                b"porter.auth.session_auth_hash",
            ),
            username_digest_key: audit::username_digest_key(secret_key),
        }
    }

    /// [`audit::username_digest`] under this site's key: how the security
    /// log keeps a name typed at a failed sign-in.
    pub fn username_digest(&self, username: &str) -> String {
        audit::username_digest(&self.username_digest_key, username)
    }

    /// Adds a backend, asked after the others.
    pub fn add_backend(&mut self, backend: Arc<dyn AuthBackend>) {
        self.backends.push(backend);
    }

    /// Adds a listener for login events.
    pub fn add_listener(&mut self, listener: Arc<dyn AuthListener>) {
        self.listeners.push(listener);
    }

    /// Logs `event` and tells every listener.
    pub fn send(&self, event: &AuthEvent<'_>, req: &HttpRequest) {
        signals::log_event(event);
        for listener in &self.listeners {
            listener.on_event(event, req);
        }
    }

    /// The database pool.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The threads that hash and check passwords.
    pub fn hashing(&self) -> &HashingPool {
        &self.hashing
    }

    /// The password hasher, for sign-up and password changes.
    pub fn hasher(&self) -> &Arc<PasswordHasher> {
        &self.hasher
    }

    /// A user just made here (by sign-up, or a test's `force_login`), vouched
    /// for by the first configured backend, which must be able to load them
    /// again by id: what `login` needs to sign them in.
    pub fn vouch_for_new(&self, user: User) -> Authenticated {
        let backend = self
            .backends
            .first()
            .map_or("none configured", |backend| backend.name());
        Authenticated { user, backend }
    }

    /// The configured backends, in the order they are asked.
    pub fn backends(&self) -> &[Arc<dyn AuthBackend>] {
        &self.backends
    }

    /// The backend stored in a session under this name (or one of its
    /// earlier names), if still configured.
    pub fn backend(&self, name: &str) -> Option<&Arc<dyn AuthBackend>> {
        self.backends
            .iter()
            .find(|backend| backend.name() == name || backend.aliases().contains(&name))
    }

    fn auth_hash_mac(key: &[u8; 32], user: &User) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(user.password.as_bytes());
        mac
    }

    /// Django's `get_session_auth_hash()`: an HMAC of the user's password
    /// hash. Stored in the session at login; when the password changes, the
    /// hash no longer matches and the session ends.
    pub fn session_auth_hash(&self, user: &User) -> String {
        let mac = Self::auth_hash_mac(&self.auth_hash_keys[0], user);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks `claimed` against this user's session auth hash under the
    /// current key, then each fallback, in constant time.
    pub fn verify_session_auth_hash(&self, user: &User, claimed: &str) -> HashCheck {
        let Ok(claimed) = hex::decode(claimed) else {
            return HashCheck::Mismatch;
        };
        let matches = |key| {
            Self::auth_hash_mac(key, user)
                .verify_slice(&claimed)
                .is_ok()
        };
        match self.auth_hash_keys.iter().position(matches) {
            Some(0) => HashCheck::Current,
            Some(_) => HashCheck::Fallback,
            None => HashCheck::Mismatch,
        }
    }
}
