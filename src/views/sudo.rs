//! `/sudo`: proving it again before a sensitive action, when the sign-in is
//! older than `SUDO_TTL` (see [`crate::auth::recent_login`]).
//! The password, a TOTP or recovery code, or a passkey will do.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        AuthContext, CurrentUser, recent_login, redirects::safe_next_or, throttle::Throttle, totp,
        two_factor::Factors,
    },
    csrf::CsrfToken,
    db::{DbError, with_conn},
    errors::AppError,
    paths,
    views::{
        accounts::NextQuery,
        render,
        second_factor::{begin_verify, check_second_factor},
        see_other,
        site_header::SiteHeader,
        throttled::check_own_password,
    },
};

#[derive(Template)]
#[template(path = "sudo.html")]
struct SudoPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    next: Option<&'a str>,
    error: Option<&'a str>,
    has_totp: bool,
    has_passkeys: bool,
}

/// Which factors besides the password the user can answer with.
async fn factors_of(auth: &AuthContext, user_id: i32) -> Result<(bool, bool), AppError> {
    Ok(with_conn(auth.pool(), move |conn| {
        Ok::<_, DbError>((
            totp::find_confirmed(conn, user_id)?.is_some(),
            !crate::auth::passkeys::list(conn, user_id)?.is_empty(),
        ))
    })
    .await?)
}

/// `GET /sudo`: the form.
pub async fn form(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    query: web::Query<NextQuery>,
    auth: web::Data<AuthContext>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let (has_totp, has_passkeys) = factors_of(&auth, user.id).await?;
    render(&SudoPage {
        header,
        csrf_token: csrf.form_value(),
        next: query.next(),
        error: None,
        has_totp,
        has_passkeys,
    })
}

/// What the form posts: one of `password`, `code` or a passkey answer.
#[derive(Deserialize)]
pub struct SudoForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    passkey_credential: String,
    next: Option<String>,
}

/// `POST /sudo`: checks the proof, stamps the session, and goes back to a
/// safe `next`.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn submit(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    form: web::Form<SudoForm>,
    auth: web::Data<AuthContext>,
    throttle: web::Data<Throttle>,
    factors: web::Data<Factors>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let SudoForm {
        password,
        code,
        passkey_credential,
        next,
    } = form.into_inner();
    let ok = if !password.is_empty() {
        check_own_password(&auth, &throttle, &user, password).await?
    } else if !code.is_empty() || !passkey_credential.is_empty() {
        check_second_factor(
            &req,
            &auth,
            &throttle,
            &factors,
            &user,
            code,
            passkey_credential,
        )
        .await?
    } else {
        false
    };
    if !ok {
        let (has_totp, has_passkeys) = factors_of(&auth, user.id).await?;
        return render(&SudoPage {
            header: SiteHeader::for_request(&req).await?,
            csrf_token: csrf.form_value(),
            next: next.as_deref(),
            error: Some("That did not match. Please try again."),
            has_totp,
            has_passkeys,
        });
    }
    recent_login::stamp(&req.get_session()).map_err(|err| AppError::Unexpected(err.into()))?;
    Ok(see_other(safe_next_or(next.as_deref(), paths::SECURITY)))
}

/// `POST /sudo/passkey`: starts a passkey ceremony to answer `/sudo` with.
pub async fn passkey_begin(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    begin_verify(&req, &auth, &factors, user.id).await
}
