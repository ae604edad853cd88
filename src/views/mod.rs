//! The pages: Django's views, one file per group, each with its askama
//! template struct. Views use the dance (`auth`) and the session API; they
//! never write SQL.

pub mod accounts;
pub mod debug;
pub mod email;
pub mod health;
pub mod home;
pub mod password_reset;
pub mod static_files;
pub mod your_sessions;

use actix_web::{HttpResponse, http::header};
use actix_web_flash_messages::{IncomingFlashMessages, Level};
use askama::Template;
use time::{PrimitiveDateTime, macros::format_description};

use crate::errors::AppError;

/// Renders `template` into a `200 OK` HTML response.
pub fn render(template: &impl Template) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(template.render()?))
}

/// A UTC timestamp as pages show it: `2026-11-25 17:19 UTC`.
pub fn display_time(at: &PrimitiveDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| at.to_string())
}

/// A flash message, ready for a template.
#[derive(Debug, Clone)]
pub struct Message {
    /// `info`, `success`, `warning` or `error`: a CSS class.
    pub level: &'static str,
    /// The text.
    pub text: String,
}

/// The flash messages that arrived with this request.
pub fn messages(incoming: &IncomingFlashMessages) -> Vec<Message> {
    incoming
        .iter()
        .map(|message| Message {
            level: match message.level() {
                Level::Success => "success",
                Level::Warning => "warning",
                Level::Error => "error",
                Level::Debug | Level::Info => "info",
            },
            text: message.content().to_owned(),
        })
        .collect()
}

/// `303 See Other` to `location`: after a POST, the browser GETs it.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
