//! What a username and a password must be: Django's
//! `UnicodeUsernameValidator` and its four default password validators
//! (`UserAttributeSimilarityValidator`, `MinimumLengthValidator`,
//! `CommonPasswordValidator`, `NumericPasswordValidator`), plus an upper
//! bound on length so that huge passwords cannot be used to burn CPU.
//!
//! The list of common passwords (`common_passwords.txt`, 19,646 entries) is
//! the one Django ships, itself taken from Royce Williams' compilation of
//! leaked passwords; Django's BSD licence for it is in
//! `common_passwords.LICENSE`.

use std::{collections::HashSet, sync::LazyLock};

use thiserror::Error;

/// Longest username accepted, as Django's `User.username`.
pub const MAX_USERNAME_LEN: usize = 150;
/// Shortest password accepted, as Django's `MinimumLengthValidator`.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted.
pub const MAX_PASSWORD_LEN: usize = 4096;
/// How alike a password and the username may be (Django's default).
const MAX_SIMILARITY: f64 = 0.7;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Why a username or password was refused, in words for the person typing it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ValidationError {
    /// The username is empty, too long, or has characters outside the set.
    #[error(
        "Enter a username of 1 to {MAX_USERNAME_LEN} characters: letters, digits and @ . + - _ only."
    )]
    Username,
    /// Someone already has this username, in any case.
    #[error("A user with that username already exists.")]
    UsernameTaken,
    /// The password is shorter than the minimum.
    #[error("This password is too short. It must contain at least {MIN_PASSWORD_LEN} characters.")]
    PasswordTooShort,
    /// The password is longer than the maximum.
    #[error("This password is too long. It may contain at most {MAX_PASSWORD_LEN} characters.")]
    PasswordTooLong,
    /// The password is all digits.
    #[error("This password is entirely numeric.")]
    PasswordNumeric,
    /// The password is on the list of common passwords.
    #[error("This password is too common.")]
    PasswordCommon,
    /// The password is too much like the username.
    #[error("The password is too similar to the username.")]
    PasswordLikeUsername,
    /// The two password entries differ.
    #[error("The two password fields didn't match.")]
    PasswordMismatch,
}

impl ValidationError {
    /// Whether the error is about the username (else about a password).
    pub fn is_about_username(&self) -> bool {
        matches!(self, Self::Username | Self::UsernameTaken)
    }
}

/// Checks a username, already trimmed: letters, digits and `@.+-_`.
pub fn validate_username(username: &str) -> Result<(), ValidationError> {
    let length_ok = (1..=MAX_USERNAME_LEN).contains(&username.chars().count());
    let chars_ok = username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
    if length_ok && chars_ok {
        Ok(())
    } else {
        Err(ValidationError::Username)
    }
}

/// Checks a new password for `username`; returns every rule it breaks.
pub fn validate_password(password: &str, username: &str) -> Vec<ValidationError> {
    let length = password.chars().count();
    if length > MAX_PASSWORD_LEN {
        // Nothing else is worth computing on a password this long.
        return vec![ValidationError::PasswordTooLong];
    }
    let mut errors = Vec::new();
    if is_too_similar(password, username) {
        errors.push(ValidationError::PasswordLikeUsername);
    }
    if length < MIN_PASSWORD_LEN {
        errors.push(ValidationError::PasswordTooShort);
    }
    if COMMON_PASSWORDS.contains(password.trim().to_lowercase().as_str()) {
        errors.push(ValidationError::PasswordCommon);
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        errors.push(ValidationError::PasswordNumeric);
    }
    errors
}

/// Whether the password is too much like the username or a part of it
/// (`john.smith` has parts `john` and `smith`).
fn is_too_similar(password: &str, username: &str) -> bool {
    let password = password.to_lowercase();
    let username = username.to_lowercase();
    std::iter::once(username.as_str())
        .chain(username.split(|c: char| !c.is_alphanumeric()))
        .filter(|part| part.chars().count() >= 3)
        .any(|part| similarity(&password, part) >= MAX_SIMILARITY)
}

/// `2 × (longest common subsequence) / (total length)`, in 0..=1: an upper
/// bound of the ratio Python's `difflib` computes for Django.
fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut previous = vec![0usize; b.len() + 1];
    for x in &a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        previous = current;
    }
    let common = previous[b.len()] as f64;
    2.0 * common / (a.len() + b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_take_letters_digits_and_a_few_symbols() {
        for ok in ["alice", "Ünal", "a.b+c-d_e@f", "007"] {
            assert_eq!(validate_username(ok), Ok(()), "{ok}");
        }
        for bad in ["", "has space", "<script>", "semi;colon", &"a".repeat(151)] {
            assert_eq!(
                validate_username(bad),
                Err(ValidationError::Username),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_password_rule_has_its_error() {
        use ValidationError::*;
        assert_eq!(validate_password("x7#kQ!", "bob"), [PasswordTooShort]);
        assert_eq!(validate_password("password", "bob"), [PasswordCommon]);
        assert_eq!(validate_password("90218374650", "bob"), [PasswordNumeric]);
        assert_eq!(
            validate_password("alice1234", "alice"),
            [PasswordLikeUsername]
        );
        assert_eq!(
            validate_password("Xjohnsmith!", "john.smith"),
            [PasswordLikeUsername]
        );
        assert_eq!(
            validate_password(&"x".repeat(5000), "bob"),
            [PasswordTooLong]
        );
        assert!(validate_password("correct horse battery staple", "alice").is_empty());
    }

    #[test]
    fn the_common_password_list_is_real() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        assert!(COMMON_PASSWORDS.contains("qwerty"));
    }
}
