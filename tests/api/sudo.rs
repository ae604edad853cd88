//! Sudo mode: sensitive pages ask for proof again when the sign-in is older
//! than `SUDO_TTL`, and come back afterwards.

use actix_web::{
    dev::{Service, ServiceResponse},
    http::StatusCode,
};
use porter::auth::SessionKeys;

use crate::{
    helpers::{Request, TestApp, TestUser, spawn_app},
    two_factor::enable_two_factor,
};

/// Puts a signed-in session for `user` in the jar whose last proof was
/// `age_secs` ago: a browser left signed in.
pub async fn signed_in_since<S, B>(app: &TestApp<S>, user: &TestUser, age_secs: i64)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let stored_user = porter::auth::models::find_by_id(&mut app.db(), user.id)
        .expect("a query")
        .expect("the user");
    let json = |value: &str| serde_json::to_string(value).expect("JSON");
    let at = (time::OffsetDateTime::now_utc().unix_timestamp() - age_secs).to_string();
    app.plant_session(&[
        (SessionKeys::USER_ID, &json(&user.id.to_string())),
        (SessionKeys::BACKEND, &json("model")),
        (
            SessionKeys::HASH,
            &json(&app.state.auth.session_auth_hash(&stored_user)),
        ),
        (SessionKeys::VERIFIED_AT, &at),
    ])
    .await;
}

#[actix_web::test]
async fn a_stale_session_is_sent_to_sudo_and_back() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    signed_in_since(&app, &alice, 11 * 60).await;
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);

    let res = app.get("/password").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/sudo?next=%2Fpassword"));

    let wrong = app
        .submit_form(
            "/sudo?next=%2Fpassword",
            "/sudo",
            &[("password", "not it"), ("next", "/password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("did not match"));
    assert_eq!(app.get("/password").await.status, StatusCode::SEE_OTHER);

    let right = app
        .submit_form(
            "/sudo?next=%2Fpassword",
            "/sudo",
            &[("password", &alice.password), ("next", "/password")],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.location(), Some("/password"));
    assert_eq!(app.get("/password").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_fresh_sign_in_is_not_asked_again() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    assert_eq!(app.get("/password").await.status, StatusCode::OK);
    assert_eq!(app.get("/email").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn sensitive_posts_from_a_stale_session_change_nothing() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    signed_in_since(&app, &alice, 11 * 60).await;
    let csrf = app.get("/security").await.csrf_token();
    for path in [
        "/security/totp/setup",
        "/security/passkeys/begin",
        "/sessions/revoke-others",
    ] {
        let res = app
            .send(
                actix_web::test::TestRequest::post()
                    .uri(path)
                    .insert_header(("referer", "http://localhost:8080/security"))
                    .set_form([("csrf_token", csrf.as_str())]),
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            res.location(),
            Some("/sudo?next=%2Fsecurity"),
            "{path}: back to the page the form was on"
        );
    }
    assert!(
        porter::auth::totp::find(&mut app.db(), alice.id)
            .expect("a query")
            .is_none()
    );
}

#[actix_web::test]
async fn a_totp_code_answers_sudo_too() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;
    signed_in_since(&app, &alice, 11 * 60).await;
    let res = app
        .submit_form(
            "/sudo",
            "/sudo",
            &[("code", &authenticator.code(1)), ("next", "/email")],
        )
        .await;
    assert_eq!(res.location(), Some("/email"));
    assert_eq!(app.get("/email").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn sudo_never_sends_anyone_off_site() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    signed_in_since(&app, &alice, 11 * 60).await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
    ] {
        let res = app
            .submit_form(
                "/sudo",
                "/sudo",
                &[("password", &alice.password), ("next", next)],
            )
            .await;
        assert_eq!(res.location(), Some("/security"), "{next}");
    }
}

#[actix_web::test]
async fn an_anonymous_visitor_is_sent_to_sign_in_not_to_sudo() {
    let app = spawn_app().await;
    app.get("/password")
        .await
        .assert_redirects_to_login("/password");
    app.get("/sudo").await.assert_redirects_to_login("/sudo");
}
