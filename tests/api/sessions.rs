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
