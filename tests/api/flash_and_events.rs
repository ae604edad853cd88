//! Flash messages and login events.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, http::StatusCode};
use porter::{
    auth::signals::{AuthEvent, AuthListener},
    startup::AppState,
};

use crate::helpers::{TestUser, spawn_app, spawn_app_from, test_settings};

#[actix_web::test]
async fn signing_out_says_so_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    app.logout().await;
    let home = app.get("/").await;
    assert!(home.body.contains("You have been signed out."));
    let again = app.get("/").await;
    assert!(!again.body.contains("You have been signed out."));
}

#[actix_web::test]
async fn the_messages_cookie_is_cleared_once_and_then_left_alone() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice").login(&app).await;
    app.logout().await;

    // The message is shown, and its cookie removed.
    let shown = app.get("/").await;
    assert!(shown.body.contains("You have been signed out."));
    let removal = shown.set_cookie("messages").expect("the cookie removed");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(time::Duration::ZERO));

    // A browser without the cookie is not told to remove it again.
    for path in ["/", "/login", "/healthz"] {
        let page = app.get(path).await;
        assert_eq!(page.set_cookie("messages"), None, "{path}");
    }
}

/// Records every event, as a fork's audit log would.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl AuthListener for Recorder {
    fn on_event(&self, event: &AuthEvent<'_>, _req: &HttpRequest) {
        let line = match event {
            AuthEvent::LoggedIn { user_id, .. } => format!("logged in {user_id}"),
            AuthEvent::LoginFailed { username } => format!("failed {username}"),
            AuthEvent::LoggedOut { user_id } => format!("logged out {user_id:?}"),
        };
        self.0.lock().expect("not poisoned").push(line);
    }
}

#[actix_web::test]
async fn listeners_hear_logins_failures_and_logouts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let recorder = Arc::new(Recorder::default());
    let state = AppState::new(test_settings(&dir, &[]))
        .await
        .expect("state")
        .with_auth_listener(recorder.clone());
    let app = spawn_app_from(state, dir).await;
    let alice = TestUser::create(&app, "alice");

    let failed = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "alice"), ("password", "wrong-one")],
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK);
    alice.login(&app).await;
    app.logout().await;

    let events = recorder.0.lock().expect("not poisoned").clone();
    assert_eq!(
        events,
        [
            "failed alice".to_owned(),
            format!("logged in {}", alice.id),
            format!("logged out Some({})", alice.id),
        ]
    );
}
