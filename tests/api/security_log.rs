//! The security log (`auth_events`): each event leaves one row with the
//! right user and actor, nothing secret, and the user reads their own on
//! `/security`.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use porter::{
    auth::audit::{self, Event, EventFilter},
    schema::auth_events,
};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// Every event recorded, oldest first.
pub fn events<S>(app: &TestApp<S>) -> Vec<Event> {
    let mut events =
        audit::search(&mut app.db(), &EventFilter::default(), 0, 1000).expect("the log");
    events.reverse();
    events
}

/// The kinds recorded, oldest first.
pub fn kinds<S>(app: &TestApp<S>) -> Vec<String> {
    events(app).into_iter().map(|event| event.kind).collect()
}

#[actix_web::test]
async fn a_sign_in_writes_one_row_by_the_user() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let events = events(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "login");
    assert_eq!(events[0].user_id, Some(alice.id));
    assert_eq!(events[0].actor_id, Some(alice.id));
    assert_eq!(events[0].detail, r#"{"backend":"model"}"#);
}

#[actix_web::test]
async fn a_failed_sign_in_keeps_the_typed_name_only_as_a_digest() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice");
    let typed = "my-secret-passw0rd-in-the-wrong-field";
    app.submit_form(
        "/login",
        "/login",
        &[("username", typed), ("password", "hunter2-guess")],
    )
    .await;
    let events = events(&app);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, "login_failed");
    assert_eq!(event.user_id, None);
    assert_eq!(event.actor_id, None);
    let row = format!("{event:?}");
    assert!(!row.contains(typed) && !row.contains("hunter2"), "{row}");
    assert_eq!(
        event.detail,
        audit::username_detail(&app.state.auth.username_digest(typed)).to_string()
    );
}

#[actix_web::test]
async fn throttled_sign_ins_are_logged_as_such() {
    let app = spawn_app().await;
    for _ in 0..6 {
        app.submit_form(
            "/login",
            "/login",
            &[("username", "victim"), ("password", "guess")],
        )
        .await;
    }
    let kinds = kinds(&app);
    assert_eq!(kinds.iter().filter(|k| *k == "login_failed").count(), 5);
    assert_eq!(kinds.last().map(String::as_str), Some("throttled"));
}

#[actix_web::test]
async fn sign_out_password_change_and_revocations_are_logged_for_the_user() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let phone = app.new_browser();
    alice.login(&phone).await;
    alice.login(&app).await;
    let phone_session: i32 = porter::schema::sessions::table
        .select(porter::schema::sessions::id)
        .order(porter::schema::sessions::id.asc())
        .first(&mut *app.db())
        .expect("the phone's session");
    let res = app
        .submit_form(
            "/sessions",
            &format!("/sessions/{phone_session}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    app.submit_form("/sessions", "/sessions/revoke-others", &[])
        .await;
    let new_password = "a much longer new password";
    app.submit_form(
        "/password",
        "/password",
        &[
            ("old_password", &alice.password),
            ("new_password1", new_password),
            ("new_password2", new_password),
        ],
    )
    .await;
    app.logout().await;
    assert_eq!(
        kinds(&app),
        [
            "login",
            "login",
            "session_revoked",
            "other_sessions_revoked",
            "password_changed",
            "logout"
        ]
    );
    assert!(
        events(&app)
            .iter()
            .all(|e| e.user_id == Some(alice.id) && e.actor_id == Some(alice.id))
    );
    let revoked = &events(&app)[2];
    assert_eq!(
        revoked.detail,
        format!(r#"{{"session":"{phone_session}"}}"#)
    );
}

#[actix_web::test]
async fn users_read_their_own_recent_activity_and_nobody_elses() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let bob = TestUser::create(&app, "bob");
    let other = app.new_browser();
    bob.login(&other).await;
    other.logout().await;
    let res = alice.login_with(&app, &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = app.get("/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Recent security activity"));
    assert_eq!(
        page.body.matches("<td>Signed in").count(),
        1,
        "{}",
        page.body
    );
    assert!(!page.body.contains("Signed out"), "bob's sign-out is bob's");
    let anonymous = app.new_browser();
    anonymous
        .get("/security")
        .await
        .assert_redirects_to_login("/security");
}

#[actix_web::test]
async fn old_events_are_pruned_and_recent_ones_kept() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    alice.login(&app.new_browser()).await;
    let first = events(&app)[0].id;
    let long_ago = porter::db::now() - time::Duration::days(100);
    diesel::update(auth_events::table.find(first))
        .set(auth_events::created_at.eq(long_ago))
        .execute(&mut *app.db())
        .expect("backdate");
    let pruned = audit::prune_older_than(
        &mut app.db(),
        std::time::Duration::from_secs(90 * 24 * 60 * 60),
    )
    .expect("prune");
    assert_eq!(pruned, 1);
    assert_eq!(kinds(&app), ["login"]);
}
