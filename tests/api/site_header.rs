//! The header every page shows: who is signed in, where the visitor is,
//! and a way out.

use actix_web::http::StatusCode;

use crate::helpers::{TestUser, spawn_app};

/// The `<header>` of a page.
fn header_of(body: &str) -> &str {
    let start = body.find("<header").expect("a header");
    let end = body.find("</header>").expect("its end");
    &body[start..end]
}

#[actix_web::test]
async fn a_visitor_is_offered_sign_in_and_sign_up_and_no_cookie() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    let header = header_of(&page.body);
    assert!(
        header.contains(r#"<a href="/login">Sign in</a>"#),
        "{header}"
    );
    assert!(header.contains(r#"<a href="/signup">Sign up</a>"#));
    assert!(!header.contains("Sign out"));
    assert!(
        page.set_cookie("csrftoken").is_none(),
        "a visitor's page starts no CSRF cookie"
    );
    assert!(
        page.body
            .contains(r##"<a class="skip-link" href="#content">"##)
    );
    assert!(page.body.contains(r#"<main id="content""#));

    let login = app.get("/login").await;
    assert!(
        header_of(&login.body).contains(r#"<a href="/login" aria-current="page">Sign in</a>"#),
        "the page shown is marked"
    );
}

#[actix_web::test]
async fn a_signed_in_user_sees_their_name_sessions_and_a_sign_out_form() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;

    let page = app.get("/sessions").await;
    let header = header_of(&page.body);
    assert!(header.contains("alice</a>"), "{header}");
    assert!(header.contains(r#"<a href="/sessions" aria-current="page">Sessions</a>"#));
    assert!(!header.contains("Sign in"));
    assert!(header.contains(r#"<form method="post" action="/logout""#));
    assert!(header.contains(r#"name="csrf_token" value=""#));

    // The header's form signs out: its token is the page's.
    let res = app.submit_form("/sessions", "/logout", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn an_error_page_costs_no_user_query() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice").login(&app).await;
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.loaded_user(), "the database may be what failed");
    assert!(header_of(&page.body).contains(r#"<a href="/">Home</a>"#));
}
