//! The session cookie and what the server does with it.

use actix_web::{cookie::SameSite, http::StatusCode};
use diesel::prelude::*;
use porter::schema::{sessions, users};

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn the_session_cookie_is_http_only_lax_secure_and_opaque() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = alice.login(&app).await;
    let cookie = res.set_cookie("sessionid").expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(
        cookie.secure(),
        Some(true),
        "COOKIE_SECURE is on outside debug"
    );
    assert_eq!(cookie.path(), Some("/"));
    assert!(!cookie.value().contains("alice"));

    // The table stores a hash of the key, never the key itself.
    let key_hash: String = sessions::table
        .select(sessions::key_hash)
        .first(&mut *app.db())
        .expect("a session row");
    assert!(!cookie.value().contains(&key_hash));
    assert_eq!(key_hash.len(), 64);
}

#[actix_web::test]
async fn a_tampered_cookie_is_anonymous_not_an_error() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");

    // Flip the last character of the key.
    let mut tampered = cookie.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    app.set_cookie("sessionid", &tampered);
    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);

    app.set_cookie("sessionid", "garbage");
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("You are not signed in"));
}

#[actix_web::test]
async fn an_expired_session_is_anonymous() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let past = porter::sessions::models::now() - time::Duration::minutes(1);
    diesel::update(sessions::table)
        .set(sessions::expires_at.eq(past))
        .execute(&mut *app.db())
        .expect("expire the session");

    let res = app.get("/profile").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login?next=/profile"));
}

#[actix_web::test]
async fn a_password_changed_elsewhere_ends_the_session() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;

    let new_hash = app.state.hasher.hash("a brand new password").expect("hash");
    diesel::update(users::table.find(alice.id))
        .set(users::password.eq(new_hash))
        .execute(&mut *app.db())
        .expect("change the password");

    let res = app.get("/profile").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(app.session_rows(), 0, "the stale session is flushed");
}

#[actix_web::test]
async fn a_deactivated_user_is_signed_out_on_the_next_request() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    diesel::update(users::table.find(alice.id))
        .set(users::is_active.eq(false))
        .execute(&mut *app.db())
        .expect("deactivate");

    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.session_rows(), 0);
}

#[actix_web::test]
async fn deleting_a_user_deletes_their_sessions() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    assert_eq!(app.session_rows(), 1);
    diesel::delete(users::table.find(alice.id))
        .execute(&mut *app.db())
        .expect("delete the user");
    assert_eq!(app.session_rows(), 0, "ON DELETE CASCADE");
}

/// The session a login leaves, planted by hand, with `login_time` as its
/// login time (`None`: a session from before login times were noted).
async fn profile_for_a_session_signed_in_at(login_time: Option<i64>) -> (i32, String) {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let user = porter::auth::models::find_by_id(&mut app.db(), alice.id)
        .expect("a user query")
        .expect("alice exists");
    let json = |value: &str| serde_json::to_string(value).expect("a JSON string");
    let hash = json(&app.state.auth.session_auth_hash(&user));
    let id = json(&alice.id.to_string());
    let login_time = login_time.map(|at| at.to_string());
    let mut entries = vec![
        ("_auth_user_id", id.as_str()),
        ("_auth_user_backend", "\"model\""),
        ("_auth_user_hash", hash.as_str()),
    ];
    if let Some(at) = &login_time {
        entries.push(("_auth_login_time", at));
    }
    app.plant_session(&entries).await;
    let status = app.get("/profile").await.status;
    let data: String = sessions::table
        .select(sessions::data)
        .first(&mut *app.db())
        .unwrap_or_default();
    (i32::from(status.as_u16()), data)
}

#[actix_web::test]
async fn a_session_signed_in_longer_ago_than_session_max_age_is_anonymous() {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Its row would live another hour: the login time alone ends it.
    let (status, data) = profile_for_a_session_signed_in_at(Some(now - 31 * 24 * 3600)).await;
    assert_eq!(status, 303);
    assert_eq!(data, "", "the session is flushed");
    let (status, _) = profile_for_a_session_signed_in_at(Some(now - 29 * 24 * 3600)).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_session_from_before_login_times_stays_signed_in_and_its_lifetime_starts_now() {
    let (status, data) = profile_for_a_session_signed_in_at(None).await;
    assert_eq!(status, 200, "no one is signed out by the upgrade");
    let data: serde_json::Value = serde_json::from_str(&data).expect("JSON data");
    let stamped = data["_auth_login_time"].as_i64().expect("a login time");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - 5..=now).contains(&stamped));
}
