//! The user's own fields: what a person tells Porter about themselves when
//! an account is made. The sign-up form shows them, `porter createuser`
//! takes them as arguments, the profile page lists them, and the new row
//! is made from them: Django's `UserCreationForm` fields and
//! `REQUIRED_FIELDS`. (The password is the sign-up form's own business:
//! it is typed twice, checked against these fields and hashed; see
//! `views::accounts`.)
//!
//! To add a field, `display_name` say (docs/make-it-yours.md walks it):
//! give it a column (a migration pair, `schema.rs`, `models::User` and
//! `models::NewUser`), then here a field of [`UserFields`], its entry in
//! [`FIELDS`], its check in [`UserFields::clean`] and its column in
//! [`UserFields::new_user`]. Templates and the command line follow.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    email_address::{MAX_EMAIL_LEN, normalize_email, validate_email},
    models::{self, NewUser, User},
    validators::{MAX_USERNAME_LEN, ValidationError, validate_username},
};

/// What a person says about themselves: one entry per field, read from
/// the sign-up form (serde) and from `porter createuser`'s arguments
/// (clap). An optional field left out is empty.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
pub struct UserFields {
    /// The username, to sign in with.
    #[serde(default)]
    #[arg(value_name = "NAME")]
    pub username: String,
    /// An e-mail address, optional; `porter createuser` counts it as
    /// confirmed (the operator vouches for it).
    #[serde(default)]
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "",
        hide_default_value = true
    )]
    pub email: String,
}

/// How the sign-up form asks for a field and the profile page shows it.
#[derive(Debug)]
pub struct UserField {
    /// The form field's name (fixed by the HTTP contract for the first two).
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// A line of help under the input.
    pub help: &'static str,
    /// The input's `type`.
    pub input_type: &'static str,
    /// The input's `autocomplete` token.
    pub autocomplete: &'static str,
    /// The input's `maxlength`.
    pub max_length: usize,
    /// Whether the form refuses to be sent without it.
    pub required: bool,
    /// The field's value in a form as typed.
    pub value: fn(&UserFields) -> &str,
    /// What the profile page shows for it.
    pub shown: fn(&User) -> String,
}

/// The user's own fields, in the order the forms and pages list them.
pub const FIELDS: &[UserField] = &[
    UserField {
        name: "username",
        label: "Username",
        help: "Up to 150 characters: letters, digits and @ . + - _ only.",
        input_type: "text",
        autocomplete: "username",
        max_length: MAX_USERNAME_LEN,
        required: true,
        value: |fields| &fields.username,
        shown: |user| user.username.clone(),
    },
    UserField {
        name: "email",
        label: "Email address",
        help: "We mail it a confirmation link. Without an address, a forgotten password cannot be reset.",
        input_type: "email",
        autocomplete: "email",
        max_length: MAX_EMAIL_LEN,
        required: false,
        value: |fields| &fields.email,
        shown: shown_email,
    },
];

impl UserFields {
    /// Normalises every field in place and checks it: all the problems at
    /// once, by field, so that the form shows them in one round.
    pub fn clean(&mut self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        self.username = models::normalize_username(&self.username);
        errors.add_validation(validate_username(&self.username).err());
        self.email = normalize_email(&self.email);
        if let (false, Err(err)) = (self.email.is_empty(), validate_email(&self.email)) {
            errors.add("email", err);
        }
        errors
    }

    /// The row these fields make (already [`clean`](Self::clean)ed), with
    /// a password hash. The e-mail address is not in it: it is stored
    /// apart, confirmed or not (see `auth::email_address`).
    pub fn new_user<'a>(&'a self, password_hash: &'a str, is_superuser: bool) -> NewUser<'a> {
        NewUser::new(&self.username, password_hash, is_superuser)
    }

    /// The e-mail address, if one was given.
    pub fn email(&self) -> Option<&str> {
        Some(self.email.as_str()).filter(|email| !email.is_empty())
    }
}

/// The e-mail address as the profile shows it: with whether it is
/// confirmed, and a change waiting for confirmation.
fn shown_email(user: &User) -> String {
    let mut shown = match &user.email {
        Some(email) if user.email_confirmed => format!("{email} (confirmed)"),
        Some(email) => format!("{email} (not confirmed: follow the link we mailed to it)"),
        None => "none".to_owned(),
    };
    if let Some(new_email) = &user.new_email {
        shown.push_str(&format!("; changing to {new_email}, once confirmed"));
    }
    shown
}

/// A form's problems, by field name, as the templates show them beside
/// each field.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, Vec<String>>);

impl FieldErrors {
    /// Files a problem under `field`.
    pub fn add(&mut self, field: &'static str, problem: impl ToString) {
        self.0.entry(field).or_default().push(problem.to_string());
    }

    /// Files username and password problems: under `username`, or under
    /// `password2` for a mismatch, or else under `password1`.
    pub fn add_validation(&mut self, errors: impl IntoIterator<Item = ValidationError>) {
        for error in errors {
            let field = match error {
                ValidationError::PasswordMismatch => "password2",
                ref e if e.is_about_username() => "username",
                _ => "password1",
            };
            self.add(field, error);
        }
    }

    /// The problems with `field`.
    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are, for the summary at the top of a form.
    pub fn count(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

impl std::fmt::Display for FieldErrors {
    /// One line: `field: problem; field: problem`, for the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .flat_map(|(field, problems)| problems.iter().map(move |p| format!("{field}: {p}")))
            .collect();
        f.write_str(&lines.join("; "))
    }
}

/// A field of a form as its template shows it: how to ask, what was typed,
/// what is wrong.
#[derive(Debug)]
pub struct FieldView<'a> {
    /// How the field is asked for.
    pub field: &'static UserField,
    /// What was typed (empty on a fresh form).
    pub value: &'a str,
    /// Its problems.
    pub errors: &'a [String],
}

/// [`FIELDS`] as a form shows them, with `fields`' values and `errors`.
pub fn form_view<'a>(fields: &'a UserFields, errors: &'a FieldErrors) -> Vec<FieldView<'a>> {
    FIELDS
        .iter()
        .map(|field| FieldView {
            field,
            value: (field.value)(fields),
            errors: errors.get(field.name),
        })
        .collect()
}

/// [`FIELDS`] as the profile page lists them: label and value.
pub fn profile_view(user: &User) -> Vec<(&'static str, String)> {
    FIELDS
        .iter()
        .map(|field| (field.label, (field.shown)(user)))
        .collect()
}
