//! A revocation made by another process is seen on the very next request.
//!
//! The browser has already loaded its page twice, so that anything this
//! process might keep between requests (a cached session, user or set of
//! permissions) is warm; then the real `porter` binary, a separate process,
//! changes the shared database; the next request must already obey it.
//! This is the guard rail for any caching added to the hot path: Django
//! reads the session and the user on every request for the same reason.

use actix_web::http::StatusCode;
use porter::auth::{grants, models, permissions};

use crate::{
    cli::{porter, stderr},
    helpers::{TestApp, TestUser, spawn_app},
};

/// Runs `porter args` against the app's database and insists it succeeded.
fn run<S>(app: &TestApp<S>, args: &[&str], stdin: &str) {
    let out = porter(&app.database_url(), args, stdin);
    assert!(out.status.success(), "porter {args:?}: {}", stderr(&out));
}

/// A staff member holding `users.view` directly, or not at all.
fn staff_member<S>(app: &TestApp<S>, name: &str, can_view_users: bool) -> TestUser {
    let user = TestUser::create(app, name);
    let mut conn = app.db();
    models::set_staff(&mut conn, user.id, true).expect("staff flag");
    if can_view_users {
        let view = grants::find_permission(&mut conn, permissions::VIEW_USERS.codename)
            .expect("a query")
            .expect("synced at start-up");
        grants::grant_to_user(&mut conn, user.id, view.id).expect("grant");
    }
    user
}

/// Loads `path` twice and insists on `status` both times: whatever a
/// process could cache about this browser is now warm.
async fn warm<S, B>(browser: &TestApp<S>, path: &str, status: StatusCode)
where
    S: actix_web::dev::Service<
            porter::testing::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    for _ in 0..2 {
        assert_eq!(browser.get(path).await.status, status, "before: {path}");
    }
}

/// After the revocation: the next `/profile` goes to the login page, the
/// session is deleted from the store, and its cookie, replayed by another
/// browser, opens nothing anymore.
async fn assert_signed_out<S, B>(app: &TestApp<S>, browser: &TestApp<S>, old_cookie: &str)
where
    S: actix_web::dev::Service<
            porter::testing::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    browser
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    assert_eq!(app.session_rows(), 0, "the old session is deleted");
    let replay = app.new_browser();
    replay.set_cookie("sessionid", old_cookie);
    replay
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn a_password_changed_by_the_command_line_signs_out_a_warm_session_at_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    warm(&app, "/profile", StatusCode::OK).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");

    run(
        &app,
        &["changepassword", "alice", "--password-stdin"],
        "a brand new passphrase\n",
    );

    assert_signed_out(&app, &app, &cookie).await;
}

#[actix_web::test]
async fn a_user_deactivated_by_the_command_line_is_signed_out_of_a_warm_session_at_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    warm(&app, "/profile", StatusCode::OK).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");

    run(&app, &["deactivate", "alice"], "");

    assert_signed_out(&app, &app, &cookie).await;
}

#[actix_web::test]
async fn a_permission_revoked_by_the_command_line_closes_a_warm_staff_page_at_once() {
    let app = spawn_app().await;
    let dave = staff_member(&app, "dave", true);
    dave.login(&app).await;
    warm(&app, "/staff/users", StatusCode::OK).await;

    run(&app, &["perms", "revoke", "dave", "users.view"], "");

    let refused = app.get("/staff/users").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "the next request");
    assert!(
        refused.body.contains("Permission denied"),
        "a readable page"
    );
    // Still signed in: only the permission went.
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn leaving_a_group_by_the_command_line_closes_a_warm_staff_page_at_once() {
    let app = spawn_app().await;
    let erin = staff_member(&app, "erin", false);
    run(&app, &["groups", "create", "support"], "");
    run(&app, &["groups", "grant", "support", "users.view"], "");
    run(&app, &["groups", "add", "erin", "support"], "");
    erin.login(&app).await;
    warm(&app, "/staff/users", StatusCode::OK).await;

    run(&app, &["groups", "remove", "erin", "support"], "");

    assert_eq!(
        app.get("/staff/users").await.status,
        StatusCode::FORBIDDEN,
        "the next request"
    );
}

#[actix_web::test]
async fn a_permission_granted_by_the_command_line_opens_a_staff_page_at_once() {
    let app = spawn_app().await;
    let frank = staff_member(&app, "frank", false);
    frank.login(&app).await;
    warm(&app, "/staff/users", StatusCode::FORBIDDEN).await;

    run(&app, &["perms", "grant", "frank", "users.view"], "");

    assert_eq!(
        app.get("/staff/users").await.status,
        StatusCode::OK,
        "the next request"
    );
}
