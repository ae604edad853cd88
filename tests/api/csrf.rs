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

#[actix_web::test]
async fn the_passkey_two_factor_and_sudo_posts_refuse_a_missing_token() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    // Half signed in, so that /login/verify has a state to act on.
    let pending = app.new_browser();
    let pending_state = serde_json::json!({
        "user_id": alice.id, "backend": "model",
        "started_at": time::OffsetDateTime::now_utc().unix_timestamp(),
        "remember_me": false, "next": null,
    })
    .to_string();
    pending
        .plant_session(&[(porter::auth::SessionKeys::PENDING_LOGIN, &pending_state)])
        .await;
    pending.get("/login").await;
    for path in ["/login/verify", "/login/verify/passkey"] {
        let res = pending.post_form(path, &[("code", "123456")]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
    }
    for path in [
        "/login/passkey",
        "/login/passkey/begin",
        "/sudo",
        "/sudo/passkey",
        "/security/totp/setup",
        "/security/totp",
        "/security/totp/disable",
        "/security/recovery-codes",
        "/security/passkeys/begin",
        "/security/passkeys",
        "/security/passkeys/1/rename",
        "/security/passkeys/1/remove",
    ] {
        let res = app
            .post_form(path, &[("password", &alice.password), ("name", "x")])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(
        porter::auth::totp::find(&mut app.db(), alice.id)
            .expect("a query")
            .is_none(),
        "nothing was set up"
    );
}
