//! Sign-up: every validation rule, through the form.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

async fn signup_errors(username: &str, password1: &str, password2: &str) -> String {
    let app = spawn_app().await;
    TestUser::create(&app, "taken");
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", username),
                ("password1", password1),
                ("password2", password2),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "the form comes back");
    assert!(res.body.contains("Please correct the"), "{}", res.body);
    assert_eq!(app.session_rows(), 0, "nobody is signed in");
    res.body
}

#[actix_web::test]
async fn each_password_rule_is_enforced_beside_its_field() {
    let cases = [
        ("bob", "Xk3#", "too short"),
        ("bob", "4817302956", "entirely numeric"),
        ("bob", "password123", "too common"),
        ("margaret", "margaret1", "too similar to the username"),
        ("bob", "unrelated words here", "didn&#39;t match"),
    ];
    for (username, password, expected) in cases {
        let password2 = if expected.contains("match") {
            "something else"
        } else {
            password
        };
        let body = signup_errors(username, password, password2).await;
        let shown = body.contains(expected) || body.contains(&expected.replace("&#39;", "'"));
        assert!(shown, "{expected}: {body}");
    }
    let huge = "x1".repeat(3000);
    assert!(
        signup_errors("bob", &huge, &huge)
            .await
            .contains("too long")
    );
}

#[actix_web::test]
async fn usernames_are_checked_and_unique_without_regard_to_case() {
    let body = signup_errors("TAKEN", "a fine passphrase", "a fine passphrase").await;
    assert!(body.contains("A user with that username already exists."));
    let body = signup_errors(
        "no spaces allowed",
        "a fine passphrase",
        "a fine passphrase",
    )
    .await;
    assert!(body.contains("letters, digits and @ . + - _ only"));
}

#[actix_web::test]
async fn entered_values_are_kept_but_passwords_are_not() {
    let body = signup_errors("newcomer", "4817302956", "4817302956").await;
    assert!(body.contains(r#"value="newcomer""#));
    assert!(!body.contains("4817302956"));
}

#[actix_web::test]
async fn a_valid_sign_up_signs_the_user_in() {
    let app = spawn_app().await;
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "  newcomer "),
                ("password1", "a fine passphrase"),
                ("password2", "a fine passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/profile"));
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(
        profile.body.contains("<h1>newcomer</h1>"),
        "the name is trimmed"
    );
    assert!(profile.body.contains("Your account has been created"));
}

#[actix_web::test]
async fn signed_in_visitors_skip_the_login_and_signup_forms() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    assert_eq!(app.get("/signup").await.location(), Some("/profile"));
    assert_eq!(app.get("/login").await.location(), Some("/profile"));
    assert_eq!(
        app.get("/login?next=/sessions").await.location(),
        Some("/sessions")
    );
    assert_eq!(
        app.get("/login?next=//evil.example").await.location(),
        Some("/profile")
    );
}

#[actix_web::test]
async fn every_error_shows_in_one_round_each_tied_to_its_field() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "taken", "taken@example.com");
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "TAKEN"),
                ("email", "Taken@Example.com"),
                ("password1", "taken"),
                ("password2", "something else"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    for (field, error) in [
        ("username", "A user with that username already exists."),
        ("email", "already"),
        ("password1", "too short"),
        ("password2", "match"),
    ] {
        let described = format!(r#"aria-describedby="id_{field}_help id_{field}_errors""#);
        assert!(res.body.contains(&described), "{field} names its errors");
        let errors = res
            .body
            .split(&format!(r#"<div id="id_{field}_errors">"#))
            .nth(1)
            .unwrap_or_else(|| panic!("the errors of {field}"));
        let errors = &errors[..errors.find("</div>").expect("their end")];
        assert!(errors.contains(error), "{field}: {errors}");
    }
    assert_eq!(app.session_rows(), 0, "nobody is signed in");
}

#[actix_web::test]
async fn every_field_is_checked_in_one_round_and_each_error_shows_beside_its_field() {
    let app = spawn_app().await;
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "bad name"),
                ("email", "not-an-address"),
                ("password1", "short"),
                ("password2", "other"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "the form comes back");
    let body = res.body.replace("&#39;", "'");
    for (field, error) in [
        ("username", "letters, digits and @ . + - _ only."),
        ("email", "Enter a valid email address."),
        ("password1", "This password is too short."),
        ("password2", "The two password fields didn't match."),
    ] {
        // Each error follows its own input, before the next field's label.
        let input = body
            .find(&format!(r#"name="{field}""#))
            .unwrap_or_else(|| panic!("a {field} input: {body}"));
        let beside = &body[input..];
        let beside = &beside[..beside.find("<label").unwrap_or(beside.len())];
        assert!(beside.contains(error), "{field}: {error} in {beside}");
    }
    assert!(
        body.contains(r#"value="not-an-address""#),
        "typed values stay"
    );
    assert_eq!(app.session_rows(), 0, "nobody is signed in");
}
