//! `/security`: the user's passkeys, two-factor sign-in and recovery
//! codes, the forms that change them, and their recent security activity
//! read from the security log ([`auth::audit`](crate::auth::audit)). What
//! `django-two-factor-auth`'s profile page and `django-otp-webauthn`'s
//! credential list do; Django has no activity page, sites add one so that
//! people notice what they did not do.
//!
//! Adding, removing or turning off a factor sits behind
//! `recent_login_required` (see `urls`); renaming a passkey does not.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use qrcodegen::{QrCode, QrCodeEcc};
use serde::Deserialize;

use crate::{
    auth::{
        AuthContext, CurrentUser, audit,
        passkeys::{self, Ceremony},
        recovery_codes,
        throttle::{Scope, Throttle},
        totp,
        two_factor::Factors,
    },
    client_ip::client_ip_text,
    csrf::CsrfToken,
    db::{DbError, transaction, with_conn},
    errors::AppError,
    paths,
    views::{
        Message, display_time, messages, render,
        second_factor::{answer_ceremony, passkey_error},
        see_other,
        site_header::SiteHeader,
        throttled::refused,
    },
};

/// How many events the page shows.
const RECENT_EVENTS: i64 = 20;

/// One line of the activity list (the staff area shows the same).
pub struct ActivityLine {
    /// What happened, in words.
    pub what: String,
    /// When, as pages show times.
    pub at: String,
    /// From which address.
    pub ip: String,
    /// With which browser.
    pub user_agent: String,
    /// Whether a staff member did it, not the user.
    pub by_staff: bool,
}

impl From<audit::Event> for ActivityLine {
    fn from(event: audit::Event) -> Self {
        Self {
            what: event.describe().to_owned(),
            at: display_time(&event.created_at),
            by_staff: event.by_someone_else(),
            ip: event.ip,
            user_agent: event.user_agent,
        }
    }
}

/// The longest passkey name accepted, in characters.
pub const MAX_PASSKEY_NAME: usize = 64;

/// One passkey, as the page lists it.
struct PasskeyRow {
    id: i32,
    name: String,
    created: String,
    last_used: Option<String>,
}

/// The page: one field per section. To add a section, add a field here,
/// fill it in [`page`] and give it a `<section>` in
/// `templates/security.html`.
#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    header: SiteHeader,
    csrf_token: String,
    messages: Vec<Message>,
    passkeys: Vec<PasskeyRow>,
    totp_enabled: bool,
    recovery_codes_left: i64,
    /// Whether this site can use passkeys (`SITE_URL` is a domain).
    passkeys_available: bool,
    /// The user's latest security events, newest first.
    events: Vec<ActivityLine>,
}

/// `GET /security`, behind `login_required`.
pub async fn page(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    let user_id = user.id;
    let (keys, totp_enabled, recovery_codes_left, events) = with_conn(auth.pool(), move |conn| {
        Ok::<_, DbError>((
            passkeys::list(conn, user_id)?,
            totp::find_confirmed(conn, user_id)?.is_some(),
            recovery_codes::remaining(conn, user_id)?,
            audit::recent_for_user(conn, user_id, RECENT_EVENTS)?,
        ))
    })
    .await?;
    render(&SecurityPage {
        header,
        csrf_token: csrf.form_value(),
        messages: messages(&incoming),
        passkeys: keys
            .into_iter()
            .map(|key| PasskeyRow {
                id: key.id,
                name: key.name,
                created: display_time(&key.created_at),
                last_used: key.last_used_at.as_ref().map(display_time),
            })
            .collect(),
        totp_enabled,
        recovery_codes_left,
        passkeys_available: factors.passkeys.available(),
        events: events.into_iter().map(ActivityLine::from).collect(),
    })
}

/// A QR code of `text` as an SVG drawing: dark squares on a light ground
/// with the standard four-module margin, inline in the page (no image
/// service sees the secret, and the CSP needs no exception).
fn qr_svg(text: &str) -> Result<String, AppError> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|_| AppError::unexpected("the provisioning URI is too long for a QR code"))?;
    let size = qr.size();
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + 4, y + 4));
            }
        }
    }
    let full = size + 8;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {full} {full}\" \
         width=\"{px}\" height=\"{px}\" role=\"img\" aria-label=\"QR code for your authenticator app\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>",
        px = full * 5
    ))
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    qr_svg: String,
    secret: String,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    header: SiteHeader,
    codes: Vec<String>,
}

/// A page of fresh recovery codes: shown once, never stored by a cache.
fn show_codes(header: SiteHeader, codes: Vec<String>) -> Result<HttpResponse, AppError> {
    let mut response = render(&RecoveryCodesPage { header, codes })?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `POST /security/totp/setup`: makes a new secret (unconfirmed) and shows
/// it; refused while two-factor sign-in is on.
pub async fn totp_setup(
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let (user_id, factors) = (user.id, factors.into_inner());
    let stored = with_conn(auth.pool(), move |conn| {
        factors
            .totp
            .store_unconfirmed(conn, user_id, &totp::NewSecret::generate())
            .map_err(totp_error)
    })
    .await?;
    if !stored {
        FlashMessage::info("Two-factor sign-in is already on.").send();
        return Ok(see_other(paths::SECURITY));
    }
    Ok(see_other(paths::SECURITY_TOTP))
}

fn totp_error(err: totp::TotpError) -> AppError {
    match err {
        totp::TotpError::Query(err) => DbError::from(err).into(),
        err => AppError::Unexpected(err.into()),
    }
}

/// The unconfirmed device being set up, if there is one.
async fn device_in_setup(
    auth: &AuthContext,
    user_id: i32,
) -> Result<Option<totp::TotpDevice>, AppError> {
    let device = with_conn(auth.pool(), move |conn| {
        totp::find(conn, user_id).map_err(DbError::from)
    })
    .await?;
    Ok(device.filter(|device| device.confirmed_at.is_none()))
}

async fn setup_page(
    header: SiteHeader,
    auth: &AuthContext,
    factors: &Factors,
    user: &crate::auth::User,
    csrf: &CsrfToken,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let Some(device) = device_in_setup(auth, user.id).await? else {
        return Ok(see_other(paths::SECURITY));
    };
    let (uri, secret) = factors
        .totp
        .provisioning_for(&device, &user.username)
        .map_err(totp_error)?;
    let mut response = render(&TotpSetupPage {
        header,
        csrf_token: csrf.form_value(),
        qr_svg: qr_svg(&uri)?,
        secret,
        error,
    })?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `GET /security/totp`: the QR code, the secret as text, and the form for
/// the confirming code.
pub async fn totp_form(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    setup_page(header, &auth, &factors, &user, &csrf, None).await
}

/// The confirming code.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /security/totp`: a valid code turns two-factor sign-in on and
/// makes ten recovery codes, shown once.
pub async fn totp_confirm(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    form: web::Form<CodeForm>,
    auth: web::Data<AuthContext>,
    throttle: web::Data<Throttle>,
    factors: web::Data<Factors>,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let Some(device) = device_in_setup(&auth, user.id).await? else {
        return Ok(see_other(paths::SECURITY));
    };
    let address = client_ip_text(&req);
    let reservation = throttle
        .reserve(&[
            Scope::CodeForUser(user.id),
            Scope::CodeFromAddress(&address),
        ])
        .await
        .map_err(|err| refused(err, "wrong codes"))?;
    let (code, username, inner) = (
        form.into_inner().code,
        user.username.clone(),
        factors.clone().into_inner(),
    );
    // The code, the confirmation and the codes at once: a device turned
    // off meanwhile gets no codes, and setup begun again in another tab
    // (a new secret) is not confirmed by a code for the old one.
    let codes = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            if !inner
                .totp
                .verify_and_use(conn, &device, &username, &code)
                .map_err(totp_error)?
            {
                return Ok(None);
            }
            if !totp::confirm(conn, &device).map_err(DbError::from)? {
                return Ok(None);
            }
            let codes = inner
                .recovery
                .regenerate(conn, device.user_id)
                .map_err(DbError::from)?;
            Ok::<_, AppError>(Some(codes))
        })
    })
    .await?;
    let Some(codes) = codes else {
        return setup_page(
            SiteHeader::for_request(&req).await?,
            &auth,
            &factors,
            &user,
            &csrf,
            Some("That code is not valid. Check the time on your device and try the next one."),
        )
        .await;
    };
    reservation.succeeded().await?;
    tracing::info!(user.id = user.id, "two-factor sign-in turned on");
    show_codes(SiteHeader::for_request(&req).await?, codes)
}

/// `POST /security/totp/disable`: two-factor sign-in off, recovery codes gone.
pub async fn totp_disable(
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let user_id = user.id;
    with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            totp::delete(conn, user_id)?;
            recovery_codes::delete_all(conn, user_id).map_err(DbError::from)
        })
    })
    .await?;
    tracing::info!(user.id = user.id, "two-factor sign-in turned off");
    FlashMessage::success("Two-factor sign-in is off. Your password alone signs you in.").send();
    Ok(see_other(paths::SECURITY))
}

/// `POST /security/recovery-codes`: ten new codes, the old ones void.
pub async fn recovery_codes_regenerate(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let (user_id, factors) = (user.id, factors.into_inner());
    // In one transaction with the check, so that a device turned off
    // meanwhile is not left with codes.
    let codes = with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            if totp::find_confirmed(conn, user_id)?.is_none() {
                return Ok(None);
            }
            Ok::<_, DbError>(Some(factors.recovery.regenerate(conn, user_id)?))
        })
    })
    .await?;
    match codes {
        Some(codes) => show_codes(header, codes),
        None => Ok(see_other(paths::SECURITY)),
    }
}

/// `POST /security/passkeys/begin`: starts adding a passkey; answers the
/// options `passkeys.js` hands to the browser.
pub async fn passkey_register_begin(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let factors = factors.into_inner();
    let (options, ceremony) = with_conn(auth.pool(), move |conn| {
        factors
            .passkeys
            .begin_registration(conn, &user)
            .map_err(passkey_error)
    })
    .await?;
    answer_ceremony(&req, ceremony, &options)
}

/// What the add-a-passkey form posts.
#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    passkey_credential: String,
}

/// A passkey name as stored: trimmed, never empty, not too long.
fn passkey_name(name: &str) -> String {
    let name: String = name.trim().chars().take(MAX_PASSKEY_NAME).collect();
    if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name
    }
}

/// `POST /security/passkeys`: finishes adding a passkey.
pub async fn passkey_register_finish(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    form: web::Form<PasskeyForm>,
    auth: web::Data<AuthContext>,
    factors: web::Data<Factors>,
) -> Result<HttpResponse, AppError> {
    let PasskeyForm {
        name,
        passkey_credential,
    } = form.into_inner();
    let Some(ceremony) = Ceremony::take(&req.get_session()) else {
        FlashMessage::error("The passkey was not added: it took too long. Please try again.")
            .send();
        return Ok(see_other(paths::SECURITY));
    };
    let (user_id, name, factors) = (user.id, passkey_name(&name), factors.into_inner());
    let added = with_conn(auth.pool(), move |conn| {
        factors
            .passkeys
            .finish_registration(conn, user_id, &name, &passkey_credential, ceremony)
            .map_err(passkey_error)
    })
    .await?;
    match added {
        Some(_) => {
            tracing::info!(user.id = user.id, "passkey added");
            FlashMessage::success("Your passkey was added.").send();
        }
        None => FlashMessage::error("The passkey was not added. Please try again.").send(),
    }
    Ok(see_other(paths::SECURITY))
}

/// The new name of a passkey.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

/// `POST /security/passkeys/{id}/rename`.
pub async fn passkey_rename(
    CurrentUser(user): CurrentUser,
    id: web::Path<i32>,
    form: web::Form<RenameForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (user_id, id, name) = (user.id, id.into_inner(), passkey_name(&form.name));
    let renamed = with_conn(auth.pool(), move |conn| {
        passkeys::rename(conn, user_id, id, &name).map_err(DbError::from)
    })
    .await?;
    if !renamed {
        return Err(AppError::NotFound);
    }
    FlashMessage::success("Your passkey was renamed.").send();
    Ok(see_other(paths::SECURITY))
}

/// `POST /security/passkeys/{id}/remove`.
pub async fn passkey_remove(
    CurrentUser(user): CurrentUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (user_id, id) = (user.id, id.into_inner());
    let removed = with_conn(auth.pool(), move |conn| {
        passkeys::remove(conn, user_id, id).map_err(DbError::from)
    })
    .await?;
    if !removed {
        return Err(AppError::NotFound);
    }
    tracing::info!(user.id = user_id, "passkey removed");
    FlashMessage::success("Your passkey was removed.").send();
    Ok(see_other(paths::SECURITY))
}
