//! Step 3 of the dance, `authenticate(credentials)`: Django's
//! `django.contrib.auth.authenticate` and its `ModelBackend`.
//!
//! Each configured [`AuthBackend`] is asked in turn; the first that
//! recognises the credentials wins, and its name goes into the session so
//! that later requests ask the same backend for the user.

use std::{collections::BTreeMap, fmt, sync::Arc};

use super::{
    AuthContext, AuthError,
    hashers::PasswordHasher,
    models::{self, User},
};
use crate::db::DbPool;

/// What a visitor submitted to sign in: the login form's fields by name,
/// as Django's `authenticate(request, **credentials)` takes them. Each
/// backend reads the fields it understands ([`ModelBackend`]: `username`
/// and `password`) and ignores the rest, so a backend with fields of its own
/// (a `token`, an `email`) needs no change to the login view: only a field
/// in the form. `Debug` shows the field names, never their values.
#[derive(Clone, Default)]
pub struct Credentials(BTreeMap<String, String>);

/// A field was sent twice: which one to believe?
#[derive(Debug, thiserror::Error)]
#[error("the field {0:?} was sent more than once")]
pub struct RepeatedField(pub String);

impl Credentials {
    /// Credentials from submitted fields; each name may come once.
    pub fn from_fields(
        fields: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, RepeatedField> {
        let mut map = BTreeMap::new();
        for (name, value) in fields {
            if map.contains_key(&name) {
                return Err(RepeatedField(name));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A username and a password, as the login form sends them.
    pub fn username_password(username: &str, password: &str) -> Self {
        Self(BTreeMap::from([
            ("username".to_owned(), username.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ]))
    }

    /// The field `name`, if it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Takes the field `name` out (form plumbing such as `next`, which no
    /// backend should see).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Whether any field other than these was sent: credentials for some
    /// other backend than a username-and-password one.
    pub fn has_fields_besides(&self, names: &[&str]) -> bool {
        self.0.keys().any(|name| !names.contains(&name.as_str()))
    }

    /// Sets the field `name` (the login view trims the username).
    pub fn set(&mut self, name: &str, value: String) {
        self.0.insert(name.to_owned(), value);
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A source of users: Django's authentication backend.
///
/// Both methods block (they query the database and may hash passwords); the
/// dance calls them off the async workers: `authenticate` on the hashing
/// threads, `get_user` on the blocking pool.
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
        let (Some(username), Some(password)) =
            (credentials.get("username"), credentials.get("password"))
        else {
            // Not a username and password: another backend's credentials.
            return Ok(None);
        };
        let user = models::find_by_username(&mut *pool.get()?, username)?;
        let Some(user) = user else {
            self.hasher.verify_dummy(password);
            return Ok(None);
        };
        // The password is checked even for inactive users, so that being
        // deactivated is not visible in the response time either.
        let password_ok = self.hasher.verify(password, &user.password);
        if !(password_ok && user.is_active) {
            return Ok(None);
        }
        if !self.hasher.needs_rehash(&user.password) {
            return Ok(Some(user));
        }
        // Made with older costs: replace it while the password is at hand,
        // as Django's `check_password(setter=…)` does.
        let upgraded = self.hasher.hash(password)?;
        // Only over the hash just checked: a password changed or reset while
        // this one was hashing stays changed, and this login, made with the
        // password it replaced, fails.
        if !models::replace_password_hash(&mut *pool.get()?, user.id, &user.password, &upgraded)? {
            return Ok(None);
        }
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

/// Django's `AUTHENTICATION_BACKENDS`: the backends asked, in this order,
/// when someone signs in. To add one (a token, an LDAP directory),
/// implement [`AuthBackend`] and list it here; the login view passes it
/// every field of the login form. The first backend also vouches for the
/// accounts made by sign-up (see [`AuthContext::vouch_for_new`]). Passkeys
/// come second: they read only the fields the passkey sign-in sends.
pub fn configured(
    hasher: &Arc<PasswordHasher>,
    passkeys: &super::passkeys::Passkeys,
) -> Vec<Arc<dyn AuthBackend>> {
    vec![
        Arc::new(ModelBackend::new(Arc::clone(hasher))),
        Arc::new(super::passkeys::PasskeyBackend::new(passkeys.clone())),
    ]
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
