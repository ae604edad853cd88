//! Bad input gets a readable 4xx page, never a 500.

use actix_web::{http::StatusCode, test::TestRequest};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app().await;
    let token = app.get("/login").await.csrf_token();
    let huge = "x".repeat(10 * 1024 * 1024);
    let res = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", &huge),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.body.contains("Request too large"));
}

#[actix_web::test]
async fn a_malformed_form_is_400() {
    let app = spawn_app().await;
    let token = app.get("/login").await.csrf_token();
    let form_post = |body: &'static [u8]| {
        TestRequest::post()
            .uri("/login")
            .insert_header(("x-csrftoken", token.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body)
    };

    let repeated = app
        .send(form_post(b"username=a&username=b&password=x"))
        .await;
    assert_eq!(repeated.status, StatusCode::BAD_REQUEST);
    assert!(repeated.body.contains("Bad request"));

    // Invalid UTF-8 is decoded lossily: the form comes back, no error.
    let not_utf8 = app.send(form_post(b"username=%FF%FE&password=x")).await;
    assert_eq!(not_utf8.status, StatusCode::OK);
    assert!(
        not_utf8
            .body
            .contains("Please enter a correct username and password")
    );

    let res = app
        .send(
            TestRequest::post()
                .uri("/login")
                .insert_header(("x-csrftoken", token.as_str()))
                .insert_header(("content-type", "application/json"))
                .set_payload(r#"{"username":"a"}"#),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_unknown_page_is_a_readable_404() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("Page not found"));
}

#[actix_web::test]
async fn html_in_a_username_is_escaped() {
    let app = spawn_app().await;
    let res = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "<script>alert(1)</script>"), ("password", "x")],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(!res.body.contains("<script>alert(1)</script>"));
    assert!(res.body.contains("&#60;script&#62;") || res.body.contains("&lt;script&gt;"));
}

#[actix_web::test]
async fn static_assets_are_cached_and_revalidated() {
    let app = spawn_app().await;
    let css = app.get("/static/porter.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers.get("cache-control").is_some());
    let etag = css.headers.get("etag").expect("an ETag").clone();
    let again = app
        .send(
            TestRequest::get()
                .uri("/static/porter.css")
                .insert_header(("if-none-match", etag)),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}
