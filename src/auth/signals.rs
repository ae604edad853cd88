//! Login events: Django's `user_logged_in`, `user_login_failed` and
//! `user_logged_out` signals.
//!
//! Every event is logged as a structured tracing event (the user id, never
//! a password or a session key). A fork that wants to react (audit rows,
//! e-mails, metrics) implements [`AuthListener`] and passes it to
//! [`AppState::with_auth_listener`](crate::startup::AppState::with_auth_listener).

use actix_web::HttpRequest;

/// Something that happened in the dance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEvent<'a> {
    /// A user signed in.
    LoggedIn {
        /// Their id.
        user_id: i32,
        /// The backend that authenticated them.
        backend: &'a str,
    },
    /// Credentials were refused. The username is as typed: it may be a
    /// password typed into the wrong field, so it is not logged.
    LoginFailed {
        /// The username as typed.
        username: &'a str,
    },
    /// A visitor signed out.
    LoggedOut {
        /// Their id, if they were signed in.
        user_id: Option<i32>,
    },
}

/// A receiver of [`AuthEvent`]s. Called on the request's worker: keep it
/// quick, and hand slow work to a task.
pub trait AuthListener: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &AuthEvent<'_>, req: &HttpRequest);
}

/// Logs an event as a structured tracing event.
pub fn log_event(event: &AuthEvent<'_>) {
    match event {
        AuthEvent::LoggedIn { user_id, backend } => {
            tracing::info!(
                event = "user_logged_in",
                user.id = user_id,
                backend,
                "user logged in"
            );
        }
        AuthEvent::LoginFailed { .. } => {
            tracing::info!(event = "user_login_failed", "login failed");
        }
        AuthEvent::LoggedOut { user_id } => {
            tracing::info!(
                event = "user_logged_out",
                user.id = user_id,
                "user logged out"
            );
        }
    }
}
