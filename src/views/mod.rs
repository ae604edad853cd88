//! The pages: Django's views, one file per group, each with its askama
//! template struct. Views use the dance (`auth`); they never touch the
//! session or the database directly.

pub mod accounts;
pub mod health;
pub mod home;
pub mod static_files;

use actix_web::HttpResponse;
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
