//! Creating users and changing passwords: Django's `UserManager.create_user`
//! and `User.set_password`. Blocking (they hash): call them on the
//! blocking pool.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use thiserror::Error;

use super::{
    hashers::{HashError, PasswordHasher},
    models::{self, NewUser, User},
    validators::{ValidationError, validate_password, validate_username},
};
use crate::db::DbConnection;

/// Why an account change did not happen.
#[derive(Debug, Error)]
pub enum AccountError {
    /// The input broke these rules; show them to the person typing.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))]
    Invalid(Vec<ValidationError>),
    /// A query failed.
    #[error("an account query failed")]
    Query(#[from] DieselError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Creates an active user after checking the username and the password.
/// The username is trimmed and normalised (NFKC); a name taken in any case
/// or Unicode spelling is refused.
pub fn create_user(
    conn: &mut DbConnection,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
    is_superuser: bool,
) -> Result<User, AccountError> {
    let username = models::normalize_username(username);
    validate_username(&username).map_err(|err| AccountError::Invalid(vec![err]))?;
    let problems = validate_password(password, &username);
    if !problems.is_empty() {
        return Err(AccountError::Invalid(problems));
    }
    let hash = hasher.hash(password)?;
    match models::create(conn, &NewUser::new(&username, &hash, is_superuser)) {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(AccountError::Invalid(vec![ValidationError::UsernameTaken]))
        }
        other => Ok(other?),
    }
}

/// Replaces `user`'s password after checking it; returns the updated user.
/// Every session signed in with the old password stops matching its auth
/// hash, so they end on their next request.
pub fn set_password(
    conn: &mut DbConnection,
    hasher: &PasswordHasher,
    user: &User,
    password: &str,
) -> Result<User, AccountError> {
    let problems = validate_password(password, &user.username);
    if !problems.is_empty() {
        return Err(AccountError::Invalid(problems));
    }
    let hash = hasher.hash(password)?;
    models::set_password_hash(conn, user.id, &hash)?;
    Ok(User {
        password: hash,
        ..user.clone()
    })
}
