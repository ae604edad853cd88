//! Step 4 of the dance, `login(request, user)`, and its inverses: Django's
//! `login()`, `logout()` and `get_user()` from `django.contrib.auth`.
//!
//! After `login`, the session holds three entries, exactly as Django's does:
//!
//! ```text
//! {"_auth_user_id": "1",
//!  "_auth_user_backend": "model",
//!  "_auth_user_hash": "…"}
//! ```

use actix_identity::{Identity, IdentityExt};
use actix_session::{Session, SessionExt};
use actix_web::{HttpMessage, HttpRequest};

use super::{
    AuthContext, AuthError, Authenticated, HashCheck, LazyUser, User, models, signals::AuthEvent,
};
use crate::{csrf, db::with_conn};

/// The session keys of the dance, spelled as Django spells them.
#[derive(Debug)]
pub struct SessionKeys;

impl SessionKeys {
    /// The signed-in user's id (kept by actix-identity).
    pub const USER_ID: &'static str = "_auth_user_id";
    /// The name of the backend that authenticated the user.
    pub const BACKEND: &'static str = "_auth_user_backend";
    /// [`AuthContext::session_auth_hash`] at the time of login.
    pub const HASH: &'static str = "_auth_user_hash";
}

/// Signs `authenticated.user` in on this request's session.
///
/// The session key is renewed (a key planted before login is useless after
/// it: no session fixation), the user id, backend and auth hash are stored,
/// the CSRF token is rotated and `last_login` is stamped. The session
/// middleware saves the result on the way out (step 6).
pub async fn login(
    req: &HttpRequest,
    auth: &AuthContext,
    authenticated: &Authenticated,
) -> Result<(), AuthError> {
    let user = &authenticated.user;
    let session = req.get_session();
    // Someone else's data must not survive into this user's session.
    let previous: Option<String> = session.get(SessionKeys::USER_ID).unwrap_or_default();
    if previous.is_some_and(|id| id != user.id.to_string()) {
        session.clear();
    }

    Identity::login(&req.extensions(), user.id.to_string())?;
    session.insert(SessionKeys::BACKEND, authenticated.backend)?;
    session.insert(SessionKeys::HASH, auth.session_auth_hash(user))?;
    csrf::rotate_token(req);

    let user_id = user.id;
    let last_login = with_conn(auth.pool(), move |conn| {
        models::set_last_login(conn, user_id).map_err(AuthError::from)
    })
    .await?;

    let mut user = user.clone();
    user.last_login = Some(last_login);
    if let Some(lazy_user) = LazyUser::of(req) {
        lazy_user.set(Some(user)).await;
    }
    auth.send(
        &AuthEvent::LoggedIn {
            user_id,
            backend: authenticated.backend,
        },
        req,
    );
    Ok(())
}

/// After a password change, keeps this session signed in: Django's
/// `update_session_auth_hash`. Every other session still holds the old
/// hash and ends on its next request.
pub fn update_session_auth_hash(
    session: &Session,
    auth: &AuthContext,
    user: &User,
) -> Result<(), AuthError> {
    session.insert(SessionKeys::HASH, auth.session_auth_hash(user))?;
    Ok(())
}

/// Signs the visitor out: the server-side session is deleted and the
/// cookie removed. Safe to call for anonymous visitors.
pub async fn logout(req: &HttpRequest, auth: &AuthContext) {
    let user_id = match req.get_identity() {
        Ok(identity) => {
            let user_id = identity.id().ok().and_then(|id| id.parse().ok());
            identity.logout();
            user_id
        }
        Err(_) => {
            req.get_session().purge();
            None
        }
    };
    if let Some(lazy_user) = LazyUser::of(req) {
        lazy_user.set(None).await;
    }
    auth.send(&AuthEvent::LoggedOut { user_id }, req);
}

/// What the session says about who is signed in.
#[derive(Debug, Clone)]
pub struct SessionClaim {
    user_id: i32,
    backend: String,
    hash: String,
}

impl SessionClaim {
    /// Reads the claim from the session; `None` for anonymous sessions or
    /// entries that do not parse.
    pub fn read(session: &Session, identity: Option<&str>) -> Option<Self> {
        Some(Self {
            user_id: identity?.parse().ok()?,
            backend: session.get(SessionKeys::BACKEND).ok()??,
            hash: session.get(SessionKeys::HASH).ok()??,
        })
    }
}

/// Django's `get_user()`: the user the session claims, if the claim still
/// holds. Blocking: call it on the blocking pool.
///
/// The claim holds when its backend is still configured, the backend still
/// knows the user (and lets them in), and the auth hash still matches the
/// user's password.
pub fn get_user(auth: &AuthContext, claim: &SessionClaim) -> Result<UserLookup, AuthError> {
    let Some(backend) = auth.backend(&claim.backend) else {
        return Ok(UserLookup::Stale);
    };
    let Some(user) = backend.get_user(auth.pool(), claim.user_id)? else {
        return Ok(UserLookup::Stale);
    };
    Ok(match auth.verify_session_auth_hash(&user, &claim.hash) {
        HashCheck::Current => UserLookup::Found(user),
        HashCheck::Fallback => UserLookup::Restamp(user),
        HashCheck::Mismatch => UserLookup::Stale,
    })
}

/// The outcome of [`get_user`].
#[derive(Debug)]
pub enum UserLookup {
    /// The session's user, still valid.
    Found(User),
    /// The session's user, valid under a fallback secret key: the session's
    /// auth hash must be re-stamped with the current key.
    Restamp(User),
    /// The claim no longer holds: the user is gone or inactive, the backend
    /// was removed, or the password changed. The session must be flushed.
    Stale,
}
