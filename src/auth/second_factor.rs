//! Half signed in: between step 3 (`authenticate` accepted the password)
//! and step 4 (`login`) when the user has two-factor sign-in on. What
//! `django-two-factor-auth`'s login wizard keeps between its steps.
//!
//! The password view does not call `login`; it stores a [`PendingLogin`]
//! under its own session key ([`SessionKeys::PENDING_LOGIN`]), not
//! `_auth_user_id`, so the lazy user still sees an anonymous visitor and no
//! page behind `login_required` opens. `/login/verify` takes the state out
//! (once), checks the code, and only then calls `login`, which renews the
//! session key again. The state lives five minutes.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use super::{AuthContext, AuthError, Authenticated, SessionKeys, models::User, totp};
use crate::db::{DbError, with_conn};

/// How long the half-signed-in state lasts, in seconds.
pub const PENDING_LOGIN_TTL_SECS: i64 = 5 * 60;

/// A right password waiting for its second factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Whose password it was.
    pub user_id: i32,
    /// The backend that accepted it, to store at `login`.
    pub backend: String,
    /// When the password was accepted, in Unix seconds.
    pub started_at: i64,
    /// The login form's "remember me".
    pub remember_me: bool,
    /// Where to go afterwards (checked again when used).
    pub next: Option<String>,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl PendingLogin {
    /// The state for `authenticated`, starting now.
    pub fn new(authenticated: &Authenticated, remember_me: bool, next: Option<String>) -> Self {
        Self {
            user_id: authenticated.user.id,
            backend: authenticated.backend.to_owned(),
            started_at: unix_now(),
            remember_me,
            next,
        }
    }

    /// Stores the state in the session under a new session key (a key
    /// planted before the password is useless after it).
    pub fn store(&self, session: &Session) -> Result<(), AuthError> {
        session.renew();
        session.insert(SessionKeys::PENDING_LOGIN, self)?;
        Ok(())
    }

    /// The session's state, if there is one and it is younger than five
    /// minutes; an expired one is removed.
    pub fn read(session: &Session) -> Option<Self> {
        let pending: Self = session.get(SessionKeys::PENDING_LOGIN).ok()??;
        let age = unix_now().saturating_sub(pending.started_at);
        if !(0..=PENDING_LOGIN_TTL_SECS).contains(&age) {
            session.remove(SessionKeys::PENDING_LOGIN);
            return None;
        }
        Some(pending)
    }

    /// Ends the half-signed-in state.
    pub fn clear(session: &Session) {
        session.remove(SessionKeys::PENDING_LOGIN);
    }

    /// The user and backend the state names, if the backend still lets the
    /// user in: what `login` needs once the second factor is right.
    pub async fn authenticated(
        &self,
        auth: &AuthContext,
    ) -> Result<Option<Authenticated>, AuthError> {
        let Some(backend) = auth.backend(&self.backend).cloned() else {
            return Ok(None);
        };
        let (pool, user_id, name) = (auth.pool().clone(), self.user_id, backend.name());
        let user = crate::db::run_blocking(move || backend.get_user(&pool, user_id)).await??;
        Ok(user.map(|user| Authenticated {
            user,
            backend: name,
        }))
    }
}

/// Whether `user` must give a second factor after their password: they
/// confirmed a TOTP device.
pub async fn required_for(auth: &AuthContext, user: &User) -> Result<bool, DbError> {
    let user_id = user.id;
    with_conn(auth.pool(), move |conn| {
        totp::find_confirmed(conn, user_id)
            .map(|device| device.is_some())
            .map_err(DbError::from)
    })
    .await
}
