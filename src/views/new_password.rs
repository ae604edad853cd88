//! A new password, typed twice: the two fields the password change and the
//! password reset forms share (Django's `SetPasswordForm`). The form field
//! names are fixed by the HTTP contract.

use std::sync::Arc;

use serde::Deserialize;

use crate::{
    auth::{
        AuthContext, User,
        user_fields::FieldErrors,
        user_manager::{self, AccountError},
        validators::{ValidationError, validate_password},
    },
    errors::AppError,
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

    /// The new password checked and hashed for `user`, on the hashing
    /// threads with no connection held. The outer error is the full
    /// hashing queue (`503`); the inner one what the checks found.
    pub async fn hash_for(
        self,
        auth: &AuthContext,
        user: &User,
    ) -> Result<Result<String, AccountError>, AppError> {
        let (hasher, user) = (Arc::clone(auth.hasher()), user.clone());
        let password = self.new_password1;
        Ok(auth
            .hashing()
            .run(move || user_manager::prepare_password(&hasher, &user, &password))
            .await?)
    }
}
