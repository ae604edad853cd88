//! Login throttling, through the login form.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use porter::schema::login_attempts;
use time::PrimitiveDateTime;

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with};

async fn fail_login<S, B>(app: &TestApp<S>, username: &str) -> StatusCode
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    app.submit_form(
        "/login",
        "/login",
        &[("username", username), ("password", "wrong password")],
    )
    .await
    .status
}

/// Moves every counter `by` into the past, as if that much time had gone by.
fn backdate_counters<S>(app: &TestApp<S>, by: time::Duration) {
    let mut conn = app.db();
    let rows: Vec<(String, PrimitiveDateTime, Option<PrimitiveDateTime>)> = login_attempts::table
        .select((
            login_attempts::scope,
            login_attempts::last_failure_at,
            login_attempts::locked_until,
        ))
        .load(&mut *conn)
        .expect("the counters");
    for (scope, last, locked) in rows {
        diesel::update(login_attempts::table.find(scope))
            .set((
                login_attempts::last_failure_at.eq(last - by),
                login_attempts::locked_until.eq(locked.map(|locked| locked - by)),
            ))
            .execute(&mut *conn)
            .expect("backdate a counter");
    }
}

#[actix_web::test]
async fn after_five_failures_even_the_right_password_waits() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    for _ in 0..5 {
        assert_eq!(fail_login(&app, "alice").await, StatusCode::OK);
    }
    let res = alice.login(&app).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert!(res.body.contains("Too many failed sign-in attempts"));
    assert!(res.set_cookie("sessionid").is_none());
}

#[actix_web::test]
async fn unknown_usernames_are_throttled_the_same_way() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(fail_login(&app, "nobody").await, StatusCode::OK);
    }
    assert_eq!(
        fail_login(&app, "nobody").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn a_successful_login_clears_the_counter() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    for _ in 0..4 {
        fail_login(&app, "alice").await;
    }
    assert_eq!(alice.login(&app).await.status, StatusCode::SEE_OTHER);
    app.logout().await;
    for _ in 0..4 {
        assert_eq!(fail_login(&app, "alice").await, StatusCode::OK);
    }
    assert_eq!(alice.login(&app).await.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn the_wait_grows_with_failures_and_the_counter_decays() {
    let app = spawn_app().await;
    for _ in 0..5 {
        fail_login(&app, "alice").await;
    }
    assert_eq!(
        fail_login(&app, "alice").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Thirty seconds later, one more failure doubles the wait.
    let backdate = |by: time::Duration| backdate_counters(&app, by);
    backdate(time::Duration::seconds(31));
    assert_eq!(fail_login(&app, "alice").await, StatusCode::OK);
    let res = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "alice"), ("password", "x")],
        )
        .await;
    let retry_after: u64 = res
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .expect("a Retry-After header");
    assert!((31..=60).contains(&retry_after), "{retry_after}");

    // After a quiet hour the counter starts again.
    backdate(time::Duration::hours(2));
    for _ in 0..5 {
        assert_eq!(fail_login(&app, "alice").await, StatusCode::OK);
    }
}

#[actix_web::test]
async fn one_address_is_generous_to_an_office_but_stops_a_spray() {
    let app = spawn_app().await;
    app.set_peer("127.0.0.2:40000");
    let colleagues: Vec<TestUser> = ["ann", "ben", "cat"]
        .iter()
        .map(|name| TestUser::create(&app, name))
        .collect();
    for colleague in &colleagues {
        for _ in 0..3 {
            fail_login(&app, &colleague.username).await;
        }
        assert_eq!(colleague.login(&app).await.status, StatusCode::SEE_OTHER);
        app.logout().await;
    }

    // A spray of one guess per username from one address.
    for n in 0..41 {
        assert_eq!(
            fail_login(&app, &format!("victim{n}")).await,
            StatusCode::OK
        );
    }
    let fresh = app.new_browser();
    fresh.set_peer("127.0.0.2:40001");
    assert_eq!(
        colleagues[0].login(&fresh).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is throttled as a whole"
    );
    // The last colleague to sign in from that browser is still let in: it
    // holds their device cookie.
    assert_eq!(
        colleagues[2].login(&app).await.status,
        StatusCode::SEE_OTHER
    );

    // Another address is not affected.
    let elsewhere = app.new_browser();
    elsewhere.set_peer("127.0.0.3:40000");
    assert_eq!(
        colleagues[0].login(&elsewhere).await.status,
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn x_forwarded_for_is_ignored_unless_trusted() {
    let app = spawn_app().await;
    app.set_peer("127.0.0.2:40000");
    for n in 0..6 {
        let res = app
            .send(
                actix_web::test::TestRequest::get()
                    .uri("/login")
                    .insert_header(("x-forwarded-for", format!("10.0.0.{n}"))),
            )
            .await;
        let token = res.csrf_token();
        let res = app
            .send(
                actix_web::test::TestRequest::post()
                    .uri("/login")
                    .insert_header(("x-forwarded-for", format!("10.0.0.{n}")))
                    .set_form([
                        ("csrf_token", token.as_str()),
                        ("username", "alice"),
                        ("password", "x"),
                    ]),
            )
            .await;
        let expected = if n < 5 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(res.status, expected, "attempt {n}");
    }

    let trusting = spawn_app_with(&[("TRUST_X_FORWARDED_FOR", "true")]).await;
    trusting.set_peer("127.0.0.2:40000");
    for n in 0..6 {
        let token = trusting.get("/login").await.csrf_token();
        let res = trusting
            .send(
                actix_web::test::TestRequest::post()
                    .uri("/login")
                    .insert_header(("x-forwarded-for", format!("192.0.2.7, 10.0.0.{n}")))
                    .set_form([
                        ("csrf_token", token.as_str()),
                        ("username", "alice"),
                        ("password", "x"),
                    ]),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "each proxy-reported address counts alone"
        );
    }
}
