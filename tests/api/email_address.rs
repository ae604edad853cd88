//! A user's e-mail address: given at sign-up, confirmed by a mailed link,
//! changed only with the password and only once the new address is
//! confirmed.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn signing_up_with_an_address_mails_a_link_that_confirms_it() {
    let app = spawn_app().await;
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "grace"),
                ("email", "Grace@Example.COM"),
                ("password1", "a sign-up passphrase"),
                ("password2", "a sign-up passphrase"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"), "{}", res.body);
    let profile = app.get("/profile").await;
    assert!(
        profile.body.contains("Grace@example.com (not confirmed"),
        "{}",
        profile.body
    );

    let mail = app.mail_to("Grace@example.com").await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject, "Confirm your email address");
    assert!(mail[0].html.contains("Confirm this address"));
    let link = mail[0]
        .path("/email/confirm/")
        .expect("a confirmation link");

    let res = app.get(&link).await;
    assert_eq!(res.location(), Some("/profile"));
    assert_eq!(
        res.headers
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let profile = app.get("/profile").await;
    assert!(profile.body.contains("is confirmed"));
    assert!(profile.body.contains("Grace@example.com (confirmed)"));

    let again = app.new_browser().get(&link).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(
        again.body.contains("Confirmation unsuccessful"),
        "the link works once"
    );
}

#[actix_web::test]
async fn sign_up_refuses_an_address_another_account_has_in_any_case() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    let res = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "mallory"),
                ("email", "ALICE@example.com"),
                ("password1", "a sign-up passphrase"),
                ("password2", "a sign-up passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body
            .contains("An account with this email address already exists.")
    );
    assert_eq!(
        app.submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "mallory"),
                ("password1", "a sign-up passphrase"),
                ("password2", "a sign-up passphrase"),
            ],
        )
        .await
        .location(),
        Some("/profile"),
        "the address is optional, and the refused attempt left no account behind"
    );
}

#[actix_web::test]
async fn an_address_changes_only_with_the_password_and_once_the_new_one_is_confirmed() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    alice.login(&app).await;
    app.deliver_mail().await;

    let wrong = app
        .submit_form(
            "/email",
            "/email",
            &[("email", "alice@new.example"), ("password", "not hers")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("Your password was entered incorrectly"));
    assert!(app.mail_to("alice@new.example").await.is_empty());

    let res = app
        .submit_form(
            "/email",
            "/email",
            &[
                ("email", "alice@new.example"),
                ("password", &alice.password),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"), "{}", res.body);
    let profile = app.get("/profile").await;
    assert!(
        profile.body.contains("alice@example.com (confirmed)"),
        "not changed yet"
    );
    assert!(profile.body.contains("changing to alice@new.example"));

    let notice: Vec<_> = app
        .mail_to("alice@example.com")
        .await
        .into_iter()
        .filter(|mail| mail.subject.contains("address"))
        .collect();
    assert_eq!(notice.len(), 1, "the old address is told");
    assert_eq!(notice[0].subject, "Your email address is being changed");
    assert!(notice[0].text.contains("alice@new.example"));
    assert!(notice[0].text.contains("If this was not you"));

    let confirm = app.mail_to("alice@new.example").await;
    let link = confirm[0].path("/email/confirm/").expect("a link");
    assert_eq!(app.get(&link).await.location(), Some("/profile"));
    let profile = app.get("/profile").await;
    assert!(
        profile.body.contains("alice@new.example (confirmed)"),
        "{}",
        profile.body
    );

    // Reset links now go to the new address only.
    let anonymous = app.new_browser();
    anonymous
        .submit_form(
            "/password/reset",
            "/password/reset",
            &[("email", "alice@example.com")],
        )
        .await;
    anonymous
        .submit_form(
            "/password/reset",
            "/password/reset",
            &[("email", "alice@new.example")],
        )
        .await;
    let resets = |mail: Vec<porter::testing::mail::ReceivedMail>| {
        mail.iter()
            .filter(|mail| mail.subject == "Reset your password")
            .count()
    };
    assert_eq!(
        resets(app.mail_to("alice@example.com").await),
        0,
        "none to the old one"
    );
    assert_eq!(resets(app.mail_to("alice@new.example").await), 1);
}

#[actix_web::test]
async fn a_newer_change_kills_the_older_link_and_a_taken_address_is_refused() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "bob", "bob@example.com");
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    alice.login(&app).await;
    let change = |email: &'static str| {
        let app = &app;
        let password = alice.password.clone();
        async move {
            app.submit_form(
                "/email",
                "/email",
                &[("email", email), ("password", &password)],
            )
            .await
        }
    };

    let taken = change("BOB@example.com").await;
    assert_eq!(taken.status, StatusCode::OK);
    assert!(
        taken
            .body
            .contains("An account with this email address already exists.")
    );

    change("first@example.com").await;
    change("second@example.com").await;
    let first = app.mail_to("first@example.com").await[0]
        .path("/email/confirm/")
        .expect("a link");
    let res = app.get(&first).await;
    assert!(res.body.contains("Confirmation unsuccessful"), "superseded");
    let second = app.mail_to("second@example.com").await[0]
        .path("/email/confirm/")
        .expect("a link");
    assert_eq!(app.get(&second).await.location(), Some("/profile"));
    assert!(
        app.get("/profile")
            .await
            .body
            .contains("second@example.com (confirmed)")
    );
}

#[actix_web::test]
async fn the_email_page_requires_login() {
    let app = spawn_app().await;
    app.get("/email").await.assert_redirects_to_login("/email");
}

#[actix_web::test]
async fn the_password_check_of_an_address_change_is_throttled_with_the_password_form() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    // Wrong passwords on the address form and on the password form share
    // one counter per user: neither is a way around the other.
    for n in 0..3 {
        let res = app
            .submit_form(
                "/email",
                "/email",
                &[
                    ("email", "alice@example.com"),
                    ("password", &format!("wrong {n}")),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.body.contains("entered incorrectly"));
    }
    for n in 0..2 {
        let res = app
            .submit_form(
                "/password",
                "/password",
                &[
                    ("old_password", &format!("wrong {n}")),
                    ("new_password1", "another fine passphrase"),
                    ("new_password2", "another fine passphrase"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let res = app
        .submit_form(
            "/email",
            "/email",
            &[
                ("email", "alice@example.com"),
                ("password", &alice.password),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.body.contains("Too many wrong passwords"));
}
