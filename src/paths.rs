//! The paths Porter links and redirects to: part of its contract with
//! browsers and tools (see the README before changing one). A leaf, so that
//! views and guards can name a page without depending on the route table
//! in [`urls`](crate::urls), which depends on them.

/// The home page.
pub const HOME: &str = "/";
/// The login form.
pub const LOGIN: &str = "/login";
/// Where the logout form posts.
pub const LOGOUT: &str = "/logout";
/// The signed-in user's profile, and where login lands by default.
pub const PROFILE: &str = "/profile";
/// The sign-up form.
pub const SIGNUP: &str = "/signup";
/// The password change form.
pub const PASSWORD: &str = "/password";
/// The user's sessions.
pub const SESSIONS: &str = "/sessions";
/// "Forgot your password?": the form asking for an address; reset links
/// are `/password/reset/{uid}/{token}`.
pub const PASSWORD_RESET: &str = "/password/reset";
/// "Check your mail", after a reset request.
pub const PASSWORD_RESET_DONE: &str = "/password/reset/done";
/// The user's e-mail address and the form to change it.
pub const EMAIL: &str = "/email";
/// Address confirmation links: `/email/confirm/{uid}/{token}`.
pub const EMAIL_CONFIRM: &str = "/email/confirm";
/// The user's recent security activity.
pub const SECURITY: &str = "/security";
/// The staff area's list of users; a user's page is `/staff/users/{id}`.
pub const STAFF_USERS: &str = "/staff/users";
/// The staff area's view of everyone's security log.
pub const STAFF_EVENTS: &str = "/staff/events";
