//! "Forgot your password?": Django's `PasswordResetView`,
//! `PasswordResetDoneView` and `PasswordResetConfirmView`.
//!
//! 1. `POST /password/reset` with an address queues a mail with a link
//!    (an [`auth::tokens`](crate::auth::tokens) token) and answers exactly
//!    the same, in status, body, headers and time, whether or not an
//!    account has that address: for an unknown one it does the same work
//!    and queues a decoy the worker drops.
//! 2. The link, `/password/reset/{uid}/{token}`, checks the token, moves
//!    it into the session and redirects to
//!    `/password/reset/{uid}/set-password`, so that the token leaves the
//!    address bar (and any `Referer` or history) before a page is shown.
//! 3. The new password is set there: every session of the user ends, their
//!    login throttle is cleared, and they sign in with it. Porter does not
//!    sign them in itself (nor does Django by default): the link may have
//!    been opened on a shared or someone else's device.

use actix_session::SessionExt;
use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderName, HeaderValue},
    web,
};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        AuthContext, User,
        audit::{self, EventKind, NewEvent, Origin},
        email_address::{self, normalize_email, validate_email},
        end_every_session, models, nothing_else,
        throttle::{Scope, Throttle},
        tokens::{TokenGenerator, decode_uid, encode_uid},
        user_fields::FieldErrors,
        user_manager,
    },
    client_ip::client_ip_text,
    csrf::CsrfToken,
    db::{transaction, with_conn},
    errors::AppError,
    mail::{MailError, outbox},
    metrics::RequestMetrics,
    paths,
    sessions::SessionBackend,
    views::{
        Mailing, new_password::NewPassword, render, see_other, site_header::SiteHeader, throttled,
    },
};

/// The session key holding a reset token between the link and the form.
pub const RESET_TOKEN_KEY: &str = "_password_reset_token";

/// What stands in the link for the token once it is in the session.
pub const SET_PASSWORD: &str = "set-password";

#[derive(Template)]
#[template(path = "password_reset.html")]
struct RequestPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    email: &'a str,
    error: Option<String>,
}

/// `GET /password/reset`: the form asking for an address.
pub async fn request_form(header: SiteHeader, csrf: CsrfToken) -> Result<HttpResponse, AppError> {
    render(&RequestPage {
        header,
        csrf_token: csrf.form_value(),
        email: "",
        error: None,
    })
}

/// What the request form posts.
#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
}

/// `POST /password/reset`: queues the mail, if an account has the address,
/// and says the same either way.
pub async fn request_submit(
    req: HttpRequest,
    form: web::Form<RequestForm>,
    auth: web::Data<AuthContext>,
    throttle: web::Data<Throttle>,
    Mailing {
        tokens,
        outbox,
        letters,
    }: Mailing,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    // Timings would tell a mail queued from a decoy.
    RequestMetrics::withhold_server_timing();
    let email = normalize_email(&form.email);
    if let Err(err) = validate_email(&email) {
        return render(&RequestPage {
            header,
            csrf_token: csrf.form_value(),
            email: &email,
            error: Some(err.to_string()),
        });
    }
    let address = client_ip_text(&req);
    // Every request counts, answered or not: the limit is on asking.
    let scopes = [
        Scope::ResetFromAddress(&address),
        Scope::ResetForEmail(&email),
    ];
    drop(throttled::reserve(&throttle, &scopes, "password reset requests").await?);
    let (tokens, letters) = (tokens.into_inner(), letters.into_inner());
    with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            let found = email_address::find_active_by_email(conn, &email)?;
            let (user, to) = match &found {
                Some(user) => (user.clone(), user.email.clone().unwrap_or(email.clone())),
                None => (decoy_user(&email), email.clone()),
            };
            let mail = letters.password_reset(
                &to,
                &user.username,
                &link_path(&user, &tokens.reset_token(&user)),
                tokens.reset_ttl(),
            )?;
            match found {
                Some(_) => outbox::enqueue(conn, &mail)?,
                None => outbox::enqueue_decoy(conn, &mail)?,
            }
            Ok::<_, MailError>(())
        })
    })
    .await?;
    outbox.wake();
    Ok(see_other(paths::PASSWORD_RESET_DONE))
}

/// Someone to write the decoy mail for: as much work as a real user.
fn decoy_user(email: &str) -> User {
    User::unsaved(
        email.split('@').next().unwrap_or(email),
        "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3lkZWNveWRlY295$ZGVjb3lkZWNveWRlY295ZGVjb3lkZWNveWRlY295",
        Some(email),
    )
}

/// The link's path for `user` and `token`.
pub(crate) fn link_path(user: &User, token: &str) -> String {
    format!("{}/{}/{token}", paths::PASSWORD_RESET, encode_uid(user.id))
}

#[derive(Template)]
#[template(path = "password_reset_done.html")]
struct DonePage {
    header: SiteHeader,
    ttl: String,
}

/// `GET /password/reset/done`: "check your mail", whatever the address.
pub async fn done(
    tokens: web::Data<TokenGenerator>,
    header: SiteHeader,
) -> Result<HttpResponse, AppError> {
    let minutes = tokens.reset_ttl().as_secs().div_ceil(60);
    render(&DonePage {
        header,
        ttl: if minutes.is_multiple_of(60) {
            let hours = minutes / 60;
            format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
        } else {
            format!("{minutes} minutes")
        },
    })
}

#[derive(Template)]
#[template(path = "link_invalid.html")]
struct InvalidLinkPage<'a> {
    header: SiteHeader,
    title: &'a str,
    message: &'a str,
    retry: Option<(&'a str, &'a str)>,
}

/// The page for a link that does not (or no longer) work.
pub fn invalid_link(
    header: SiteHeader,
    title: &str,
    message: &str,
    retry: Option<(&str, &str)>,
) -> Result<HttpResponse, AppError> {
    render(&InvalidLinkPage {
        header,
        title,
        message,
        retry,
    })
}

fn invalid_reset_link(header: SiteHeader) -> Result<HttpResponse, AppError> {
    invalid_link(
        header,
        "Password reset unsuccessful",
        "The password reset link was invalid, possibly because it has already been used, \
         the password was changed or you signed in since, or it expired. \
         Please request a new one.",
        Some((paths::PASSWORD_RESET, "Request a new link")),
    )
}

/// A response the token must not leak from: no cache keeps it, and no
/// `Referer` carries its address anywhere.
pub fn keep_link_private(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The active user `uid` names, if `token` is a live reset token for them.
async fn user_with_token(
    auth: &AuthContext,
    tokens: &TokenGenerator,
    uid: &str,
    token: &str,
) -> Result<Option<User>, AppError> {
    let Some(id) = decode_uid(uid) else {
        return Ok(None);
    };
    let user = with_conn(auth.pool(), move |conn| {
        models::find_by_id(conn, id).map_err(crate::db::DbError::from)
    })
    .await?;
    Ok(user.filter(|user| user.is_active && tokens.check_reset_token(user, token)))
}

#[derive(Template)]
#[template(path = "password_reset_confirm.html")]
struct SetPasswordPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    action: &'a str,
    errors: FieldErrors,
}

/// `GET /password/reset/{uid}/{token}`: a fresh link moves its token into
/// the session and redirects; the `set-password` address shows the form.
pub async fn link(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    auth: web::Data<AuthContext>,
    tokens: web::Data<TokenGenerator>,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let (uid, token) = path.into_inner();
    let session = req.get_session();
    if token == SET_PASSWORD {
        let stored: Option<String> = session.get(RESET_TOKEN_KEY).unwrap_or_default();
        let valid = match stored {
            Some(stored) => user_with_token(&auth, &tokens, &uid, &stored).await?,
            None => None,
        };
        return match valid {
            Some(_) => render(&SetPasswordPage {
                header,
                csrf_token: csrf.form_value(),
                action: req.path(),
                errors: FieldErrors::default(),
            }),
            None => invalid_reset_link(header),
        }
        .map(keep_link_private);
    }
    if user_with_token(&auth, &tokens, &uid, &token)
        .await?
        .is_none()
    {
        return invalid_reset_link(header).map(keep_link_private);
    }
    session
        .insert(RESET_TOKEN_KEY, &token)
        .map_err(|err| AppError::Unexpected(err.into()))?;
    Ok(keep_link_private(see_other(&format!(
        "{}/{uid}/{SET_PASSWORD}",
        paths::PASSWORD_RESET
    ))))
}

/// `POST /password/reset/{uid}/set-password`: sets the new password.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn set_password(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<NewPassword>,
    auth: web::Data<AuthContext>,
    throttle: web::Data<Throttle>,
    backend: web::Data<SessionBackend>,
    Mailing {
        tokens,
        outbox,
        letters,
    }: Mailing,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let (uid, marker) = path.into_inner();
    let session = req.get_session();
    let stored: Option<String> = session.get(RESET_TOKEN_KEY).unwrap_or_default();
    let user = match (marker == SET_PASSWORD, stored) {
        (true, Some(stored)) => user_with_token(&auth, &tokens, &uid, &stored).await?,
        _ => None,
    };
    let Some(user) = user else {
        return invalid_reset_link(header).map(keep_link_private);
    };
    let new = form.into_inner();
    let mut errors = new.check(&user.username);
    if !errors.is_empty() {
        return render(&SetPasswordPage {
            header,
            csrf_token: csrf.form_value(),
            action: req.path(),
            errors,
        })
        .map(keep_link_private);
    }

    let new_hash = match new.hash_for(&auth, &user).await? {
        Ok(hash) => hash,
        Err(user_manager::AccountError::Invalid(problems)) => {
            errors.add_validation(problems);
            return render(&SetPasswordPage {
                header,
                csrf_token: csrf.form_value(),
                action: req.path(),
                errors,
            })
            .map(keep_link_private);
        }
        Err(err) => return Err(AppError::Unexpected(err.into())),
    };
    let letters = letters.into_inner();
    let changed = user.clone();
    let event = NewEvent::new(EventKind::PasswordReset, Origin::of(&req)).by_user(user.id);
    let replaced = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            // Only if the password is still the one the link was made
            // for: the same link used twice at once resets it once.
            if !models::replace_password_hash(conn, changed.id, &changed.password, &new_hash)? {
                return Ok(false);
            }
            audit::record(conn, &event)?;
            // The link came by mail to this address: its owner reads it.
            email_address::mark_confirmed(conn, changed.id)?;
            if let Some(to) = changed.email.as_deref() {
                outbox::enqueue(conn, &letters.password_changed(to, &changed.username)?)?;
            }
            Ok::<_, MailError>(true)
        })
    })
    .await?;
    if !replaced {
        return invalid_reset_link(header).map(keep_link_private);
    }
    outbox.wake();
    // The new password's auth hash already ends every session on every
    // engine; what the engine keeps on the server goes too, so "your
    // sessions" shows none of them.
    end_every_session(auth.pool(), &backend, user.id, nothing_else()).await?;
    let address = client_ip_text(&req);
    let mut cleared = vec![
        Scope::Account(&user.username),
        Scope::UsernameAtAddress {
            username: &user.username,
            address: &address,
        },
    ];
    if let Some(email) = user.email.as_deref() {
        cleared.push(Scope::ResetForEmail(email));
    }
    throttle.clear(&cleared).await?;
    session.remove(RESET_TOKEN_KEY);
    FlashMessage::success("Your password has been set. You may sign in with it now.").send();
    Ok(keep_link_private(see_other(paths::LOGIN)))
}
