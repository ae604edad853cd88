//! A user's e-mail address: Django's `User.email` and
//! `BaseUserManager.normalize_email`, plus the confirmation Django leaves
//! to add-ons (django-allauth's `EmailAddress.verified`).
//!
//! An address is stored as given, with its domain in lower case (domains
//! are case-insensitive; the part before the `@` may not be). It is found
//! and kept unique by a lookup key, the whole address in Unicode NFKC and
//! lower case, so "Alice@Example.com" and "alice@example.com" are one
//! address, as usernames are one name (see [`username_key`](super::models::username_key)).
//!
//! An address is unconfirmed until its owner follows a link mailed to it
//! (an [`auth::tokens`](super::tokens) token). A change of address is kept
//! in `new_email` and replaces the old one only when confirmed.

use std::str::FromStr;

use diesel::prelude::*;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use super::models::User;
use crate::{db::DbConnection, schema::users};

/// The longest address accepted (RFC 5321's limit on a path).
pub const MAX_EMAIL_LEN: usize = 254;

/// Why an address was refused, in words for the person typing it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EmailError {
    /// Not an address mail can be sent to.
    #[error("Enter a valid email address.")]
    Invalid,
    /// Another account has it.
    #[error("An account with this email address already exists.")]
    Taken,
}

/// Django's `normalize_email`: surrounding spaces removed, the domain in
/// lower case.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_owned(),
    }
}

/// The key an address is found and kept unique by: NFKC, lower case.
pub fn email_key(email: &str) -> String {
    normalize_email(email)
        .nfkc()
        .collect::<String>()
        .to_lowercase()
}

/// Checks an address, already normalised: one an SMTP server would take
/// (lettre's parser, the same that later builds the mail), a domain with a
/// dot, and no longer than [`MAX_EMAIL_LEN`].
pub fn validate_email(email: &str) -> Result<(), EmailError> {
    let parsed = lettre::Address::from_str(email).map_err(|_| EmailError::Invalid)?;
    let dotted = parsed.domain().contains('.') && !parsed.domain().ends_with('.');
    if email.chars().count() <= MAX_EMAIL_LEN && dotted {
        Ok(())
    } else {
        Err(EmailError::Invalid)
    }
}

/// The active user whose address this is, however it is spelled.
pub fn find_active_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email_key.eq(email_key(email)))
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

/// Whether any account has this address, however it is spelled.
pub fn is_taken(conn: &mut DbConnection, email: &str) -> QueryResult<bool> {
    users::table
        .filter(users::email_key.eq(email_key(email)))
        .count()
        .get_result::<i64>(conn)
        .map(|count| count > 0)
}

/// Whether an account other than `user_id` has this address.
pub fn taken_by_another(conn: &mut DbConnection, email: &str, user_id: i32) -> QueryResult<bool> {
    users::table
        .filter(users::email_key.eq(email_key(email)))
        .filter(users::id.ne(user_id))
        .count()
        .get_result::<i64>(conn)
        .map(|count| count > 0)
}

/// Records that the user wants `email` as their address: it waits in
/// `new_email` until confirmed.
pub fn request_change(conn: &mut DbConnection, user_id: i32, email: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::new_email.eq(Some(normalize_email(email))))
        .execute(conn)
        .map(drop)
}

/// Makes `email` the user's confirmed address, the pending change (if it
/// was one) done. Another account holding the address by now is a unique
/// [`EmailError::Taken`].
pub fn confirm(
    conn: &mut DbConnection,
    user_id: i32,
    email: &str,
) -> QueryResult<Result<(), EmailError>> {
    set_address(conn, user_id, email, true)
}

/// Gives the user `email` as their unconfirmed address (at sign-up).
/// Another account holding it is [`EmailError::Taken`].
pub fn set_unconfirmed(
    conn: &mut DbConnection,
    user_id: i32,
    email: &str,
) -> QueryResult<Result<(), EmailError>> {
    set_address(conn, user_id, email, false)
}

/// Sets the user's address, confirmed or not; no change stays pending.
fn set_address(
    conn: &mut DbConnection,
    user_id: i32,
    email: &str,
    confirmed: bool,
) -> QueryResult<Result<(), EmailError>> {
    let updated = diesel::update(users::table.find(user_id))
        .set((
            users::email.eq(Some(normalize_email(email))),
            users::email_key.eq(Some(email_key(email))),
            users::email_confirmed.eq(confirmed),
            users::new_email.eq(None::<String>),
        ))
        .execute(conn);
    unique_or(updated)
}

fn unique_or(updated: QueryResult<usize>) -> QueryResult<Result<(), EmailError>> {
    match updated {
        Ok(_) => Ok(Ok(())),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(Err(EmailError::Taken)),
        Err(err) => Err(err),
    }
}

/// Marks the user's current address confirmed: a password reset proved
/// its owner reads it.
pub fn mark_confirmed(conn: &mut DbConnection, user_id: i32) -> QueryResult<()> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::email.is_not_null()),
    )
    .set(users::email_confirmed.eq(true))
    .execute(conn)
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_lowercased_and_the_local_part_kept() {
        assert_eq!(normalize_email("  Alice@Example.COM "), "Alice@example.com");
        assert_eq!(email_key("Alice@Example.COM"), "alice@example.com");
        assert_eq!(email_key("ａｌｉｃｅ@example.com"), "alice@example.com");
    }

    #[test]
    fn addresses_mail_cannot_reach_are_refused() {
        assert_eq!(validate_email("alice@example.com"), Ok(()));
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@example.com\r\nBcc: eve@example.com",
            "alice example@example.com",
            "a<b>@example.com",
        ] {
            assert_eq!(validate_email(bad), Err(EmailError::Invalid), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(validate_email(&long), Err(EmailError::Invalid));
    }
}
