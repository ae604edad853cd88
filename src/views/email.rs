//! The user's e-mail address: changing it and confirming it (what Django
//! leaves to django-allauth's `EmailView` and `ConfirmEmailView`).
//!
//! `POST /email` asks for the password (whoever holds a session should not
//! be able to take the account's mail, and with it password resets), then
//! mails a confirmation link to the new address and a notice to the old
//! one; the address changes only when the link is followed, at
//! `GET /email/confirm/{uid}/{token}`.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        AuthContext, CurrentUser, User,
        audit::{self, EventKind, NewEvent, Origin},
        email_address::{self, EmailError, email_key, normalize_email, validate_email},
        models,
        throttle::Throttle,
        tokens::{TokenGenerator, decode_uid, encode_uid},
        user_manager::{self, AccountError, NewAccount},
    },
    csrf::CsrfToken,
    db::{DbError, transaction, with_conn},
    errors::AppError,
    mail::{Letters, MailError, Outbox, outbox},
    paths,
    views::{
        Mailing,
        password_reset::{invalid_link, keep_link_private},
        render, see_other,
        site_header::SiteHeader,
        throttled,
    },
};

#[derive(Template)]
#[template(path = "email.html")]
struct EmailPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    current: Option<&'a str>,
    confirmed: bool,
    pending: Option<&'a str>,
    email: &'a str,
    email_error: Option<String>,
    password_error: Option<&'static str>,
}

impl<'a> EmailPage<'a> {
    fn new(header: SiteHeader, user: &'a User, csrf: &CsrfToken) -> Self {
        Self {
            header,
            csrf_token: csrf.form_value(),
            current: user.email.as_deref(),
            confirmed: user.email_confirmed,
            pending: user.new_email.as_deref(),
            email: "",
            email_error: None,
            password_error: None,
        }
    }
}

/// `GET /email`, behind `login_required`: the address and the form.
pub async fn form(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    render(&EmailPage::new(header, &user, &csrf))
}

/// What the form posts.
#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The path of the confirmation link for the address `user` waits to confirm.
pub fn confirmation_path(tokens: &TokenGenerator, user: &User) -> String {
    format!(
        "{}/{}/{}",
        paths::EMAIL_CONFIRM,
        encode_uid(user.id),
        tokens.confirmation_token(user)
    )
}

/// `POST /email`: checks the password, then mails a confirmation link to
/// the new address and a notice to the old one.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn submit(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    form: web::Form<EmailForm>,
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
    let EmailForm { email, password } = form.into_inner();
    let email = normalize_email(&email);
    let failed = |email_error: Option<String>, password_error| {
        render(&EmailPage {
            email: &email,
            email_error,
            password_error,
            ..EmailPage::new(header.clone(), &user, &csrf)
        })
    };
    if let Err(err) = validate_email(&email) {
        return failed(Some(err.to_string()), None);
    }
    let already_confirmed = user.email_confirmed
        && user
            .email
            .as_deref()
            .is_some_and(|current| email_key(current) == email_key(&email));
    if already_confirmed {
        return failed(Some("This is already your address.".into()), None);
    }

    // The password check is an oracle: throttled per user, as on /password.
    if !throttled::check_own_password(&auth, &throttle, &user, password).await? {
        return failed(
            None,
            Some("Your password was entered incorrectly. Please enter it again."),
        );
    }

    let (tokens, letters) = (tokens.into_inner(), letters.into_inner());
    let (user_id, new_address, current) = (user.id, email.clone(), user.email.clone());
    let event = NewEvent::new(EventKind::EmailChangeRequested, Origin::of(&req)).by_user(user_id);
    let queued = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            if email_address::taken_by_another(conn, &new_address, user_id)? {
                return Ok(Err(EmailError::Taken));
            }
            let resend = current
                .as_deref()
                .is_some_and(|current| email_key(current) == email_key(&new_address));
            if !resend {
                email_address::request_change(conn, user_id, &new_address)?;
                audit::record(conn, &event)?;
            }
            // The token signs the state it confirms: read it back.
            let user = models::find_by_id(conn, user_id)?.ok_or(diesel::result::Error::NotFound)?;
            let path = confirmation_path(&tokens, &user);
            outbox::enqueue(
                conn,
                &letters.confirm_address(&new_address, &user.username, &path)?,
            )?;
            if let (false, Some(old)) = (resend, user.confirmed_email()) {
                outbox::enqueue(
                    conn,
                    &letters.address_change_requested(old, &user.username, &new_address)?,
                )?;
            }
            Ok::<_, MailError>(Ok(()))
        })
    })
    .await?;
    if let Err(err) = queued {
        return failed(Some(err.to_string()), None);
    }
    outbox.wake();
    FlashMessage::info(format!(
        "We sent a confirmation link to {email}. Your address changes when you follow it."
    ))
    .send();
    Ok(see_other(paths::PROFILE))
}

/// `GET /email/confirm/{uid}/{token}`: confirms the address the link was
/// sent to.
pub async fn confirm(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    auth: web::Data<AuthContext>,
    tokens: web::Data<TokenGenerator>,
    header: SiteHeader,
) -> Result<HttpResponse, AppError> {
    let (uid, token) = path.into_inner();
    let user = match decode_uid(&uid) {
        Some(id) => {
            with_conn(auth.pool(), move |conn| {
                models::find_by_id(conn, id).map_err(DbError::from)
            })
            .await?
        }
        None => None,
    };
    let confirming = user.and_then(|user| {
        let address = user.new_email.clone().or_else(|| user.email.clone())?;
        (user.is_active && tokens.check_confirmation_token(&user, &token))
            .then_some((user.id, address))
    });
    let Some((user_id, address)) = confirming else {
        return invalid_link(
            header,
            "Confirmation unsuccessful",
            "This confirmation link is invalid: it was already used, a newer one was sent, \
             or it expired. Sign in and ask for a new one from your profile.",
            Some((paths::EMAIL, "Your email address")),
        )
        .map(keep_link_private);
    };
    let shown = address.clone();
    let event = NewEvent::new(EventKind::EmailConfirmed, Origin::of(&req)).by_user(user_id);
    let outcome = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            let outcome = email_address::confirm(conn, user_id, &address)?;
            if outcome.is_ok() {
                audit::record(conn, &event)?;
            }
            diesel::QueryResult::Ok(outcome)
        })
        .map_err(DbError::from)
    })
    .await?;
    if let Err(err) = outcome {
        return invalid_link(header, "Confirmation unsuccessful", &err.to_string(), None)
            .map(keep_link_private);
    }
    FlashMessage::success(format!("Your email address {shown} is confirmed.")).send();
    Ok(keep_link_private(see_other(paths::PROFILE)))
}

/// Why a sign-up did not create an account.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// The username or password was refused, or the database failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Another account has the address.
    #[error("the address is taken")]
    EmailTaken,
    /// The confirmation mail could not be queued.
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<diesel::result::Error> for SignupError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Account(err.into())
    }
}

impl From<DbError> for SignupError {
    fn from(err: DbError) -> Self {
        Self::Account(err.into())
    }
}

/// Creates the account of a sign-up and, when an address was given, stores
/// it unconfirmed and queues its confirmation link, all in one
/// transaction: no account without its mail, nor a mail for an account
/// that was not made. Blocking.
pub fn create_account(
    conn: &mut crate::db::DbConnection,
    account: &NewAccount,
    tokens: &TokenGenerator,
    letters: &Letters,
) -> Result<User, SignupError> {
    transaction(conn, |conn| {
        let user = user_manager::insert_user(conn, account)?;
        let Some(email) = account.fields().email() else {
            return Ok(user);
        };
        if email_address::set_unconfirmed(conn, user.id, email)?.is_err() {
            return Err(SignupError::EmailTaken);
        }
        let user = models::find_by_id(conn, user.id)?.ok_or(diesel::result::Error::NotFound)?;
        let mail = letters
            .confirm_address(email, &user.username, &confirmation_path(tokens, &user))
            .map_err(MailError::from)?;
        outbox::enqueue(conn, &mail)?;
        Ok(user)
    })
}

/// Queues the "new sign-in" notice after a login from a browser that had
/// no device cookie for this user, if they have a confirmed address. A
/// notice that cannot be queued is logged, not shown: the login itself
/// succeeded.
pub async fn notify_new_device(
    req: &actix_web::HttpRequest,
    auth: &AuthContext,
    outbox: &Outbox,
    letters: &Letters,
    user: &User,
) {
    let Some(to) = user.confirmed_email() else {
        return;
    };
    let browser: String = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .unwrap_or("unknown")
        .chars()
        .take(200)
        .collect();
    let when = crate::views::display_time(&crate::db::now());
    let address = crate::client_ip::client_ip_text(req);
    let mail = match letters.new_device(to, &user.username, &when, &address, &browser) {
        Ok(mail) => mail,
        Err(err) => {
            tracing::warn!(error = %err, "the new-device notice could not be written");
            return;
        }
    };
    let queued = with_conn(auth.pool(), move |conn| {
        outbox::enqueue(conn, &mail).map_err(MailError::from)
    })
    .await;
    match queued {
        Ok(()) => outbox.wake(),
        Err(err) => tracing::warn!(error = %err, "the new-device notice could not be queued"),
    }
}
