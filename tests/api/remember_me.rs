//! "Remember me": a browser session by default, a long one when ticked.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use porter::{schema::sessions, sessions::models::now};

use crate::helpers::{TestUser, spawn_app};

fn session_lifetime_hours<S>(app: &crate::helpers::TestApp<S>) -> i64 {
    let expires_at: time::PrimitiveDateTime = sessions::table
        .select(sessions::expires_at)
        .first(&mut *app.db())
        .expect("a session");
    (expires_at - now()).whole_hours()
}

#[actix_web::test]
async fn without_remember_me_the_cookie_dies_with_the_browser() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = alice.login(&app).await;
    let cookie = res.set_cookie("sessionid").expect("a session cookie");
    assert_eq!(cookie.max_age(), None, "a browser session");
    // The server forgets it after SESSION_TTL (a day) without activity.
    assert!((23..=24).contains(&session_lifetime_hours(&app)));
}

#[actix_web::test]
async fn with_remember_me_the_session_lasts_two_weeks() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = alice.login_with(&app, &[("remember_me", "on")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let cookie = res.set_cookie("sessionid").expect("a session cookie");
    assert_eq!(
        cookie.max_age(),
        Some(actix_web::cookie::time::Duration::days(14))
    );
    assert!((14 * 24 - 1..=14 * 24).contains(&session_lifetime_hours(&app)));
    assert!(app.get("/sessions").await.body.contains("<dd>yes</dd>"));
}
