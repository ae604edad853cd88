//! Security notices to the confirmed address: a changed password, and a
//! sign-in from a browser that never signed in as the user before.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn a_password_change_sends_a_notice_to_the_confirmed_address() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    alice.login(&app).await;
    let res = app
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", &alice.password),
                ("new_password1", "a brand new passphrase"),
                ("new_password2", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"));
    let mail = app.mail_to("alice@example.com").await;
    let notice = mail
        .iter()
        .find(|mail| mail.subject == "Your password was changed")
        .expect("a notice");
    assert!(notice.text.contains("If this was not you"));
    assert!(notice.text.contains("http://localhost:8080/password/reset"));
}

#[actix_web::test]
async fn a_login_from_a_new_device_sends_a_notice_and_a_known_device_does_not() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    let laptop = app.new_browser();
    let res = alice.login(&laptop).await;
    assert_eq!(res.location(), Some("/profile"));
    let mail = app.mail_to("alice@example.com").await;
    assert_eq!(mail.len(), 1, "one notice");
    assert_eq!(mail[0].subject, "New sign-in to your account");
    assert!(mail[0].text.contains("/sessions"));

    // The laptop keeps its device cookie: signing in again is no news.
    laptop.logout().await;
    assert!(laptop.cookie("device").is_some());
    assert_eq!(alice.login(&laptop).await.location(), Some("/profile"));
    assert_eq!(app.mail_to("alice@example.com").await.len(), 1);

    // A phone is a new device.
    assert_eq!(
        alice.login(&app.new_browser()).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.mail_to("alice@example.com").await.len(), 2);
}

#[actix_web::test]
async fn an_unconfirmed_address_gets_no_notice() {
    let app = spawn_app().await;
    app.submit_form(
        "/signup",
        "/signup",
        &[
            ("username", "grace"),
            ("email", "grace@example.com"),
            ("password1", "a sign-up passphrase"),
            ("password2", "a sign-up passphrase"),
        ],
    )
    .await;
    let grace = TestUser {
        username: "grace".into(),
        password: "a sign-up passphrase".into(),
        id: 0,
    };
    assert_eq!(
        grace.login(&app.new_browser()).await.location(),
        Some("/profile")
    );
    let mail = app.mail_to("grace@example.com").await;
    assert_eq!(mail.len(), 1, "the confirmation link only");
    assert_eq!(mail[0].subject, "Confirm your email address");
}
