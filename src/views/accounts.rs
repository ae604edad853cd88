//! Signing up, in and out, the profile, and changing the password: Django's
//! `LoginView`, `LogoutView`, `PasswordChangeView` and a sign-up view.

use std::sync::Arc;

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        self, AuthContext, AuthError, Authenticated, Credentials, CurrentUser, LazyUser,
        audit::{self, EventKind, NewEvent, Origin},
        email_address::{self, EmailError},
        models,
        redirects::safe_next_or,
        second_factor::{self, PendingLogin},
        signals::AuthEvent,
        throttle::{Scope, Throttle, ThrottleError},
        user_fields::{FieldErrors, FieldView, UserFields, form_view, profile_view},
        user_manager::{self, AccountError},
        validators::{MAX_USERNAME_LEN, ValidationError, validate_password},
    },
    client_ip::client_ip_text,
    csrf::CsrfToken,
    db::{DbError, transaction, with_conn},
    errors::AppError,
    mail::{Letters, MailError, Outbox, outbox},
    metrics::RequestMetrics,
    paths,
    sessions::{self, SessionBackend, expiry::set_expiry},
    settings::Settings,
    views::{
        Mailing, Message, display_time,
        email::{self, SignupError},
        messages,
        new_password::NewPassword,
        render, see_other,
        site_header::SiteHeader,
        throttled,
    },
};

/// Django's `AuthenticationForm` error: the same words whether the username
/// or the password was wrong, so the page does not reveal which users exist.
pub const INVALID_LOGIN: &str =
    "Please enter a correct username and password. Note that both fields may be case-sensitive.";

/// The `next` query parameter.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

impl NextQuery {
    /// The `next` parameter, unchecked: check it before redirecting.
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }
}

/// A signed-in visitor has no business on the login or sign-up form: send
/// them where they were going.
async fn redirect_if_signed_in(
    user: &LazyUser,
    next: Option<&str>,
) -> Result<Option<HttpResponse>, AppError> {
    Ok(user
        .get()
        .await?
        .map(|_| see_other(safe_next_or(next, paths::PROFILE))))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    username: &'a str,
    remember_me: bool,
    next: Option<&'a str>,
    error: Option<&'a str>,
    messages: Vec<Message>,
}

/// `GET /login`: the form.
pub async fn login_form(
    query: web::Query<NextQuery>,
    user: LazyUser,
    header: SiteHeader,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    if let Some(redirect) = redirect_if_signed_in(&user, query.next.as_deref()).await? {
        return Ok(redirect);
    }
    render(&LoginPage {
        header,
        csrf_token: csrf.form_value(),
        username: "",
        remember_me: false,
        next: query.next.as_deref(),
        error: None,
        messages: messages(&incoming),
    })
}

/// What the login form posts: every field, by name, for the backends
/// ([`Credentials`]), besides the form's own plumbing (`csrf_token`,
/// `next`, the `remember_me` checkbox). A field sent twice is a bad request.
pub type LoginForm = Vec<(String, String)>;

/// `POST /login`: steps 3 and 4 of the dance, `authenticate` then `login`.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn login_submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    auth: web::Data<AuthContext>,
    settings: web::Data<Settings>,
    throttle: web::Data<Throttle>,
    Mailing {
        outbox, letters, ..
    }: Mailing,
    user: LazyUser,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let mut credentials = Credentials::from_fields(form.into_inner())
        .map_err(|err| AppError::BadRequest(err.to_string()))?;
    credentials.take("csrf_token");
    let next = credentials.take("next");
    let remember_me = credentials.take("remember_me").is_some();
    if let Some(redirect) = redirect_if_signed_in(&user, next.as_deref()).await? {
        return Ok(redirect);
    }
    // Missing fields read as empty, so that they get the form's own message
    // rather than an error page.
    let username = credentials
        .get("username")
        .unwrap_or_default()
        .trim()
        .to_owned();
    credentials.set("username", username.clone());
    let username = username.as_str();
    let password_missing = credentials.get("password").unwrap_or_default().is_empty();
    let failed = |error| {
        render(&LoginPage {
            header: header.clone(),
            csrf_token: csrf.form_value(),
            username,
            remember_me,
            next: next.as_deref(),
            error: Some(error),
            messages: Vec::new(),
        })
    };
    let only_username_and_password = !credentials.has_fields_besides(&["username", "password"]);
    if only_username_and_password && (username.is_empty() || password_missing) {
        return failed("Enter both your username and your password.");
    }
    if username.chars().count() > MAX_USERNAME_LEN || username.contains('\0') {
        // No such user can exist (and PostgreSQL refuses NUL in text); the
        // same words as any failure.
        return failed(INVALID_LOGIN);
    }

    // Whatever happens next, this response must not tell an unknown
    // username from a wrong password, not even in its timings.
    RequestMetrics::withhold_server_timing();
    let address = client_ip_text(&req);
    // A browser this user signed in from before counts against its own
    // limit only; every other browser against all the others.
    let trusted_device = throttle.devices().trusted_for(&req, username);
    let scopes = match trusted_device.as_deref() {
        Some(nonce) => vec![Scope::Device(nonce)],
        None => vec![
            Scope::UsernameAtAddress {
                username,
                address: &address,
            },
            Scope::Address(&address),
            Scope::Account(username),
        ],
    };
    let reservation = match throttle.reserve(&scopes).await {
        Ok(reservation) => reservation,
        Err(err) => {
            if matches!(err, ThrottleError::Locked(_)) {
                record_sign_in_refused(&req, &auth, EventKind::Throttled, username).await?;
            }
            return Err(throttled::refused(err, "failed sign-in attempts"));
        }
    };

    let authenticated = match auth::authenticate(&auth, credentials).await {
        Ok(Some(authenticated)) => authenticated,
        Ok(None) => {
            // The reservation stays counted: this was a failure.
            drop(reservation);
            record_sign_in_refused(&req, &auth, EventKind::LoginFailed, username).await?;
            auth.send(&AuthEvent::LoginFailed { username }, &req);
            return failed(INVALID_LOGIN);
        }
        Err(AuthError::Hashing(busy)) => {
            // The password was never checked: nothing to count.
            reservation.give_back().await?;
            return Err(busy.into());
        }
        Err(err) => return Err(err.into()),
    };
    reservation.succeeded().await?;
    if second_factor::required_for(&auth, &authenticated.user).await? {
        // The password was right; the code is still to come. Not signed
        // in yet, and no device cookie: a known browser skips no factor.
        PendingLogin::new(&authenticated, remember_me, next).store(&req.get_session())?;
        return Ok(see_other(paths::LOGIN_VERIFY));
    }
    let signed_in = SignedIn {
        authenticated: &authenticated,
        remember_me,
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

/// A visitor who proved who they are, on their way to `login`.
pub(crate) struct SignedIn<'a> {
    /// The user and the backend that vouched for them.
    pub authenticated: &'a Authenticated,
    /// The login form's "remember me".
    pub remember_me: bool,
    /// Where to go afterwards, unchecked yet.
    pub next: Option<&'a str>,
}

/// Step 4 and what follows it, for every way of signing in (password,
/// password and code, passkey): `login`, a notice when the browser is new,
/// "remember me", the device cookie, and the redirect to a safe `next`.
pub(crate) async fn complete_login(
    req: &HttpRequest,
    auth: &AuthContext,
    settings: &Settings,
    throttle: &Throttle,
    (outbox, letters): (&Outbox, &Letters),
    signed_in: SignedIn<'_>,
) -> Result<HttpResponse, AppError> {
    let SignedIn {
        authenticated,
        remember_me,
        next,
    } = signed_in;
    let username = authenticated.user.username.as_str();
    let trusted_device = throttle.devices().trusted_for(req, username);
    auth::login(req, auth, authenticated).await?;
    if trusted_device.is_none() {
        email::notify_new_device(req, auth, outbox, letters, &authenticated.user).await;
    }
    if remember_me {
        set_expiry(&req.get_session(), settings.session_remember_ttl)
            .map_err(|err| AppError::Unexpected(err.into()))?;
    }
    let mut response = see_other(safe_next_or(next, paths::PROFILE));
    response
        .add_cookie(&throttle.devices().issue(username))
        .map_err(|err| AppError::Unexpected(err.into()))?;
    Ok(response)
}

/// Writes a failed or throttled sign-in to the security log: one insert,
/// the typed name only as its digest, whether or not such a user exists
/// (the same work either way).
async fn record_sign_in_refused(
    req: &HttpRequest,
    auth: &AuthContext,
    kind: EventKind,
    username: &str,
) -> Result<(), AppError> {
    let event = NewEvent::new(kind, Origin::of(req))
        .detail(audit::username_detail(&auth.username_digest(username)));
    with_conn(auth.pool(), move |conn| {
        audit::record(conn, &event).map_err(DbError::from)
    })
    .await?;
    Ok(())
}

/// `POST /logout`: ends the session, server side and cookie.
pub async fn logout(req: HttpRequest, auth: web::Data<AuthContext>) -> HttpResponse {
    auth::logout(&req, &auth).await;
    FlashMessage::info("You have been signed out.").send();
    see_other(paths::HOME)
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    header: SiteHeader,
    username: &'a str,
    fields: Vec<(&'static str, String)>,
    date_joined: String,
    last_login: Option<String>,
    messages: Vec<Message>,
}

/// `GET /profile`, behind `login_required`.
pub async fn profile(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    render(&ProfilePage {
        header,
        username: &user.username,
        fields: profile_view(&user),
        date_joined: display_time(&user.date_joined),
        last_login: user.last_login.as_ref().map(display_time),
        messages: messages(&incoming),
    })
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    header: SiteHeader,
    csrf_token: String,
    fields: Vec<FieldView<'a>>,
    errors: &'a FieldErrors,
}

/// `GET /signup`: the form.
pub async fn signup_form(
    query: web::Query<NextQuery>,
    user: LazyUser,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    if let Some(redirect) = redirect_if_signed_in(&user, query.next.as_deref()).await? {
        return Ok(redirect);
    }
    let (fields, errors) = (UserFields::default(), FieldErrors::default());
    render(&SignupPage {
        header,
        csrf_token: csrf.form_value(),
        fields: form_view(&fields, &errors),
        errors: &errors,
    })
}

/// What the sign-up form posts: the user's own fields and the password,
/// twice.
#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(flatten)]
    fields: UserFields,
    #[serde(default)]
    password1: String,
    #[serde(default)]
    password2: String,
}

/// `POST /signup`: creates the user and signs them in; mails a
/// confirmation link to the address, if one was given.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn signup_submit(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    auth: web::Data<AuthContext>,
    throttle: web::Data<Throttle>,
    Mailing {
        tokens,
        outbox,
        letters,
    }: Mailing,
    user: LazyUser,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    if let Some(redirect) = redirect_if_signed_in(&user, None).await? {
        return Ok(redirect);
    }
    let SignupForm {
        mut fields,
        password1,
        password2,
    } = form.into_inner();

    let mut errors = fields.clean();
    errors.add_validation(validate_password(&password1, &fields.username));
    if password1 != password2 {
        errors.add_validation([ValidationError::PasswordMismatch]);
    }
    // A taken name or address is looked up now, so that every error shows
    // in one round; the insert below still refuses one taken meanwhile.
    let (check_name, check_email) = (
        errors.get("username").is_empty(),
        fields.email().is_some() && errors.get("email").is_empty(),
    );
    if check_name || check_email {
        let (name, address) = (fields.username.clone(), fields.email.clone());
        let (name_taken, email_taken) = with_conn(auth.pool(), move |conn| {
            let name_taken = check_name && models::find_by_username(conn, &name)?.is_some();
            let email_taken = check_email && email_address::is_taken(conn, &address)?;
            Ok::<_, DbError>((name_taken, email_taken))
        })
        .await?;
        if name_taken {
            errors.add_validation([ValidationError::UsernameTaken]);
        }
        if email_taken {
            errors.add("email", EmailError::Taken);
        }
    }

    if errors.is_empty() {
        let address = client_ip_text(&req);
        // Every sign-up counts, made or not: the limit is on trying.
        let scopes = [Scope::Signup(&address)];
        let reservation =
            throttled::reserve(&throttle, &scopes, "sign-ups from your address").await?;
        let (hasher, account_fields) = (Arc::clone(auth.hasher()), fields.clone());
        let (prepared, reservation) = throttled::hash(&auth, reservation, move || {
            user_manager::prepare_user(&hasher, account_fields, &password1, false)
        })
        .await?;
        drop(reservation);
        let (tokens, letters) = (tokens.into_inner(), letters.into_inner());
        let created = match prepared {
            Ok(account) => {
                with_conn(auth.pool(), move |conn| {
                    email::create_account(conn, &account, &tokens, &letters)
                })
                .await
            }
            Err(err) => Err(err.into()),
        };
        match created {
            Ok(user) => {
                outbox.wake();
                let authenticated = auth.vouch_for_new(user);
                auth::login(&req, &auth, &authenticated).await?;
                FlashMessage::success("Welcome! Your account has been created.").send();
                return Ok(see_other(paths::PROFILE));
            }
            Err(SignupError::Account(AccountError::Invalid(problems))) => {
                errors.add_validation(problems)
            }
            Err(SignupError::EmailTaken) => errors.add("email", EmailError::Taken),
            Err(SignupError::Account(AccountError::Db(err))) => return Err(err.into()),
            Err(other) => return Err(AppError::Unexpected(other.into())),
        }
    }

    // As Django: a form with errors is shown again, with 200.
    render(&SignupPage {
        header,
        csrf_token: csrf.form_value(),
        fields: form_view(&fields, &errors),
        errors: &errors,
    })
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    header: SiteHeader,
    csrf_token: String,
    old_password_error: Option<&'static str>,
    errors: FieldErrors,
}

/// `GET /password`, behind `login_required`.
pub async fn password_form(
    _user: CurrentUser,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    render(&PasswordPage {
        header,
        csrf_token: csrf.form_value(),
        old_password_error: None,
        errors: FieldErrors::default(),
    })
}

/// What the password change form posts.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    old_password: String,
    #[serde(flatten)]
    new: NewPassword,
}

/// What a password change says once it has landed.
const PASSWORD_CHANGED: &str = "Your password was changed. Your other sessions are signed out.";

/// `POST /password`: checks the old password, sets the new one, keeps this
/// session signed in and ends every other; a notice goes to the confirmed
/// address.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn password_submit(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
    form: web::Form<PasswordForm>,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
    throttle: web::Data<Throttle>,
    Mailing {
        outbox, letters, ..
    }: Mailing,
    header: SiteHeader,
    csrf: CsrfToken,
) -> Result<HttpResponse, AppError> {
    let PasswordForm { old_password, new } = form.into_inner();

    let old_ok = throttled::check_own_password(&auth, &throttle, &user, old_password).await?;
    let errors = new.check(&user.username);
    if !old_ok || !errors.is_empty() {
        return render(&PasswordPage {
            header,
            csrf_token: csrf.form_value(),
            old_password_error: (!old_ok)
                .then_some("Your old password was entered incorrectly. Please enter it again."),
            errors,
        });
    }

    let typed = new.new_password1.clone();
    let new_hash = new
        .hash_for(&auth, &user)
        .await?
        .map_err(|err| AppError::Unexpected(err.into()))?;
    let letters = letters.into_inner();
    let user_id = user.id;
    let event = NewEvent::new(EventKind::PasswordChanged, Origin::of(&req)).by_user(user_id);
    let changed = with_conn(auth.pool(), move |conn| {
        // The notice and the log line go with the change, or nothing does.
        transaction(conn, |conn| {
            // Only over the password the old one was checked against: a
            // reset or another change that landed while this request hashed
            // is not overwritten by a change made with the password it
            // replaced.
            if !models::replace_password_hash(conn, user.id, &user.password, &new_hash)? {
                return Ok(None);
            }
            audit::record(conn, &event)?;
            let user = models::User {
                password: new_hash,
                ..user
            };
            if let Some(to) = user.confirmed_email() {
                outbox::enqueue(conn, &letters.password_changed(to, &user.username)?)?;
            }
            Ok::<_, MailError>(Some(user))
        })
    })
    .await?;
    let Some(user) = changed else {
        if is_current_password(&auth, user_id, typed).await? {
            // The same change sent twice (a double click, two tabs): the
            // first landed, kept its session and ended the others.
            FlashMessage::success(PASSWORD_CHANGED).send();
            return Ok(see_other(paths::PROFILE));
        }
        // Another password landed meanwhile (a reset, a change elsewhere):
        // this session no longer matches it and its next request would be
        // signed out, so sign it out now and say why.
        auth::logout(&req, &auth).await;
        FlashMessage::error(
            "Your password was changed elsewhere while this change was being made, so this \
             change was not saved. Please sign in with your current password.",
        )
        .send();
        return Ok(see_other(paths::LOGIN));
    };
    outbox.wake();
    let session = req.get_session();
    auth::update_session_auth_hash(&session, &auth, &user)?;
    // As Django: a new key too, so that a copy of this session's cookie taken
    // before the change (the very thing a password change may be about)
    // dies with it.
    session.renew();
    // The auth hash already ends them; deleting what the engine keeps on
    // the server also takes them off "your sessions" at once.
    sessions::by_user::revoke_others(&backend, user.id, sessions::current_key_hash(&req)).await?;
    FlashMessage::success(PASSWORD_CHANGED).send();
    Ok(see_other(paths::PROFILE))
}

/// Whether `password` is the user's stored password now: a password change
/// that lost its compare-and-set asks whether the change that won was the
/// same one.
async fn is_current_password(
    auth: &AuthContext,
    user_id: i32,
    password: String,
) -> Result<bool, AppError> {
    let stored = with_conn(auth.pool(), move |conn| {
        models::find_by_id(conn, user_id).map_err(DbError::from)
    })
    .await?;
    let Some(stored) = stored.map(|user| user.password) else {
        return Ok(false);
    };
    let hasher = Arc::clone(auth.hasher());
    Ok(auth
        .hashing()
        .run(move || hasher.verify(&password, &stored))
        .await?)
}
