//! The other ways through the login page: the second factor after a right
//! password (`/login/verify`, `django-two-factor-auth`'s token step), and
//! signing in with a passkey alone (`/login/passkey`). Both end in the same
//! `login` as the password form (`accounts::complete_login`).

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::{
    auth::{
        self, AuthContext, AuthError, Credentials,
        passkeys::{CEREMONY_FIELD, CREDENTIAL_FIELD, Ceremony, PasskeyError},
        recovery_codes::looks_like_recovery_code,
        second_factor::PendingLogin,
        signals::AuthEvent,
        throttle::{Scope, Throttle},
        totp,
        two_factor::Factors,
    },
    client_ip::client_ip_text,
    csrf::CsrfToken,
    db::{DbError, with_conn},
    errors::AppError,
    metrics::RequestMetrics,
    paths,
    settings::Settings,
    views::{
        Mailing,
        accounts::{SignedIn, complete_login},
        render, see_other,
        site_header::SiteHeader,
        throttled::refused,
    },
};

/// What a wrong code shows: the same for a TOTP code, a recovery code or a
/// passkey that did not check out.
pub const INVALID_CODE: &str =
    "That code is not valid. Check your authenticator app and try again.";

/// A passkey failure as a page: a site without passkeys (`SITE_URL` not a
/// domain) has no such page; a database fault is one; anything else is ours.
pub(crate) fn passkey_error(err: PasskeyError) -> AppError {
    match err {
        PasskeyError::Unavailable => AppError::NotFound,
        PasskeyError::Query(err) => DbError::from(err).into(),
        err => AppError::Unexpected(err.into()),
    }
}

/// Keeps a begun `ceremony` in the session (its finish takes it back) and
/// answers its options as JSON for `passkeys.js`, never cached: the one end
/// of every passkey ceremony's begin.
pub(crate) fn answer_ceremony(
    req: &HttpRequest,
    ceremony: Ceremony,
    options: &impl Serialize,
) -> Result<HttpResponse, AppError> {
    ceremony
        .store(&req.get_session())
        .map_err(|err| AppError::Unexpected(err.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(options))
}

#[derive(Template)]
#[template(path = "login_verify.html")]
struct VerifyPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    error: Option<&'a str>,
    has_passkeys: bool,
}

/// Back to the login form: the half-signed-in state expired, or there
/// never was one.
fn restart() -> HttpResponse {
    FlashMessage::info("Please sign in again: the code was not entered within five minutes.")
        .send();
    see_other(paths::LOGIN)
}

async fn has_passkeys(auth: &AuthContext, user_id: i32) -> Result<bool, DbError> {
    with_conn(auth.pool(), move |conn| {
        auth::passkeys::list(conn, user_id)
            .map(|keys| !keys.is_empty())
            .map_err(DbError::from)
    })
    .await
}

/// `GET /login/verify`: the code form, for a visitor whose password was right.
pub async fn verify_form(
    req: HttpRequest,
    auth: web::Data<AuthContext>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = PendingLogin::read(&req.get_session()) else {
        return Ok(restart());
    };
    render(&VerifyPage {
        header: SiteHeader::for_request(&req).await?,
        csrf_token: csrf.form_value(),
        error: None,
        has_passkeys: has_passkeys(&auth, pending.user_id).await?,
    })
}

/// What the code form posts: a TOTP or recovery `code`, or the browser's
/// answer to a passkey ceremony.
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    code: String,
    #[serde(default, rename = "passkey_credential")]
    passkey: String,
}

/// Checks a second factor for `user`: a passkey answer to the session's
/// ceremony, a recovery code, or a TOTP code. Throttled per user and per
/// address, as passwords are; used by `/login/verify` and `/sudo`.
pub(crate) async fn check_second_factor(
    req: &HttpRequest,
    auth: &AuthContext,
    throttle: &Throttle,
    factors: &Factors,
    user: &auth::User,
    code: String,
    passkey: String,
) -> Result<bool, AppError> {
    let (user_id, username) = (user.id, user.username.clone());
    let factors = factors.clone();
    if !passkey.is_empty() {
        // A signature over a challenge cannot be guessed; nothing to throttle.
        let Some(ceremony) = Ceremony::take(&req.get_session()) else {
            return Ok(false);
        };
        return with_conn(auth.pool(), move |conn| {
            factors
                .passkeys
                .finish_verify(conn, user_id, &passkey, ceremony)
                .map_err(passkey_error)
        })
        .await;
    }
    let address = client_ip_text(req);
    let reservation = throttle
        .reserve(&[
            Scope::CodeForUser(user_id),
            Scope::CodeFromAddress(&address),
        ])
        .await
        .map_err(|err| refused(err, "wrong codes"))?;
    let ok = with_conn(auth.pool(), move |conn| {
        if looks_like_recovery_code(&code) {
            return factors
                .recovery
                .use_code(conn, user_id, &code)
                .map_err(|err| AppError::from(DbError::from(err)));
        }
        let Some(device) = totp::find_confirmed(conn, user_id)
            .map_err(|err| AppError::from(DbError::from(err)))?
        else {
            return Ok(false);
        };
        factors
            .totp
            .verify_and_use(conn, &device, &username, &code)
            .map_err(|err| match err {
                totp::TotpError::Query(err) => DbError::from(err).into(),
                err => AppError::Unexpected(err.into()),
            })
    })
    .await?;
    if ok {
        reservation.succeeded().await?;
    }
    Ok(ok)
}

/// `POST /login/verify`: the second factor; right, and the visitor is
/// signed in (step 4) under a new session key.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn verify_submit(
    req: HttpRequest,
    form: web::Form<VerifyForm>,
    auth: web::Data<AuthContext>,
    settings: web::Data<Settings>,
    throttle: web::Data<Throttle>,
    factors: web::Data<Factors>,
    Mailing {
        outbox, letters, ..
    }: Mailing,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = PendingLogin::read(&req.get_session()) else {
        return Ok(restart());
    };
    let Some(authenticated) = pending.authenticated(&auth).await? else {
        // Deactivated (or the backend removed) meanwhile.
        PendingLogin::clear(&req.get_session());
        return Ok(see_other(paths::LOGIN));
    };
    RequestMetrics::withhold_server_timing();
    let VerifyForm { code, passkey } = form.into_inner();
    let ok = check_second_factor(
        &req,
        &auth,
        &throttle,
        &factors,
        &authenticated.user,
        code,
        passkey,
    )
    .await?;
    if !ok {
        auth.send(
            &AuthEvent::LoginFailed {
                username: &authenticated.user.username,
            },
            &req,
        );
        return render(&VerifyPage {
            header: SiteHeader::for_request(&req).await?,
            csrf_token: csrf.form_value(),
            error: Some(INVALID_CODE),
            has_passkeys: has_passkeys(&auth, pending.user_id).await?,
        });
    }
    PendingLogin::clear(&req.get_session());
    let signed_in = SignedIn {
        authenticated: &authenticated,
        remember_me: pending.remember_me,
        next: pending.next.as_deref(),
    };
    complete_login(
        &req,
        &auth,
        &settings,
        &throttle,
        (&outbox, &letters),
        signed_in,
    )
    .await
}

/// `POST /login/verify/passkey`: starts a passkey ceremony for the
/// half-signed-in user, as their second factor.
pub async fn verify_passkey_begin(
    req: HttpRequest,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = PendingLogin::read(&req.get_session()) else {
        return Ok(restart());
    };
    begin_verify(&req, &auth, &factors, pending.user_id).await
}

/// Starts a [`Ceremony::Verify`] for `user_id` and answers its options.
pub(crate) async fn begin_verify(
    req: &HttpRequest,
    auth: &AuthContext,
    factors: &Factors,
    user_id: i32,
) -> Result<HttpResponse, AppError> {
    let factors = factors.clone();
    let begun = with_conn(auth.pool(), move |conn| {
        factors
            .passkeys
            .begin_verify(conn, user_id)
            .map_err(passkey_error)
    })
    .await?;
    let Some((options, ceremony)) = begun else {
        return Err(AppError::BadRequest(
            "there is no passkey on this account".into(),
        ));
    };
    answer_ceremony(req, ceremony, &options)
}

/// `POST /login/passkey/begin`: starts a sign-in with whichever passkey
/// the browser holds for this site (no username).
pub async fn passkey_begin(
    req: HttpRequest,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let (options, ceremony) = factors.passkeys.begin_sign_in().map_err(passkey_error)?;
    answer_ceremony(&req, ceremony, &options)
}

/// What the passkey sign-in form posts.
#[derive(Deserialize)]
pub struct PasskeySignInForm {
    #[serde(default)]
    passkey_credential: String,
    next: Option<String>,
}

/// `POST /login/passkey`: step 3 through [`PasskeyBackend`], then step 4.
/// A passkey is two factors in one: no code is asked after it.
///
/// [`PasskeyBackend`]: crate::auth::passkeys::PasskeyBackend
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn passkey_submit(
    req: HttpRequest,
    form: web::Form<PasskeySignInForm>,
    auth: web::Data<AuthContext>,
    settings: web::Data<Settings>,
    throttle: web::Data<Throttle>,
    factors: web::Data<Factors>,
    Mailing {
        outbox, letters, ..
    }: Mailing,
) -> Result<HttpResponse, AppError> {
    let PasskeySignInForm {
        passkey_credential,
        next,
    } = form.into_inner();
    let failed = || {
        FlashMessage::error("That passkey could not sign you in. Try again, or use your password.")
            .send();
        Ok(see_other(paths::LOGIN))
    };
    let Some(ceremony) = Ceremony::take(&req.get_session()) else {
        return failed();
    };
    let sealed = factors.passkeys.seal(&ceremony).map_err(passkey_error)?;
    let credentials = Credentials::from_fields([
        (CREDENTIAL_FIELD.to_owned(), passkey_credential),
        (CEREMONY_FIELD.to_owned(), sealed),
    ])
    .map_err(|err| AppError::BadRequest(err.to_string()))?;
    let authenticated = match auth::authenticate(&auth, credentials).await {
        Ok(Some(authenticated)) => authenticated,
        Ok(None) => return failed(),
        Err(AuthError::Hashing(busy)) => return Err(busy.into()),
        Err(err) => return Err(err.into()),
    };
    // Someone half signed in with a password gives way to the passkey.
    PendingLogin::clear(&req.get_session());
    let signed_in = SignedIn {
        authenticated: &authenticated,
        remember_me: false,
        next: next.as_deref(),
    };
    complete_login(
        &req,
        &auth,
        &settings,
        &throttle,
        (&outbox, &letters),
        signed_in,
    )
    .await
}
