//! Where login sends the user: a safe `next`, or the profile.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

async fn login_with_next(next: &str) -> Option<String> {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = alice.login_with(&app, &[("next", next)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    res.location().map(str::to_owned)
}

#[actix_web::test]
async fn a_same_site_next_is_honoured() {
    assert_eq!(
        login_with_next("/profile?tab=1").await.as_deref(),
        Some("/profile?tab=1")
    );
}

#[actix_web::test]
async fn an_off_site_next_is_refused() {
    for next in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        assert_eq!(
            login_with_next(next).await.as_deref(),
            Some("/profile"),
            "{next}"
        );
    }
}

#[actix_web::test]
async fn login_required_sends_the_path_and_query_as_next() {
    let app = spawn_app().await;
    let res = app.get("/profile?tab=1").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login?next=/profile%3Ftab%3D1"));

    // The login form carries it on.
    let form = app.get("/login?next=/profile%3Ftab%3D1").await;
    assert!(form.body.contains(r#"name="next" value="/profile?tab=1""#));
}
