//! Signing in and out, and the profile page: Django's `LoginView`,
//! `LogoutView` and a `@login_required` view.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        self, AuthContext, Credentials, CurrentUser, redirects::safe_next_or,
        validators::MAX_USERNAME_LEN,
    },
    csrf::CsrfToken,
    errors::AppError,
    urls,
    views::{display_time, render},
};

/// Django's `AuthenticationForm` error: the same words whether the username
/// or the password was wrong, so the page does not reveal which users exist.
pub const INVALID_LOGIN: &str =
    "Please enter a correct username and password. Note that both fields may be case-sensitive.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf_token: String,
    username: &'a str,
    next: Option<&'a str>,
    error: Option<&'a str>,
}

/// The `next` query parameter.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /login`: the form.
pub async fn login_form(
    query: web::Query<NextQuery>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    render(&LoginPage {
        csrf_token: csrf.form_value(),
        username: "",
        next: query.next.as_deref(),
        error: None,
    })
}

/// What the login form posts. Missing fields read as empty, so that they
/// get the form's own message rather than an error page.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: steps 3 and 4 of the dance, `authenticate` then `login`.
pub async fn login_submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    auth: web::Data<AuthContext>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let LoginForm {
        username,
        password,
        next,
    } = form.into_inner();
    let username = username.trim();
    let failed = |error| {
        render(&LoginPage {
            csrf_token: csrf.form_value(),
            username,
            next: next.as_deref(),
            error: Some(error),
        })
    };
    if username.is_empty() || password.is_empty() {
        return failed("Enter both your username and your password.");
    }
    if username.chars().count() > MAX_USERNAME_LEN {
        // No such user can exist; still the same words as any failure.
        return failed(INVALID_LOGIN);
    }

    let credentials = Credentials {
        username: username.to_owned(),
        password,
    };
    let Some(authenticated) = auth::authenticate(&auth, credentials).await? else {
        tracing::info!("login failed");
        return failed(INVALID_LOGIN);
    };
    auth::login(&req, &auth, &authenticated).await?;
    Ok(see_other(safe_next_or(next.as_deref(), urls::PROFILE)))
}

/// `POST /logout`: ends the session, server side and cookie.
pub async fn logout(req: HttpRequest) -> HttpResponse {
    auth::logout(&req).await;
    see_other(urls::HOME)
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    username: &'a str,
    date_joined: String,
    last_login: Option<String>,
    csrf_token: String,
}

/// `GET /profile`, behind `login_required`.
pub async fn profile(
    CurrentUser(user): CurrentUser,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    render(&ProfilePage {
        username: &user.username,
        date_joined: display_time(&user.date_joined),
        last_login: user.last_login.as_ref().map(display_time),
        csrf_token: csrf.form_value(),
    })
}

/// `303 See Other` to `location`: after a POST, the browser GETs it.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
