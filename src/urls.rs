//! The whole route table on one screen: Django's `urls.py`.
//!
//! Paths and form field names here are part of Porter's contract with
//! browsers and tools; see the README before changing one.
//!
//! Every route needs a signed-in user unless its row says [`Access::Public`]
//! (Django 5.1's `LoginRequiredMiddleware` and `@login_not_required`): a
//! page added here is protected until someone decides otherwise, and
//! `tests/api/route_table.rs` walks this table to hold every row to its
//! word.

use actix_web::{HttpResponse, Resource, Route as Handler, middleware::from_fn, web};

use crate::{
    auth::{
        guards::{PublicRoutes, permission_required, staff_required},
        permissions::{
            CHANGE_ACTIVE, CHANGE_PERMISSIONS, Permission, RESET_TWO_FACTOR, REVOKE_ANY_SESSIONS,
            SEND_PASSWORD_RESET, VIEW_ANY_EVENTS, VIEW_USERS,
        },
        recent_login::recent_login_required,
    },
    errors::AppError,
    paths::*,
    views::{
        accounts, debug, email, health, home, password_reset, second_factor, security, staff,
        static_files, sudo, your_sessions,
    },
};

/// Who may reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Signed-in users (the default of every route).
    SignedIn,
    /// Signed-in users who proved it within `SUDO_TTL` (sudo mode): a
    /// sensitive action; others are sent to `/sudo` and back.
    Recent,
    /// Signed-in staff holding this permission.
    Staff(Permission),
    /// Staff holding this permission, signed in within `SUDO_TTL`: a staff
    /// action.
    StaffRecent(Permission),
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The path pattern, as actix matches it: `/sessions/{id}/revoke`.
    pub path: &'static str,
    /// Who may reach it.
    pub access: Access,
    /// The methods it answers, as the `Allow` header of a `405` lists them.
    pub allow: &'static str,
    /// Puts the handlers on the resource.
    handlers: fn(Resource) -> Resource,
}

impl Route {
    fn new(
        access: Access,
        path: &'static str,
        allow: &'static str,
        handlers: fn(Resource) -> Resource,
    ) -> Self {
        Self {
            path,
            access,
            allow,
            handlers,
        }
    }
}

/// Every route, in one table.
pub fn table() -> Vec<Route> {
    use Access::{Public, Recent, SignedIn, Staff, StaffRecent};
    vec![
        Route::new(Public, HOME, "GET", |r| r.get(home::home)),
        Route::new(Public, LOGIN, "GET, POST", |r| {
            r.get(accounts::login_form).post(accounts::login_submit)
        }),
        // The second factor, and passkey sign-in: still anonymous here.
        Route::new(Public, LOGIN_VERIFY, "GET, POST", |r| {
            r.get(second_factor::verify_form)
                .post(second_factor::verify_submit)
        }),
        Route::new(Public, "/login/verify/passkey", "POST", |r| {
            r.post(second_factor::verify_passkey_begin)
        }),
        Route::new(Public, LOGIN_PASSKEY, "POST", |r| {
            r.post(second_factor::passkey_submit)
        }),
        Route::new(Public, "/login/passkey/begin", "POST", |r| {
            r.post(second_factor::passkey_begin)
        }),
        Route::new(SignedIn, SUDO, "GET, POST", |r| {
            r.get(sudo::form).post(sudo::submit)
        }),
        Route::new(SignedIn, "/sudo/passkey", "POST", |r| {
            r.post(sudo::passkey_begin)
        }),
        // Harmless for anyone, as Django's `LogoutView`.
        Route::new(Public, LOGOUT, "POST", |r| r.post(accounts::logout)),
        Route::new(Public, SIGNUP, "GET, POST", |r| {
            r.get(accounts::signup_form).post(accounts::signup_submit)
        }),
        Route::new(SignedIn, PROFILE, "GET", |r| r.get(accounts::profile)),
        Route::new(Recent, PASSWORD, "GET, POST", |r| {
            r.get(accounts::password_form)
                .post(accounts::password_submit)
        }),
        Route::new(Public, PASSWORD_RESET, "GET, POST", |r| {
            r.get(password_reset::request_form)
                .post(password_reset::request_submit)
        }),
        Route::new(Public, PASSWORD_RESET_DONE, "GET", |r| {
            r.get(password_reset::done)
        }),
        Route::new(Public, "/password/reset/{uid}/{token}", "GET, POST", |r| {
            r.get(password_reset::link)
                .post(password_reset::set_password)
        }),
        Route::new(Recent, EMAIL, "GET, POST", |r| {
            r.get(email::form).post(email::submit)
        }),
        Route::new(Public, "/email/confirm/{uid}/{token}", "GET", |r| {
            r.get(email::confirm)
        }),
        Route::new(SignedIn, SESSIONS, "GET", |r| r.get(your_sessions::list)),
        Route::new(Recent, "/sessions/revoke-others", "POST", |r| {
            r.post(your_sessions::revoke_others)
        }),
        Route::new(SignedIn, "/sessions/{id}/revoke", "POST", |r| {
            r.post(your_sessions::revoke)
        }),
        Route::new(SignedIn, SECURITY, "GET", |r| r.get(security::page)),
        Route::new(Recent, "/security/totp/setup", "POST", |r| {
            r.post(security::totp_setup)
        }),
        Route::new(Recent, SECURITY_TOTP, "GET, POST", |r| {
            r.get(security::totp_form).post(security::totp_confirm)
        }),
        Route::new(Recent, "/security/totp/disable", "POST", |r| {
            r.post(security::totp_disable)
        }),
        Route::new(Recent, "/security/recovery-codes", "POST", |r| {
            r.post(security::recovery_codes_regenerate)
        }),
        Route::new(Recent, "/security/passkeys/begin", "POST", |r| {
            r.post(security::passkey_register_begin)
        }),
        Route::new(Recent, "/security/passkeys", "POST", |r| {
            r.post(security::passkey_register_finish)
        }),
        // Renaming proves nothing and risks nothing: no sudo.
        Route::new(SignedIn, "/security/passkeys/{id}/rename", "POST", |r| {
            r.post(security::passkey_rename)
        }),
        Route::new(Recent, "/security/passkeys/{id}/remove", "POST", |r| {
            r.post(security::passkey_remove)
        }),
        Route::new(Staff(VIEW_USERS), STAFF_USERS, "GET", |r| {
            r.get(staff::users)
        }),
        Route::new(Staff(VIEW_USERS), "/staff/users/{id}", "GET", |r| {
            r.get(staff::user)
        }),
        Route::new(
            StaffRecent(CHANGE_ACTIVE),
            "/staff/users/{id}/activate",
            "POST",
            |r| r.post(staff::activate),
        ),
        Route::new(
            StaffRecent(CHANGE_ACTIVE),
            "/staff/users/{id}/deactivate",
            "POST",
            |r| r.post(staff::deactivate),
        ),
        Route::new(
            StaffRecent(REVOKE_ANY_SESSIONS),
            "/staff/users/{id}/sign-out-everywhere",
            "POST",
            |r| r.post(staff::sign_out_everywhere),
        ),
        Route::new(
            StaffRecent(CHANGE_PERMISSIONS),
            "/staff/users/{id}/groups/add",
            "POST",
            |r| r.post(staff::join_group),
        ),
        Route::new(
            StaffRecent(CHANGE_PERMISSIONS),
            "/staff/users/{id}/groups/remove",
            "POST",
            |r| r.post(staff::leave_group),
        ),
        Route::new(
            StaffRecent(CHANGE_PERMISSIONS),
            "/staff/users/{id}/permissions/grant",
            "POST",
            |r| r.post(staff::grant_permission),
        ),
        Route::new(
            StaffRecent(CHANGE_PERMISSIONS),
            "/staff/users/{id}/permissions/revoke",
            "POST",
            |r| r.post(staff::revoke_permission),
        ),
        Route::new(
            StaffRecent(CHANGE_PERMISSIONS),
            "/staff/users/{id}/flags",
            "POST",
            |r| r.post(staff::set_flag),
        ),
        Route::new(
            StaffRecent(SEND_PASSWORD_RESET),
            "/staff/users/{id}/password-reset",
            "POST",
            |r| r.post(staff::send_password_reset),
        ),
        Route::new(
            StaffRecent(RESET_TWO_FACTOR),
            "/staff/users/{id}/two-factor/reset",
            "POST",
            |r| r.post(staff::reset_two_factor),
        ),
        Route::new(Staff(VIEW_ANY_EVENTS), STAFF_EVENTS, "GET", |r| {
            r.get(staff::events)
        }),
        Route::new(Public, "/healthz", "GET", |r| r.get(health::healthz)),
        Route::new(Public, "/static/{name}", "GET", |r| {
            r.get(static_files::asset)
        }),
    ]
}

/// The debug pages: routes only when `DEBUG` is on, so that they are a
/// 404 in production. Public: they show each visitor their own request.
pub fn debug_table(debug: bool) -> Vec<Route> {
    if !debug {
        return Vec::new();
    }
    vec![
        Route::new(Access::Public, "/debug/trace", "GET", |r| {
            r.get(debug::trace_page)
        }),
        Route::new(Access::Public, "/debug/source/{path:.*}", "GET", |r| {
            r.get(debug::source)
        }),
    ]
}

/// Registers every route of `routes`, each behind the guards its access
/// asks for.
pub fn register(cfg: &mut web::ServiceConfig, routes: &[Route]) {
    for route in routes {
        let resource =
            (route.handlers)(web::resource(route.path)).default_service(not_allowed(route.allow));
        match route.access {
            // Signing in is required by default (`login_required_by_default`).
            Access::Public | Access::SignedIn => cfg.service(resource),
            Access::Recent => cfg.service(resource.wrap(from_fn(recent_login_required))),
            // Outermost first: staff, then the permission, then sudo.
            Access::Staff(permission) => cfg.service(
                resource
                    .wrap(permission_required(permission.codename))
                    .wrap(from_fn(staff_required)),
            ),
            Access::StaffRecent(permission) => cfg.service(
                resource
                    .wrap(from_fn(recent_login_required))
                    .wrap(permission_required(permission.codename))
                    .wrap(from_fn(staff_required)),
            ),
        };
    }
}

/// The routes anyone may reach, for `login_required_by_default`.
pub fn public_routes(routes: &[Route]) -> PublicRoutes {
    PublicRoutes::new(
        routes
            .iter()
            .filter(|route| route.access == Access::Public)
            .map(|route| route.path),
    )
}

/// The answer for a method a route does not take: `405` with `Allow`.
fn not_allowed(allow: &'static str) -> Handler {
    web::to(move || async move { Err::<HttpResponse, _>(AppError::MethodNotAllowed { allow }) })
}

/// The answer for a path no route takes: `404`.
pub fn not_found() -> Handler {
    web::to(|| async { Err::<HttpResponse, _>(AppError::NotFound) })
}
