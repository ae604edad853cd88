//! Porter's integration tests: one binary, one file per behaviour.
//!
//! Every test drives the real app (built by `startup::build_app`, the
//! function `main` serves) through actix-web's test client, on a fresh
//! SQLite database of its own.

mod bad_input;
mod cli;
mod csrf;
mod dance;
mod flash_and_events;
mod hardening;
mod health;
mod helpers;
mod login_failures;
mod next_redirect;
mod password_change;
mod remember_me;
mod sessions;
mod signup;
mod throttle;
mod your_sessions;
