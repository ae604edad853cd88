//! Step 4 of the dance, `login(request, user)`, and its inverse: Django's
//! `login()` and `logout()` from `django.contrib.auth`. What `login` stores
//! in the session, and how later requests read it back, is in
//! [`session_user`](super::session_user).

use actix_identity::{Identity, IdentityExt};
use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest};

use super::{
    AuthContext, AuthError, Authenticated, LazyUser,
    audit::{self, EventKind, NewEvent, Origin},
    models,
    session_user::{self, SessionKeys},
    signals::AuthEvent,
};
use crate::{
    csrf,
    db::{DbError, transaction, with_conn},
};

/// Signs `authenticated.user` in on this request's session.
///
/// The session key is renewed (a key planted before login is useless after
/// it: no session fixation), the user id, backend, auth hash and login time
/// (for `SESSION_MAX_AGE`) are stored, the CSRF token is rotated, and
/// `last_login` is stamped in one transaction with the sign-in's line in the
/// security log. The session
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
    session_user::stamp_login_time(&session)?;
    // Signing in is the freshest proof there is: sensitive actions go
    // through for `SUDO_TTL` without asking again.
    super::recent_login::stamp(&session)?;
    csrf::rotate_token(req);

    let user_id = user.id;
    let event = NewEvent::new(EventKind::Login, Origin::of(req))
        .by_user(user_id)
        .detail(serde_json::json!({ "backend": authenticated.backend }));
    // The sign-in's one write and its line in the security log, together.
    let last_login = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            let at = models::set_last_login(conn, user_id)?;
            audit::record(conn, &event)?;
            Ok(at)
        })
        .map_err(AuthError::Query)
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
    if let Some(user_id) = user_id {
        let event = NewEvent::new(EventKind::Logout, Origin::of(req)).by_user(user_id);
        let recorded = with_conn(auth.pool(), move |conn| {
            audit::record(conn, &event).map_err(DbError::from)
        })
        .await;
        // The session is gone either way; a missing log line is no reason
        // to keep the visitor signed in.
        if let Err(err) = recorded {
            tracing::warn!(error = %err, "the sign-out was not written to the security log");
        }
    }
    auth.send(&AuthEvent::LoggedOut { user_id }, req);
}
