//! A failed login: one generic answer, and nothing stored.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn an_unknown_user_sees_the_same_page_as_a_wrong_password() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice");

    let wrong_password = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "alice"), ("password", "nope-nope")],
        )
        .await;
    let unknown_user = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "mallory"), ("password", "nope-nope")],
        )
        .await;

    assert_eq!(wrong_password.status, StatusCode::OK);
    assert_eq!(unknown_user.status, wrong_password.status);
    // The pages differ only in the username echoed back and the CSRF mask.
    let normalise = |body: &str, name: &str| {
        body.replace(name, "NAME")
            .split('\n')
            .filter(|line| !line.contains("csrf_token"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        normalise(&wrong_password.body, "alice"),
        normalise(&unknown_user.body, "mallory")
    );
    assert!(
        wrong_password
            .body
            .contains("Please enter a correct username and password")
    );
}

#[actix_web::test]
async fn a_failed_login_creates_no_session() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = app
        .submit_form(
            "/login",
            "/login",
            &[
                ("username", &alice.username),
                ("password", "wrong-password"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.set_cookie("sessionid").is_none());
    assert_eq!(app.session_rows(), 0);
}

#[actix_web::test]
async fn usernames_are_matched_without_regard_to_case() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "Alice");
    let res = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "aLICE"), ("password", &alice.password)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn empty_fields_re_render_the_form_with_a_message() {
    let app = spawn_app().await;
    let res = app
        .submit_form("/login", "/login", &[("username", "alice")])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body
            .contains("Enter both your username and your password.")
    );
    assert!(res.body.contains("value=\"alice\""), "the username is kept");
}

#[actix_web::test]
async fn an_inactive_user_cannot_sign_in() {
    use diesel::prelude::*;
    use porter::schema::users;

    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    diesel::update(users::table.find(alice.id))
        .set(users::is_active.eq(false))
        .execute(&mut *app.db())
        .expect("deactivate");
    let res = alice.login(&app).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body
            .contains("Please enter a correct username and password")
    );
}
