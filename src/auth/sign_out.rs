//! "Sign out everywhere": ending a user's sessions at once, on every
//! engine. Django has no such call; its nearest is the password change,
//! whose new auth hash ends every other session.
//!
//! Two things end a session here, so that every engine can do it:
//!
//! * the user's **session generation** is raised: it is part of every
//!   session's auth hash ([`AuthContext::session_auth_hash`]), so each
//!   session made before stops matching on its next request and is
//!   flushed, the `cookie` engine's included, which keeps nothing on the
//!   server to delete;
//! * what the engine keeps on the server is deleted at once
//!   ([`by_user`](crate::sessions::by_user)): rows, Redis keys and index
//!   entries, so "your sessions" shows them gone.
//!
//! [`end_every_session`] is the one call for "sign out everywhere" by staff,
//! deactivating a user and a password reset; [`end_other_sessions`] is
//! "sign out everywhere else", which keeps the request's own session.

use actix_session::SessionExt;
use actix_web::HttpRequest;

use super::{AuthContext, AuthError, User, models, session_user::update_session_auth_hash};
use diesel::QueryResult;

use crate::{
    db::{DbConnection, DbError, DbPool, transaction, with_conn},
    sessions::{SessionBackend, by_user, current_key_hash},
};

/// A change to make in the same transaction as the generation's rise: the
/// change that calls for it (a deactivation, say) and its line in the
/// security log, so that neither is written without the other.
pub type AlsoInTransaction = Box<dyn FnOnce(&mut DbConnection) -> QueryResult<()> + Send>;

/// Nothing more to do in the transaction.
pub fn nothing_else() -> AlsoInTransaction {
    Box::new(|_| Ok(()))
}

/// Raises `user_id`'s session generation and makes `also`, in one
/// transaction; the user as they now are.
async fn bump_generation(
    pool: &DbPool,
    user_id: i32,
    also: AlsoInTransaction,
) -> Result<Option<User>, AuthError> {
    Ok(with_conn(pool, move |conn| {
        transaction(conn, |conn| {
            let user = models::bump_session_generation(conn, user_id)?;
            also(conn)?;
            QueryResult::Ok(user)
        })
        .map_err(DbError::from)
    })
    .await?)
}

/// Ends every session of user `user_id`, on every engine, at once. Returns
/// how many sessions the server held, where the engine keeps any (`None`
/// on the `cookie` engine: its sessions end on their next request).
pub async fn end_every_session(
    pool: &DbPool,
    backend: &SessionBackend,
    user_id: i32,
    also: AlsoInTransaction,
) -> Result<Option<usize>, AuthError> {
    bump_generation(pool, user_id, also).await?;
    Ok(by_user::revoke_others(backend, user_id, None).await?)
}

/// "Sign out everywhere else": ends every session of `user` but the
/// request's own, which is re-stamped with the new generation's auth hash
/// and stays signed in. Returns how many sessions ended, where the engine
/// can count them (`None` on the `cookie` engine).
pub async fn end_other_sessions(
    req: &HttpRequest,
    auth: &AuthContext,
    backend: &SessionBackend,
    user: &User,
    also: AlsoInTransaction,
) -> Result<Option<usize>, AuthError> {
    let Some(user) = bump_generation(auth.pool(), user.id, also).await? else {
        return Ok(Some(0));
    };
    update_session_auth_hash(&req.get_session(), auth, &user)?;
    Ok(by_user::revoke_others(backend, user.id, current_key_hash(req)).await?)
}
