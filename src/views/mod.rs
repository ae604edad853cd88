//! The pages: Django's views, one file per group, each with its askama
//! template struct. Views use the dance (`auth`) and the session API; they
//! never write SQL.

pub mod accounts;
pub mod debug;
pub mod email;
pub mod health;
pub mod home;
pub mod new_password;
pub mod password_reset;
pub mod second_factor;
pub mod security;
pub mod site_header;
pub mod staff;
pub mod static_files;
pub mod sudo;
pub mod throttled;
pub mod your_sessions;

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::header, web};
use actix_web_flash_messages::{IncomingFlashMessages, Level};
use askama::Template;
use futures_util::future::{Ready, ready};
use time::{OffsetDateTime, PrimitiveDateTime, macros::format_description};

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

/// A UTC timestamp as a page shows it: how long ago in words ("5 minutes
/// ago"), the exact time (for the `title`, shown on hover) and the
/// machine-readable one (for `<time datetime>`).
#[derive(Debug, Clone)]
pub struct TimeAgo {
    /// "just now", "5 minutes ago", "3 days ago", or the date when older.
    pub words: String,
    /// `2026-11-25 17:19 UTC`.
    pub exact: String,
    /// `2026-11-25T17:19:00Z`.
    pub datetime: String,
}

impl TimeAgo {
    /// `at`, seen from `now`.
    pub fn new(at: &PrimitiveDateTime, now: OffsetDateTime) -> Self {
        let at_utc = at.assume_utc();
        // A clock a little behind another instance's reads as "just now".
        let seconds = (now - at_utc).whole_seconds().max(0);
        let ago = |count: i64, unit: &str| {
            format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
        };
        let words = match seconds {
            0..60 => "just now".to_owned(),
            60..3_600 => ago(seconds / 60, "minute"),
            3_600..86_400 => ago(seconds / 3_600, "hour"),
            86_400..2_592_000 => ago(seconds / 86_400, "day"),
            _ => at
                .format(format_description!("[year]-[month]-[day]"))
                .unwrap_or_else(|_| at.to_string()),
        };
        Self {
            words,
            exact: display_time(at),
            datetime: at
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                ))
                .unwrap_or_else(|_| at.to_string()),
        }
    }
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

#[cfg(test)]
mod tests {
    use time::{Duration, macros::datetime};

    use super::TimeAgo;

    #[test]
    fn times_read_as_how_long_ago_with_the_exact_time_beside() {
        let now = datetime!(2026-11-25 17:19:30 UTC);
        let words = |ago: Duration| {
            let at = now - ago;
            TimeAgo::new(&time::PrimitiveDateTime::new(at.date(), at.time()), now).words
        };
        assert_eq!(words(Duration::seconds(59)), "just now");
        assert_eq!(words(Duration::seconds(-30)), "just now", "a clock ahead");
        assert_eq!(words(Duration::minutes(1)), "1 minute ago");
        assert_eq!(words(Duration::minutes(59)), "59 minutes ago");
        assert_eq!(words(Duration::hours(2)), "2 hours ago");
        assert_eq!(words(Duration::days(1)), "1 day ago");
        assert_eq!(words(Duration::days(29)), "29 days ago");
        assert_eq!(words(Duration::days(40)), "2026-10-16");

        let at = datetime!(2026-11-25 17:19:00);
        let shown = TimeAgo::new(&at, now);
        assert_eq!(shown.exact, "2026-11-25 17:19 UTC");
        assert_eq!(shown.datetime, "2026-11-25T17:19:00Z");
    }
}
