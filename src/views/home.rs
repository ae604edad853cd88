//! `GET /`: who is signed in, or a link to sign in.

use actix_web::{HttpResponse, web};
use actix_web_flash_messages::IncomingFlashMessages;
use askama::Template;

use crate::{
    auth::{LazyUser, User},
    csrf::CsrfToken,
    errors::AppError,
    settings::Settings,
    views::{Message, messages, render},
};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<User>,
    /// Whether the header links to the staff area.
    staff: bool,
    csrf_token: String,
    messages: Vec<Message>,
    debug: bool,
}

/// The home page. For an anonymous visitor it runs no query: the lazy user
/// finds no claim in the session and never reaches the database.
pub async fn home(
    user: LazyUser,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    let user = user.get().await?;
    // Only the sign-out button needs a token; anonymous pages set no cookie.
    let csrf_token = if user.is_some() {
        csrf.form_value()
    } else {
        String::new()
    };
    render(&HomePage {
        staff: user.as_ref().is_some_and(|user| user.is_staff),
        user,
        csrf_token,
        messages: messages(&incoming),
        debug: settings.debug,
    })
}
