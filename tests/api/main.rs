//! Porter's integration tests: one binary, one file per behaviour.
//!
//! Every test drives the real app (built by `startup::build_app`, the
//! function `main` serves) through actix-web's test client, on a fresh
//! database of its own: a SQLite file, or with `PORTER_TEST_DATABASE=postgres`
//! a PostgreSQL database created for the test and dropped after it.

mod backends;
mod bad_input;
mod cli;
mod conformance;
mod csrf;
mod dance;
mod email_address;
mod flash_and_events;
mod hardening;
mod health;
mod helpers;
mod login_failures;
mod mail_delivery;
mod next_redirect;
mod notices;
mod outages;
mod passkeys;
mod password_change;
mod password_reset;
mod permissions;
mod query_counts;
mod remember_me;
mod revocation_seen;
mod route_table;
mod security_log;
mod services;
mod sessions;
mod settings_documented;
mod signup;
mod site_header;
mod smaller_holes;
mod staff;
mod sudo;
mod throttle;
mod throttle_under_load;
mod trace;
mod two_factor;
mod your_sessions;
