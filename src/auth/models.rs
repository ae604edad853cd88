//! The user model: Django's `django.contrib.auth.models.User`, reduced to
//! what the dance needs.
//!
//! Usernames are normalised to Unicode NFKC when they are stored, as
//! Django's `AbstractBaseUser.normalize_username` does, so that look-alike
//! spellings ("ｖｉｃｔｉｍ" in fullwidth letters) are the same name. They
//! are found by a lookup key, the NFKC form lowercased in full Unicode,
//! kept in its own uniquely indexed column: databases' own `lower()` is no
//! help (SQLite's folds ASCII only), so the key is computed here.

use std::fmt;

use diesel::prelude::*;
use time::PrimitiveDateTime;
use unicode_normalization::UnicodeNormalization;

use crate::{
    db::{DbConnection, now, transaction},
    schema::users,
};

diesel::define_sql_function! {
    /// SQL `length()`: a text's length in characters.
    fn length(x: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

diesel::define_sql_function! {
    /// SQL `octet_length()`: a text's length in bytes.
    fn octet_length(x: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

/// A username as stored and shown: what the user typed, in Unicode NFKC
/// (Django's `normalize_username`), without surrounding spaces.
pub fn normalize_username(username: &str) -> String {
    username.trim().nfkc().collect()
}

/// The key a username is found and kept unique by: its NFKC form,
/// lowercased in full Unicode ("ÉMILE" and "émile" share one).
pub fn username_key(username: &str) -> String {
    normalize_username(username).to_lowercase()
}

/// A user account.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Primary key; what the session stores as `_auth_user_id`.
    pub id: i32,
    /// The name the user signs in with, as they typed it at sign-up.
    pub username: String,
    /// An argon2id PHC string. Never shown, never logged.
    pub password: String,
    /// An inactive user cannot sign in, and their sessions end.
    pub is_active: bool,
    /// Holds every permission.
    pub is_superuser: bool,
    /// When the account was created (UTC).
    pub date_joined: PrimitiveDateTime,
    /// When the user last signed in (UTC).
    pub last_login: Option<PrimitiveDateTime>,
    /// The user's e-mail address, if they gave one (see
    /// [`email_address`](super::email_address)).
    pub email: Option<String>,
    /// Whether the owner of `email` followed a confirmation link.
    pub email_confirmed: bool,
    /// An address the user asked to change to, not yet confirmed.
    pub new_email: Option<String>,
    /// May enter the staff area (Django's `is_staff`); what they may do
    /// there is up to their permissions.
    pub is_staff: bool,
    /// Raised by "sign out everywhere": part of every session's auth hash,
    /// so raising it ends every session of the user on every engine.
    pub session_generation: i32,
}

impl User {
    /// A user that is not in the database (id 0): for a decoy that must
    /// cost what a real user costs, and for tests. The one place besides
    /// the table that lists every column.
    pub fn unsaved(username: &str, password_hash: &str, email: Option<&str>) -> Self {
        Self {
            id: 0,
            username: username.to_owned(),
            password: password_hash.to_owned(),
            is_active: true,
            is_superuser: false,
            date_joined: now(),
            last_login: None,
            email: email.map(str::to_owned),
            email_confirmed: false,
            new_email: None,
            is_staff: false,
            session_generation: 0,
        }
    }

    /// The address notices go to: `email`, once confirmed.
    pub fn confirmed_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_confirmed)
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("is_active", &self.is_active)
            .field("is_superuser", &self.is_superuser)
            .field("is_staff", &self.is_staff)
            .finish_non_exhaustive()
    }
}

/// A user about to be created.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// The username, already validated and normalised.
    pub username: &'a str,
    /// [`username_key`] of `username`.
    pub username_key: String,
    /// An argon2id PHC string.
    pub password: &'a str,
    /// Whether the account starts out as a superuser.
    pub is_superuser: bool,
    /// Whether the account starts out as staff (superusers always do).
    pub is_staff: bool,
    /// Now (UTC).
    pub date_joined: PrimitiveDateTime,
    /// The address, normalised, if one was given.
    pub email: Option<String>,
    /// Its lookup key.
    pub email_key: Option<String>,
    /// Whether the address counts as confirmed from the start.
    pub email_confirmed: bool,
}

impl<'a> NewUser<'a> {
    /// A new, active user joining now.
    pub fn new(username: &'a str, password_hash: &'a str, is_superuser: bool) -> Self {
        Self {
            username,
            username_key: username_key(username),
            password: password_hash,
            is_superuser,
            is_staff: is_superuser,
            date_joined: now(),
            email: None,
            email_key: None,
            email_confirmed: false,
        }
    }

    /// The same user with an e-mail address (normalised here), confirmed
    /// or not.
    pub fn with_email(self, email: &str, confirmed: bool) -> Self {
        Self {
            email: Some(super::email_address::normalize_email(email)),
            email_key: Some(super::email_address::email_key(email)),
            email_confirmed: confirmed,
            ..self
        }
    }
}

/// The user with this id.
pub fn find_by_id(conn: &mut DbConnection, id: i32) -> QueryResult<Option<User>> {
    // Every signed-in request runs this one.
    crate::on_each_database!(conn, |conn| {
        users::table
            .find(id)
            .select(User::as_select())
            .get_result(conn)
            .optional()
    })
}

/// The user with this username, however it is spelled: compared by
/// [`username_key`], so without regard to case or Unicode compatibility
/// forms.
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username_key.eq(username_key(username)))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

/// Creates a user and returns it. A taken username is a unique violation.
pub fn create(conn: &mut DbConnection, new_user: &NewUser<'_>) -> QueryResult<User> {
    transaction(conn, |conn| {
        diesel::insert_into(users::table)
            .values(new_user)
            .execute(conn)?;
        users::table
            .filter(users::username_key.eq(&new_user.username_key))
            .select(User::as_select())
            .get_result(conn)
    })
}

/// Stamps `last_login` with the current time (Django's `update_last_login`).
pub fn set_last_login(conn: &mut DbConnection, id: i32) -> QueryResult<PrimitiveDateTime> {
    let at = now();
    diesel::update(users::table.find(id))
        .set(users::last_login.eq(at))
        .execute(conn)?;
    Ok(at)
}

/// Replaces a user's password hash.
pub fn set_password_hash(conn: &mut DbConnection, id: i32, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password.eq(hash))
        .execute(conn)
        .map(drop)
}

/// Replaces the password hash only if it is still `expected`: a
/// compare-and-set, so that of two changes made from the same state (one
/// reset link used twice at once) only the first lands. Returns whether
/// it did.
pub fn replace_password_hash(
    conn: &mut DbConnection,
    id: i32,
    expected: &str,
    hash: &str,
) -> QueryResult<bool> {
    diesel::update(users::table.find(id).filter(users::password.eq(expected)))
        .set(users::password.eq(hash))
        .execute(conn)
        .map(|rows| rows == 1)
}

/// Makes a user staff or not; returns whether the user exists.
pub fn set_staff(conn: &mut DbConnection, id: i32, is_staff: bool) -> QueryResult<bool> {
    diesel::update(users::table.find(id))
        .set(users::is_staff.eq(is_staff))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// Makes a user a superuser (and staff) or not; returns whether the user
/// exists.
pub fn set_superuser(conn: &mut DbConnection, id: i32, is_superuser: bool) -> QueryResult<bool> {
    let update = diesel::update(users::table.find(id));
    let rows = if is_superuser {
        update
            .set((users::is_superuser.eq(true), users::is_staff.eq(true)))
            .execute(conn)?
    } else {
        update.set(users::is_superuser.eq(false)).execute(conn)?
    };
    Ok(rows > 0)
}

/// Raises the user's session generation, ending every session whose auth
/// hash was made before; returns the user as they now are.
pub fn bump_session_generation(conn: &mut DbConnection, id: i32) -> QueryResult<Option<User>> {
    diesel::update(users::table.find(id))
        .set(users::session_generation.eq(users::session_generation + 1))
        .execute(conn)?;
    find_by_id(conn, id)
}

/// Activates or deactivates a user; returns whether the user exists.
pub fn set_active(conn: &mut DbConnection, id: i32, is_active: bool) -> QueryResult<bool> {
    diesel::update(users::table.find(id))
        .set(users::is_active.eq(is_active))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// Every user, by username.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<User>> {
    users::table
        .order(users::username_key)
        .select(User::as_select())
        .load(conn)
}

/// Users whose username or e-mail address contains `needle`, without
/// regard to case (compared by lookup keys), by username: `limit` of them
/// from `offset`. An empty needle finds everyone.
pub fn search(
    conn: &mut DbConnection,
    needle: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = users::table.into_boxed();
    let needle = username_key(needle);
    if !needle.is_empty() {
        // `%` and `_` typed into the search box are meant literally.
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        query = query.filter(
            users::username_key
                .like(pattern.clone())
                .escape('\\')
                .or(users::email_key.like(pattern).escape('\\')),
        );
    }
    query
        .order(users::username_key)
        .offset(offset)
        .limit(limit)
        .select(User::as_select())
        .load(conn)
}

/// Recomputes the lookup key of every username that is not plain ASCII.
/// The migration that added the key could only fill it with SQL's
/// `lower()`, which is right for ASCII names alone; this finishes the job
/// and is cheap once done. Returns how many keys changed. A name whose
/// true key another account already holds keeps its old key, with a
/// warning: one of the two must be renamed by hand.
pub fn refresh_username_keys(conn: &mut DbConnection) -> QueryResult<usize> {
    let non_ascii: Vec<(i32, String, String)> = users::table
        .filter(octet_length(users::username).ne(length(users::username)))
        .select((users::id, users::username, users::username_key))
        .load(conn)?;
    let mut changed = 0;
    for (id, username, stored) in non_ascii {
        let key = username_key(&username);
        if key == stored {
            continue;
        }
        let update = diesel::update(users::table.find(id))
            .set(users::username_key.eq(&key))
            .execute(conn);
        match update {
            Ok(_) => changed += 1,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => tracing::warn!(
                user.id = id,
                "this username is another account's under Unicode normalisation; rename one"
            ),
            Err(err) => return Err(err),
        }
    }
    Ok(changed)
}
