//! A new password, typed twice: the two fields the password change and the
//! password reset forms share (Django's `SetPasswordForm`). The form field
//! names are fixed by the HTTP contract.

use serde::Deserialize;

use crate::auth::{
    user_fields::FieldErrors,
    validators::{ValidationError, validate_password},
};

/// What both forms post for the new password.
#[derive(Deserialize)]
pub struct NewPassword {
    /// The new password.
    #[serde(default)]
    pub new_password1: String,
    /// The same again.
    #[serde(default)]
    pub new_password2: String,
}

impl NewPassword {
    /// Every problem with the new password for the user `username`, filed
    /// under `password1`, and a mismatch under `password2`, as the
    /// templates show them.
    pub fn check(&self, username: &str) -> FieldErrors {
        let mut errors = FieldErrors::default();
        errors.add_validation(validate_password(&self.new_password1, username));
        if self.new_password1 != self.new_password2 {
            errors.add_validation([ValidationError::PasswordMismatch]);
        }
        errors
    }
}
