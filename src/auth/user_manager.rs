//! Creating users and changing passwords: Django's `UserManager.create_user`
//! and `User.set_password`. Blocking (they hash): call them on the
//! blocking pool.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use thiserror::Error;

use super::{
    hashers::{HashError, PasswordHasher},
    models::{self, User},
    user_fields::UserFields,
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
    /// No connection could be had.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// A new account, checked and with its password hashed: ready to insert.
/// Made apart from any database connection, so that none is held while
/// hashing.
#[derive(Debug)]
pub struct NewAccount {
    fields: UserFields,
    /// The argon2 hash; `Debug` shows it, but it is no secret worth more
    /// than the table it goes into.
    password_hash: String,
    is_superuser: bool,
}

impl NewAccount {
    /// The user's own fields it was made from.
    pub fn fields(&self) -> &UserFields {
        &self.fields
    }
}

/// Checks the username and the password and hashes the password (slow:
/// call it on the hashing threads). The username is trimmed and normalised
/// (NFKC); the other fields are taken as [`UserFields::clean`] left them.
pub fn prepare_user(
    hasher: &PasswordHasher,
    mut fields: UserFields,
    password: &str,
    is_superuser: bool,
) -> Result<NewAccount, AccountError> {
    fields.username = models::normalize_username(&fields.username);
    validate_username(&fields.username).map_err(|err| AccountError::Invalid(vec![err]))?;
    let problems = validate_password(password, &fields.username);
    if !problems.is_empty() {
        return Err(AccountError::Invalid(problems));
    }
    Ok(NewAccount {
        fields,
        password_hash: hasher.hash(password)?,
        is_superuser,
    })
}

/// Inserts a prepared account as an active user; a name taken in any case
/// or Unicode spelling is refused.
pub fn insert_user(conn: &mut DbConnection, account: &NewAccount) -> Result<User, AccountError> {
    let new_user = account
        .fields
        .new_user(&account.password_hash, account.is_superuser);
    match models::create(conn, &new_user) {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(AccountError::Invalid(vec![ValidationError::UsernameTaken]))
        }
        other => Ok(other?),
    }
}

/// Creates an active user after checking the username and the password:
/// [`prepare_user`] then [`insert_user`], for the command line.
pub fn create_user(
    conn: &mut DbConnection,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
    is_superuser: bool,
) -> Result<User, AccountError> {
    let fields = UserFields {
        username: username.to_owned(),
        ..UserFields::default()
    };
    insert_user(conn, &prepare_user(hasher, fields, password, is_superuser)?)
}

/// Checks a new password for `user` and hashes it (slow: call it on the
/// hashing threads).
pub fn prepare_password(
    hasher: &PasswordHasher,
    user: &User,
    password: &str,
) -> Result<String, AccountError> {
    let problems = validate_password(password, &user.username);
    if !problems.is_empty() {
        return Err(AccountError::Invalid(problems));
    }
    Ok(hasher.hash(password)?)
}

/// Stores a hash made by [`prepare_password`]; returns the updated user.
/// Every session signed in with the old password stops matching its auth
/// hash, so they end on their next request.
pub fn store_password(
    conn: &mut DbConnection,
    user: &User,
    password_hash: String,
) -> Result<User, AccountError> {
    models::set_password_hash(conn, user.id, &password_hash)?;
    Ok(User {
        password: password_hash,
        ..user.clone()
    })
}

/// Replaces `user`'s password after checking it: [`prepare_password`] then
/// [`store_password`], for the command line.
pub fn set_password(
    conn: &mut DbConnection,
    hasher: &PasswordHasher,
    user: &User,
    password: &str,
) -> Result<User, AccountError> {
    store_password(conn, user, prepare_password(hasher, user, password)?)
}
