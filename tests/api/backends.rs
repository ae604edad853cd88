//! Authentication backends a fork adds: asked after the configured ones,
//! given every field of the login form, stored in the session by name.

use std::sync::Arc;

use actix_web::http::StatusCode;
use porter::{
    auth::{AuthBackend, AuthError, Credentials, User, models},
    db::DbPool,
    startup::AppState,
    testing::{spawn_app_from, test_settings},
};

use crate::helpers::TestUser;

/// Signs in whoever presents `token` as the `token` field: a demo backend.
struct FixedTokenBackend {
    token: &'static str,
    username: &'static str,
}

impl AuthBackend for FixedTokenBackend {
    fn name(&self) -> &'static str {
        "fixed-token"
    }

    fn authenticate(
        &self,
        pool: &DbPool,
        credentials: &Credentials,
    ) -> Result<Option<User>, AuthError> {
        if credentials.get("token") != Some(self.token) {
            return Ok(None);
        }
        Ok(models::find_by_username(&mut *pool.get()?, self.username)?)
    }

    fn get_user(&self, pool: &DbPool, user_id: i32) -> Result<Option<User>, AuthError> {
        Ok(models::find_by_id(&mut *pool.get()?, user_id)?.filter(|user| user.is_active))
    }
}

#[actix_web::test]
async fn a_backend_with_fields_of_its_own_signs_in_through_the_login_view() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = AppState::new(test_settings(&dir, &[]))
        .await
        .expect("the app state builds")
        .with_auth_backend(Arc::new(FixedTokenBackend {
            token: "open-sesame",
            username: "alice",
        }));
    let app = spawn_app_from(state, dir).await;
    TestUser::create(&app, "alice");

    let wrong = app
        .submit_form("/login", "/login", &[("token", "not it")])
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(
        wrong
            .body
            .contains("Please enter a correct username and password")
    );

    let res = app
        .submit_form("/login", "/login", &[("token", "open-sesame")])
        .await;
    assert_eq!(res.location(), Some("/profile"));
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));

    // The session names the backend that vouched for the user.
    let key = app.cookie("sessionid").expect("a session cookie");
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["session", "show", &key])
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", porter::testing::TEST_SECRET_KEY)
        .env("DEBUG", "true")
        .output()
        .expect("porter session show");
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("fixed-token"),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
}

#[actix_web::test]
async fn a_repeated_field_is_a_bad_request() {
    let app = crate::helpers::spawn_app().await;
    let token = app.get("/login").await.csrf_token();
    let res = app
        .post_form(
            "/login",
            &[
                ("csrf_token", token.as_str()),
                ("token", "a"),
                ("token", "b"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("sent more than once"));
}
