//! The hot path does only the work a page needs: queries per route, read
//! from the `Server-Timing` header.

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn each_route_runs_only_the_queries_it_needs() {
    let app = spawn_app().await;
    // Anonymous pages never reach the database for the user.
    for (path, queries) in [
        ("/", 0),
        ("/login", 0),
        ("/signup", 0),
        ("/static/porter.css", 0),
        ("/healthz", 1),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.query_count(), queries, "anonymous {path}");
        assert!(!res.loaded_user(), "anonymous {path}");
    }

    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    // Signed in: one session read, one user read, no writes.
    for (path, queries) in [
        ("/", 2),
        ("/profile", 2),
        ("/password", 2),
        ("/sessions", 3),
        // The user's recent events.
        // The session, the user, then one each: passkeys, TOTP, recovery
        // codes, recent events.
        ("/security", 6),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.query_count(), queries, "signed-in {path}");
        assert!(res.loaded_user(), "signed-in {path}");
    }
    // The staff area: the permissions are read once, however many are asked.
    let boss = TestUser::create(&app, "boss");
    porter::auth::models::set_superuser(&mut app.db(), boss.id, true).expect("promote");
    let staff = app.new_browser();
    boss.login(&staff).await;
    for (path, queries) in [
        // session, user, permissions, a page of users
        ("/staff/users".to_owned(), 4),
        // ... the target and what they hold (6), their sessions, their events
        (format!("/staff/users/{}", alice.id), 11),
        // ... a page of events
        ("/staff/events".to_owned(), 4),
    ] {
        let res = staff.get(&path).await;
        assert_eq!(res.query_count(), queries, "staff {path}");
    }
    // A page that does not ask for the user does not load it.
    let css = app.get("/static/porter.css").await;
    assert_eq!(css.query_count(), 1, "the session is read, the user is not");
    assert!(!css.loaded_user());
}

#[actix_web::test]
async fn force_login_signs_in_without_the_form() {
    let app = spawn_app().await;
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    TestUser::create(&app, "alice");
    app.force_login("alice").await;
    let page = app.get("/profile").await;
    assert_eq!(page.status, actix_web::http::StatusCode::OK);
    assert_eq!(page.query_count(), 2);
}
