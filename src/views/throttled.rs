//! The throttle as the forms use it (django-axes' part of step 3): an
//! attempt is reserved before the work it limits, and a refusal is the
//! `429` page. Password hashing is the work most forms throttle; when the
//! hashing queue is full nothing was tried, so the attempt is given back.

use std::sync::Arc;

use crate::{
    auth::{
        AuthContext, User,
        throttle::{Reservation, Scope, Throttle, ThrottleError},
    },
    errors::AppError,
};

/// Counts an attempt against every scope, or answers with the `429` page
/// naming `action` ("wrong passwords") when one of them is used up.
pub async fn reserve(
    throttle: &Throttle,
    scopes: &[Scope<'_>],
    action: &'static str,
) -> Result<Reservation, AppError> {
    throttle
        .reserve(scopes)
        .await
        .map_err(|err| refused(err, action))
}

/// A throttled attempt as a page, or the database fault behind it.
pub fn refused(err: ThrottleError, action: &'static str) -> AppError {
    match err {
        ThrottleError::Locked(wait) => AppError::Throttled {
            action,
            retry_after: wait.as_secs().max(1),
        },
        ThrottleError::Db(err) => err.into(),
    }
}

/// Runs `work` on the hashing threads for a reserved attempt. When the
/// queue is full the work never ran: the attempt is given back and the
/// answer is `503`.
pub async fn hash<T, F>(
    auth: &AuthContext,
    reservation: Reservation,
    work: F,
) -> Result<(T, Reservation), AppError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match auth.hashing().run(work).await {
        Ok(done) => Ok((done, reservation)),
        Err(busy) => {
            reservation.give_back().await?;
            Err(busy.into())
        }
    }
}

/// Checks a signed-in user's own password (to change it or the address):
/// a password oracle, so throttled per user like a login. A wrong password
/// stays counted; a right one clears the counter; an unchecked one (the
/// hashing queue is full) is given back.
pub async fn check_own_password(
    auth: &AuthContext,
    throttle: &Throttle,
    user: &User,
    password: String,
) -> Result<bool, AppError> {
    let reservation = reserve(
        throttle,
        &[Scope::PasswordCheck(user.id)],
        "wrong passwords",
    )
    .await?;
    let (checker, stored) = (Arc::clone(auth.hasher()), user.password.clone());
    let (ok, reservation) = hash(auth, reservation, move || {
        checker.verify(&password, &stored)
    })
    .await?;
    if ok {
        reservation.succeeded().await?;
    }
    Ok(ok)
}
