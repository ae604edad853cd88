//! E-mail: Django's `django.core.mail` and its `EMAIL_BACKEND`s, with an
//! outbox so that no mail is lost.
//!
//! | job | here | Django |
//! | --- | ---- | ------ |
//! | what a mail says, in text and HTML | [`letters`] (askama templates in `templates/mail/`) | `PasswordResetForm.send_mail`, `email_template_name` |
//! | where mail goes: `console:`, `file:///dir`, `smtp://…`, `smtps://…` | [`backend`] (`EMAIL_URL`, `EMAIL_FROM`) | `EMAIL_BACKEND`, `EMAIL_HOST`…, `DEFAULT_FROM_EMAIL` |
//! | mail waiting to be sent, written with the change that caused it | [`outbox`] | (django-mailer's queue) |
//! | the sender: retries with backoff, never on the request path | [`worker`] | (django-mailer's `send_mail` command) |
//!
//! A view never sends: it writes the mail into the `mail_outbox` table in
//! the same database transaction as the change the mail is about (so there
//! is never a changed password without its notice, nor a notice of a change
//! that rolled back), and wakes the worker. The worker claims due rows,
//! sends each, and deletes it once the server took it; a failure is retried
//! later, doubling the wait. A crash or an SMTP outage loses nothing.

pub mod backend;
pub mod letters;
pub mod outbox;
pub mod worker;

use std::fmt;

use thiserror::Error;

use crate::{
    db::{self, DbError},
    errors::AppError,
};

pub use self::{
    backend::{EmailUrl, Mailer},
    letters::Letters,
    worker::{Outbox, RetryPolicy},
};

/// One mail, ready to queue: to one address, in plain text and HTML.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl fmt::Debug for Mail {
    /// The bodies may hold a reset link: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"[redacted]")
            .finish()
    }
}

impl From<MailError> for AppError {
    /// Queueing mail is a database write: an outage is an outage; anything
    /// else is a fault of ours.
    fn from(err: MailError) -> Self {
        if db::is_unavailable(&err) {
            Self::Unavailable(err.into())
        } else {
            Self::Unexpected(err.into())
        }
    }
}

/// Why a mail could not be queued.
#[derive(Debug, Error)]
pub enum MailError {
    /// No connection, or the blocking pool failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query of the transaction failed.
    #[error("a query queueing mail failed")]
    Query(#[from] diesel::result::Error),
    /// A mail template failed to render.
    #[error("a mail template failed to render")]
    Template(#[from] askama::Error),
}
