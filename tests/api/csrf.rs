//! Every POST carries a CSRF token; forged ones are refused.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn posts_without_a_token_are_forbidden() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    app.get("/login").await; // the browser has the CSRF cookie

    let login = app
        .post_form(
            "/login",
            &[("username", &alice.username), ("password", &alice.password)],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(login.body.contains("CSRF verification failed"));
    assert_eq!(app.session_rows(), 0);

    alice.login(&app).await;
    let logout = app.post_form("/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/profile").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[actix_web::test]
async fn a_token_without_its_cookie_is_forbidden() {
    let app = spawn_app().await;
    let token = app.get("/login").await.csrf_token();
    app.clear_cookies();
    let res = app
        .post_form(
            "/login",
            &[("csrf_token", &token), ("username", "a"), ("password", "b")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_token_from_another_browser_is_forbidden() {
    let attacker = spawn_app().await;
    let token = attacker.get("/login").await.csrf_token();

    let app = spawn_app().await;
    app.get("/login").await;
    let res = app
        .post_form(
            "/login",
            &[("csrf_token", &token), ("username", "a"), ("password", "b")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn viewing_the_login_form_creates_no_session() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let res = app.get("/login").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.set_cookie("sessionid").is_none());
    }
    assert_eq!(app.session_rows(), 0);
}

#[actix_web::test]
async fn the_token_rotates_at_login() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let stale_token = app.get("/login").await.csrf_token();
    let before = app.cookie("csrftoken").expect("a CSRF cookie before login");

    alice.login(&app).await;
    let after = app.cookie("csrftoken").expect("a CSRF cookie after login");
    assert_ne!(after, before, "login sets a new secret");

    let res = app
        .post_form("/logout", &[("csrf_token", &stale_token)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "a pre-login token");
    assert_eq!(
        app.get("/profile").await.status,
        StatusCode::OK,
        "still signed in"
    );
    let res = app.logout().await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "a fresh token works");
}
