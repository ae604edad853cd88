//! `GET /`: who is signed in, or a link to sign in.

use actix_web::{HttpResponse, web};
use actix_web_flash_messages::IncomingFlashMessages;
use askama::Template;

use crate::{
    auth::{LazyUser, User},
    errors::AppError,
    settings::Settings,
    views::{Message, messages, render, site_header::SiteHeader},
};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    header: SiteHeader,
    user: Option<User>,
    messages: Vec<Message>,
    debug: bool,
}

/// The home page. For an anonymous visitor it runs no query: the lazy user
/// finds no claim in the session and never reaches the database.
pub async fn home(
    user: LazyUser,
    header: SiteHeader,
    incoming: IncomingFlashMessages,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    // Already loaded for the header: no second query.
    let user = user.get().await?;
    render(&HomePage {
        header,
        user,
        messages: messages(&incoming),
        debug: settings.debug,
    })
}
