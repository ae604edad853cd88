//! What a username and a password must be: Django's `UnicodeUsernameValidator`
//! and the length bounds of its password validators.

use thiserror::Error;

/// Longest username accepted, as Django's `User.username`.
pub const MAX_USERNAME_LEN: usize = 150;
/// Shortest password accepted, as Django's `MinimumLengthValidator`.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted, so that huge inputs cannot be used to burn CPU.
pub const MAX_PASSWORD_LEN: usize = 4096;

/// Why a username or password was refused, in words for the person typing it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValidationError {
    /// The username is empty, too long, or has characters outside the set.
    #[error(
        "A username has 1 to {MAX_USERNAME_LEN} characters: letters, digits and @ . + - _ only."
    )]
    Username,
    /// The password is shorter than the minimum.
    #[error("This password is too short. It must contain at least {MIN_PASSWORD_LEN} characters.")]
    PasswordTooShort,
    /// The password is longer than the maximum.
    #[error("This password is too long. It may contain at most {MAX_PASSWORD_LEN} characters.")]
    PasswordTooLong,
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

/// Checks a new password's length.
pub fn validate_password(password: &str) -> Result<(), ValidationError> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_LEN => Err(ValidationError::PasswordTooShort),
        n if n > MAX_PASSWORD_LEN => Err(ValidationError::PasswordTooLong),
        _ => Ok(()),
    }
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
    fn passwords_have_bounds() {
        assert_eq!(
            validate_password("short"),
            Err(ValidationError::PasswordTooShort)
        );
        assert_eq!(
            validate_password(&"x".repeat(5000)),
            Err(ValidationError::PasswordTooLong)
        );
        assert_eq!(validate_password("long enough"), Ok(()));
    }
}
