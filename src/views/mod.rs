//! The pages: Django's views, one file per group, each with its askama
//! template struct. Views use the dance (`auth`) and the session API; they
//! never write SQL.

pub mod accounts;
pub mod debug;
pub mod email;
pub mod health;
pub mod home;
pub mod password_reset;
pub mod site_header;
pub mod static_files;
pub mod your_sessions;

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::header, web};
use actix_web_flash_messages::{IncomingFlashMessages, Level};
use askama::Template;
use futures_util::future::{Ready, ready};
use time::{PrimitiveDateTime, macros::format_description};

use crate::{
    auth::tokens::TokenGenerator,
    errors::AppError,
    mail::{Letters, Outbox},
};

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

/// What the pages that send mail need, as one extractor: the signed tokens
/// of mailed links, the letters (templates with the site's address) and the
/// outbox they are queued in.
pub struct Mailing {
    /// Makes and checks the tokens of mailed links.
    pub tokens: web::Data<TokenGenerator>,
    /// Queues mail, in the transaction of the change it reports.
    pub outbox: web::Data<Outbox>,
    /// Writes the mails.
    pub letters: web::Data<Letters>,
}

impl FromRequest for Mailing {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mailing = (|| {
            Some(Self {
                tokens: req.app_data::<web::Data<TokenGenerator>>()?.clone(),
                outbox: req.app_data::<web::Data<Outbox>>()?.clone(),
                letters: req.app_data::<web::Data<Letters>>()?.clone(),
            })
        })();
        ready(mailing.ok_or_else(|| {
            AppError::unexpected("the mail app data (tokens, outbox, letters) is not registered")
                .into()
        }))
    }
}
