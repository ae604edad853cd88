//! Step 3 of the dance, `authenticate(credentials)`: Django's
//! `django.contrib.auth.authenticate` and its `ModelBackend`.
//!
//! Each configured [`AuthBackend`] is asked in turn; the first that
//! recognises the credentials wins, and its name goes into the session so
//! that later requests ask the same backend for the user.

use std::{fmt, sync::Arc};

use super::{
    AuthContext, AuthError,
    hashers::PasswordHasher,
    models::{self, User},
};
use crate::db::DbPool;

/// What a visitor typed into the login form.
#[derive(Clone)]
pub struct Credentials {
    /// The username as typed.
    pub username: String,
    /// The password as typed. Never logged: `Debug` redacts it.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A source of users: Django's authentication backend.
///
/// Both methods block (they query the database and may hash passwords); the
/// dance calls them on the blocking pool.
pub trait AuthBackend: Send + Sync + 'static {
    /// The name stored in the session as `_auth_user_backend`: a stable
    /// identifier, not a Rust path, so that renaming the crate or moving the
    /// type signs nobody out. Changing it does, unless the old name is kept
    /// in [`AuthBackend::aliases`].
    fn name(&self) -> &'static str;

    /// Names this backend was stored under before. A session carrying one
    /// still finds the backend, so an upgrade that renames a backend keeps
    /// its users signed in.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// The user these credentials identify, or `None`.
    fn authenticate(
        &self,
        pool: &DbPool,
        credentials: &Credentials,
    ) -> Result<Option<User>, AuthError>;

    /// The user with this id, if it may still use the site.
    fn get_user(&self, pool: &DbPool, user_id: i32) -> Result<Option<User>, AuthError>;
}

/// Users from the `users` table with argon2 passwords: Django's `ModelBackend`.
#[derive(Debug, Clone)]
pub struct ModelBackend {
    hasher: Arc<PasswordHasher>,
}

impl ModelBackend {
    /// The name stored in sessions this backend signs in.
    pub const NAME: &'static str = "model";

    /// What earlier versions stored instead: the type's Rust path. It is
    /// what sessions made before the upgrade hold, so `scripts/rename.sh`
    /// leaves this string as it is when it renames a fork.
    pub const ALIASES: &'static [&'static str] = &["porter::auth::ModelBackend"];

    /// A backend checking passwords with `hasher`.
    pub fn new(hasher: Arc<PasswordHasher>) -> Self {
        Self { hasher }
    }
}

impl AuthBackend for ModelBackend {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aliases(&self) -> &'static [&'static str] {
        Self::ALIASES
    }

    fn authenticate(
        &self,
        pool: &DbPool,
        credentials: &Credentials,
    ) -> Result<Option<User>, AuthError> {
        // Give the connection back before the slow part: hashing.
        let user = models::find_by_username(&mut *pool.get()?, &credentials.username)?;
        let Some(user) = user else {
            self.hasher.verify_dummy(&credentials.password);
            return Ok(None);
        };
        // The password is checked even for inactive users, so that being
        // deactivated is not visible in the response time either.
        let password_ok = self.hasher.verify(&credentials.password, &user.password);
        if !(password_ok && user.is_active) {
            return Ok(None);
        }
        if !self.hasher.needs_rehash(&user.password) {
            return Ok(Some(user));
        }
        // Made with older costs: replace it while the password is at hand,
        // as Django's `check_password(setter=…)` does.
        let upgraded = self.hasher.hash(&credentials.password)?;
        models::set_password_hash(&mut *pool.get()?, user.id, &upgraded)?;
        tracing::info!(
            user.id = user.id,
            "password rehashed with the current argon2 settings"
        );
        Ok(Some(User {
            password: upgraded,
            ..user
        }))
    }

    fn get_user(&self, pool: &DbPool, user_id: i32) -> Result<Option<User>, AuthError> {
        let user = models::find_by_id(&mut *pool.get()?, user_id)?;
        Ok(user.filter(|user| user.is_active))
    }
}

/// A user together with the backend that vouched for them.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// [`AuthBackend::name`] of the backend that authenticated them.
    pub backend: &'static str,
}

/// Asks each backend in turn; returns the first user found, or `None`.
pub async fn authenticate(
    auth: &AuthContext,
    credentials: Credentials,
) -> Result<Option<Authenticated>, AuthError> {
    let backends = auth.backends().to_vec();
    let pool = auth.pool().clone();
    // On the hashing threads: a burst of logins waits there, it does not fail.
    let found = auth
        .hashing()
        .run(move || {
            for backend in backends {
                if let Some(user) = backend.authenticate(&pool, &credentials)? {
                    return Ok(Some(Authenticated {
                        user,
                        backend: backend.name(),
                    }));
                }
            }
            Ok::<_, AuthError>(None)
        })
        .await??;
    Ok(found)
}
