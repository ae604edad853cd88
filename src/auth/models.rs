//! The user model: Django's `django.contrib.auth.models.User`, reduced to
//! what the dance needs.

use std::fmt;

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::{db::DbConnection, schema::users, sessions::models::now};

diesel::define_sql_function! {
    /// SQL `lower()`: usernames are compared without regard to case.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
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
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("is_active", &self.is_active)
            .field("is_superuser", &self.is_superuser)
            .finish_non_exhaustive()
    }
}

/// A user about to be created.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// The username, already validated.
    pub username: &'a str,
    /// An argon2id PHC string.
    pub password: &'a str,
    /// Whether the account starts out as a superuser.
    pub is_superuser: bool,
    /// Now (UTC).
    pub date_joined: PrimitiveDateTime,
}

impl<'a> NewUser<'a> {
    /// A new, active user joining now.
    pub fn new(username: &'a str, password_hash: &'a str, is_superuser: bool) -> Self {
        Self {
            username,
            password: password_hash,
            is_superuser,
            date_joined: now(),
        }
    }
}

/// The user with this id.
pub fn find_by_id(conn: &mut DbConnection, id: i32) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The user with this username, compared without regard to case.
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::username).eq(lower(username)))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Creates a user and returns it. A taken username is a unique violation.
pub fn create(conn: &mut DbConnection, new_user: &NewUser<'_>) -> QueryResult<User> {
    conn.transaction(|conn| {
        diesel::insert_into(users::table)
            .values(new_user)
            .execute(conn)?;
        users::table
            .filter(users::username.eq(new_user.username))
            .select(User::as_select())
            .first(conn)
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
        .order(lower(users::username))
        .select(User::as_select())
        .load(conn)
}
