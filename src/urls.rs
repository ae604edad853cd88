//! The whole route table on one screen: Django's `urls.py`.
//!
//! Paths and form field names here are part of Porter's contract with
//! browsers and tools; see the README before changing one.

use actix_web::{HttpResponse, Route, middleware::from_fn, web};

use crate::{
    auth::{login_required, recent_login_required},
    errors::AppError,
    paths::*,
    views::{
        accounts, debug, email, health, home, password_reset, second_factor, security,
        static_files, sudo, your_sessions,
    },
};

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(home::home)
        .service(
            web::resource(LOGIN)
                .get(accounts::login_form)
                .post(accounts::login_submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource(LOGIN_VERIFY)
                .get(second_factor::verify_form)
                .post(second_factor::verify_submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource("/login/verify/passkey")
                .post(second_factor::verify_passkey_begin)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource(LOGIN_PASSKEY)
                .post(second_factor::passkey_submit)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/login/passkey/begin")
                .post(second_factor::passkey_begin)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource(SUDO)
                .wrap(from_fn(login_required))
                .get(sudo::form)
                .post(sudo::submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource("/sudo/passkey")
                .wrap(from_fn(login_required))
                .post(sudo::passkey_begin)
                .default_service(not_allowed("POST")),
        )
        .service(security_routes())
        .service(
            web::resource(LOGOUT)
                .post(accounts::logout)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource(SIGNUP)
                .get(accounts::signup_form)
                .post(accounts::signup_submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource(PROFILE)
                .wrap(from_fn(login_required))
                .get(accounts::profile)
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource(PASSWORD)
                .wrap(from_fn(recent_login_required))
                .get(accounts::password_form)
                .post(accounts::password_submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource(PASSWORD_RESET)
                .get(password_reset::request_form)
                .post(password_reset::request_submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource(PASSWORD_RESET_DONE)
                .get(password_reset::done)
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/password/reset/{uid}/{token}")
                .get(password_reset::link)
                .post(password_reset::set_password)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource(EMAIL)
                .wrap(from_fn(recent_login_required))
                .get(email::form)
                .post(email::submit)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource("/email/confirm/{uid}/{token}")
                .get(email::confirm)
                .default_service(not_allowed("GET")),
        )
        .service(
            web::scope(SESSIONS)
                .wrap(from_fn(login_required))
                .service(
                    web::resource("")
                        .get(your_sessions::list)
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/revoke-others")
                        .wrap(from_fn(recent_login_required))
                        .post(your_sessions::revoke_others)
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/{id}/revoke")
                        .post(your_sessions::revoke)
                        .default_service(not_allowed("POST")),
                ),
        )
        .service(health::healthz)
        .service(static_files::asset);
}

/// `/security`: the page needs a user; adding or removing a factor needs a
/// recent sign-in as well (renaming a passkey does not).
fn security_routes() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let sensitive = || from_fn(recent_login_required);
    web::scope(SECURITY)
        .wrap(from_fn(login_required))
        .service(
            web::resource("")
                .get(security::page)
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/totp/setup")
                .wrap(sensitive())
                .post(security::totp_setup)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/totp")
                .wrap(sensitive())
                .get(security::totp_form)
                .post(security::totp_confirm)
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource("/totp/disable")
                .wrap(sensitive())
                .post(security::totp_disable)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/recovery-codes")
                .wrap(sensitive())
                .post(security::recovery_codes_regenerate)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/passkeys/begin")
                .wrap(sensitive())
                .post(security::passkey_register_begin)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/passkeys")
                .wrap(sensitive())
                .post(security::passkey_register_finish)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/passkeys/{id}/rename")
                .post(security::passkey_rename)
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/passkeys/{id}/remove")
                .wrap(sensitive())
                .post(security::passkey_remove)
                .default_service(not_allowed("POST")),
        )
}

/// The debug pages: registered only when `DEBUG` is on, so that they are a
/// 404 in production.
pub fn debug_routes(cfg: &mut web::ServiceConfig, debug: bool) {
    if debug {
        cfg.route("/debug/trace", web::get().to(debug::trace_page))
            .route("/debug/source/{path:.*}", web::get().to(debug::source));
    }
}

/// The answer for a method a route does not take: `405` with `Allow`.
fn not_allowed(allow: &'static str) -> Route {
    web::to(move || async move { Err::<HttpResponse, _>(AppError::MethodNotAllowed { allow }) })
}

/// The answer for a path no route takes: `404`.
pub fn not_found() -> Route {
    web::to(|| async { Err::<HttpResponse, _>(AppError::NotFound) })
}
