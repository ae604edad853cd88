//! Which user a session claims, and whether the claim still holds: Django's
//! `get_user()` and `update_session_auth_hash()` from `django.contrib.auth`,
//! with the session keys they read. Between [`login`](mod@super::login), which
//! writes the claim, and the lazy user ([`middleware`](super::middleware)),
//! which reads it.
//!
//! After `login`, the session holds three entries, exactly as Django's does:
//!
//! ```text
//! {"_auth_user_id": "1",
//!  "_auth_user_backend": "model",
//!  "_auth_user_hash": "…"}
//! ```

use std::time::Duration;

use actix_session::Session;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::{AuthContext, AuthError, HashCheck, User};
use crate::sessions::SessionState;

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
    /// When the user signed in, in Unix seconds: a session ends
    /// `SESSION_MAX_AGE` after it, whatever its activity. (Django has no
    /// absolute lifetime; the name follows its others.)
    pub const LOGIN_TIME: &'static str = "_auth_login_time";
    /// When the user last proved who they are (signed in, or answered
    /// `/sudo`), in Unix seconds: what [`recent_login_required`] reads.
    ///
    /// [`recent_login_required`]: super::recent_login::recent_login_required
    pub const VERIFIED_AT: &'static str = "_auth_verified_at";
    /// The half-signed-in state between a right password and the second
    /// factor ([`PendingLogin`](super::second_factor::PendingLogin)). Not
    /// [`Self::USER_ID`]: until the second factor, the visitor is anonymous.
    pub const PENDING_LOGIN: &'static str = "_auth_pending_login";
    /// A passkey ceremony under way ([`Ceremony`](super::passkeys::Ceremony)).
    pub const PASSKEY_CEREMONY: &'static str = "_auth_passkey_ceremony";
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

/// What the session says about who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaim {
    user_id: i32,
    backend: String,
    hash: String,
    /// `None` for sessions signed in before Porter noted the time.
    login_time: Option<i64>,
}

impl SessionClaim {
    /// Reads the claim from the session; `None` for anonymous sessions or
    /// entries that do not parse.
    pub fn read(session: &Session, identity: Option<&str>) -> Option<Self> {
        let user_id: i32 = identity?.parse().ok()?;
        Self::from_state(&session.entries()).filter(|claim| claim.user_id == user_id)
    }

    /// Reads the claim from a session's stored entries (JSON texts), as a
    /// store loaded them: for work that runs before the request has its
    /// [`Session`] ([`UserPrefetch`](super::middleware::UserPrefetch)).
    pub fn from_state(state: &SessionState) -> Option<Self> {
        fn entry<T: DeserializeOwned>(state: &SessionState, key: &str) -> Option<T> {
            serde_json::from_str(state.get(key)?).ok()
        }
        Some(Self {
            user_id: entry::<String>(state, SessionKeys::USER_ID)?.parse().ok()?,
            backend: entry(state, SessionKeys::BACKEND)?,
            hash: entry(state, SessionKeys::HASH)?,
            login_time: entry(state, SessionKeys::LOGIN_TIME),
        })
    }

    /// Whether the session is older than `max_age` since its login. A
    /// session from before login times were noted is not: it is given one
    /// now (see [`stamp_login_time`]), rather than signing everyone out.
    pub fn outlived(&self, max_age: Duration) -> bool {
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        self.login_time
            .is_some_and(|at| OffsetDateTime::now_utc().unix_timestamp() - at > max_age)
    }

    /// Whether the session lacks a login time.
    pub fn lacks_login_time(&self) -> bool {
        self.login_time.is_none()
    }
}

/// Notes now as the session's login time (at `login`, and for a session
/// from before login times were noted).
pub fn stamp_login_time(session: &Session) -> Result<(), AuthError> {
    session.insert(
        SessionKeys::LOGIN_TIME,
        OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    Ok(())
}

/// Django's `get_user()`: the user the session claims, if the claim still
/// holds. Blocking: call it on the blocking pool.
///
/// The claim holds when the session is younger than `SESSION_MAX_AGE`
/// since its login, its backend is still configured, the backend still
/// knows the user (and lets them in), and the auth hash still matches the
/// user's password (and session generation).
pub fn get_user(auth: &AuthContext, claim: &SessionClaim) -> Result<UserLookup, AuthError> {
    if claim.outlived(auth.session_max_age()) {
        return Ok(UserLookup::Stale);
    }
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
    /// The claim no longer holds: the session outlived `SESSION_MAX_AGE`,
    /// the user is gone or inactive, the backend was removed, or the
    /// password changed. The session must be flushed.
    Stale,
}
