//! Changing the password keeps this session and ends every other, on every
//! engine.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app_with};

async fn password_change_ends_other_sessions(engine: &str) {
    let settings = [("SESSION_ENGINE", engine)];
    let laptop = spawn_app_with(&settings).await;
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&laptop).await;
    alice.login(&phone).await;
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);

    let res = laptop
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
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some("/profile"));

    let profile = laptop.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK, "this session stays");
    assert!(profile.body.contains("Your password was changed"));
    assert_eq!(
        phone.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "the other session ends"
    );

    // The new password works, the old one does not.
    let tablet = laptop.new_browser();
    let old = TestUser {
        password: alice.password.clone(),
        ..alice.clone()
    };
    assert_eq!(old.login(&tablet).await.status, StatusCode::OK);
    let new = TestUser {
        password: "a brand new passphrase".into(),
        ..alice
    };
    assert_eq!(new.login(&tablet).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn a_password_change_ends_other_sessions_on_the_db_engine() {
    password_change_ends_other_sessions("db").await;
}

#[actix_web::test]
async fn a_password_change_ends_other_sessions_on_the_cookie_engine() {
    password_change_ends_other_sessions("cookie").await;
}

#[actix_web::test]
async fn a_wrong_old_password_changes_nothing() {
    let app = spawn_app_with(&[]).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let res = app
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", "not my password"),
                ("new_password1", "a brand new passphrase"),
                ("new_password2", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body
            .contains("Your old password was entered incorrectly")
    );
    app.logout().await;
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn the_password_page_requires_login() {
    let app = spawn_app_with(&[]).await;
    let res = app.get("/password").await;
    assert_eq!(res.location(), Some("/login?next=/password"));
}
