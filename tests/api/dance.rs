//! The whole authentication dance, step by step, through the front door.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use porter::schema::{sessions, users};

use crate::helpers::{TestResponse, TestUser, spawn_app};

#[actix_web::test]
async fn a_user_signs_in_sees_their_profile_and_signs_out() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");

    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("You are not signed in"));

    let login = alice.login(&app).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), Some("/profile"));

    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));
    assert!(profile.body.contains("Date joined"));
    assert!(!profile.body.contains("never"), "last login is stamped");

    let home = app.get("/").await;
    assert!(
        home.body
            .contains("You are signed in as <strong>alice</strong>")
    );

    let logout = app.logout().await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(logout.location(), Some("/"));
    assert_eq!(
        app.session_rows(),
        0,
        "logout deletes the server-side session"
    );

    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::SEE_OTHER);
    assert_eq!(profile.location(), Some("/login?next=/profile"));
}

#[actix_web::test]
async fn login_stores_the_backend_the_user_id_and_an_auth_hash() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;

    let (data, user_id): (String, Option<i32>) = sessions::table
        .select((sessions::data, sessions::user_id))
        .first(&mut *app.db())
        .expect("one session row");
    let data: serde_json::Value = serde_json::from_str(&data).expect("JSON data");
    assert_eq!(data["_auth_user_id"], alice.id.to_string());
    assert_eq!(data["_auth_user_backend"], "model");
    assert_eq!(data["_auth_user_hash"].as_str().map(str::len), Some(64));
    assert_eq!(user_id, Some(alice.id));

    let last_login: Option<time::PrimitiveDateTime> = users::table
        .find(alice.id)
        .select(users::last_login)
        .first(&mut *app.db())
        .expect("the user");
    assert!(last_login.is_some());
}

/// The profile page for a session like the one a login by alice leaves,
/// but with `backend` stored as `_auth_user_backend`.
async fn profile_with_backend_stored_as(backend: &str) -> TestResponse {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let user = porter::auth::models::find_by_id(&mut app.db(), alice.id)
        .expect("a user query")
        .expect("alice exists");
    let json = |value: &str| serde_json::to_string(value).expect("a JSON string");
    app.plant_session(&[
        ("_auth_user_id", &json(&alice.id.to_string())),
        ("_auth_user_backend", &json(backend)),
        (
            "_auth_user_hash",
            &json(&app.state.auth.session_auth_hash(&user)),
        ),
    ])
    .await;
    app.get("/profile").await
}

#[actix_web::test]
async fn a_session_from_before_the_backend_had_a_stable_name_stays_signed_in() {
    // What every login stored until the backend's name stopped being its
    // Rust path, and what a renamed fork must keep accepting.
    let profile = profile_with_backend_stored_as("porter::auth::ModelBackend").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));
}

#[actix_web::test]
async fn a_session_auth_hash_made_by_an_earlier_version_still_matches() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    // A stored password hash, and the session auth hash Porter has always
    // made for it under the test key. If the way that hash is derived ever
    // changes (its key's label renamed with the crate, say), every session
    // ends: this test says so first.
    let password_hash =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0123456789abcdefghijklmnopqrstuvwxyzABCDE";
    let auth_hash = "5a0e54c7729330fb2b0b485c1336c26c99051d629ce7c73ecc4c9f779f349c0d";
    diesel::update(users::table.find(alice.id))
        .set(users::password.eq(password_hash))
        .execute(&mut *app.db())
        .expect("set the password hash");
    app.plant_session(&[
        ("_auth_user_id", &format!("\"{}\"", alice.id)),
        ("_auth_user_backend", "\"model\""),
        ("_auth_user_hash", &format!("\"{auth_hash}\"")),
    ])
    .await;

    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));
}

#[actix_web::test]
async fn a_session_naming_a_backend_porter_does_not_have_is_anonymous() {
    profile_with_backend_stored_as("acme::auth::ModelBackend")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn the_session_key_changes_at_login() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    // An attacker plants a session of their own in the victim's browser.
    let planted = app.plant_session(&[("cart", "\"3 apples\"")]).await;
    assert_eq!(app.session_rows(), 1);

    let res = alice.login(&app).await;
    assert_eq!(res.location(), Some("/profile"));
    let after = app.cookie("sessionid").expect("a session cookie");
    assert_ne!(after, planted, "login issues a new key");
    assert_eq!(app.session_rows(), 1, "the planted session row is gone");

    // The planted key is useless to the attacker.
    app.clear_cookies();
    app.set_cookie("sessionid", &planted);
    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn replaying_a_cookie_after_logout_is_anonymous() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let stolen = app.cookie("sessionid").expect("a session cookie");

    app.logout().await;
    app.set_cookie("sessionid", &stolen);
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::SEE_OTHER);
    assert_eq!(profile.location(), Some("/login?next=/profile"));
}

#[actix_web::test]
async fn anonymous_home_runs_no_query_for_the_user() {
    let app = spawn_app().await;
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.query_count(), 0);
    assert!(!home.loaded_user());
}

#[actix_web::test]
async fn the_profile_loads_the_user_exactly_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;

    // The guard loads the user; the handler's extractor reuses it.
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.loaded_user());
    assert!(profile.server_timing().contains("session;dur="));
    assert_eq!(profile.query_count(), 2, "one session read, one user read");
}

#[actix_web::test]
async fn a_request_that_does_not_change_the_session_writes_nothing() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let before: (String, time::PrimitiveDateTime) = sessions::table
        .select((sessions::data, sessions::expires_at))
        .first(&mut *app.db())
        .expect("the session");

    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.set_cookie("sessionid").is_none(), "no new cookie");

    let after: (String, time::PrimitiveDateTime) = sessions::table
        .select((sessions::data, sessions::expires_at))
        .first(&mut *app.db())
        .expect("the session");
    assert_eq!(before, after);
}

#[actix_web::test]
async fn get_logout_is_method_not_allowed() {
    let app = spawn_app().await;
    let res = app.get("/logout").await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert!(res.body.contains("Method not allowed"));
}

#[actix_web::test]
async fn the_cookie_engine_dances_too() {
    let app = crate::helpers::spawn_app_with(&[("SESSION_ENGINE", "cookie")]).await;
    let alice = TestUser::create(&app, "alice");
    let login = alice.login(&app).await;
    assert_eq!(login.location(), Some("/profile"));
    assert_eq!(
        app.session_rows(),
        0,
        "the cookie engine stores nothing server-side"
    );

    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));

    app.logout().await;
    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);
}
