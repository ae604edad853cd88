//! Security properties: CSRF in depth, headers, secret rotation, password
//! hash upgrades, timing, bad input.

use actix_web::{http::StatusCode, test::TestRequest};
use diesel::prelude::*;
use porter::{
    auth::{PasswordHasher, models},
    schema::{sessions, users},
};

use crate::helpers::{TEST_SECRET_KEY, TestUser, spawn_app, spawn_sibling};

#[actix_web::test]
async fn a_cross_site_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("referer", "https://evil.example/attack"),
    ] {
        let token = app.get("/login").await.csrf_token();
        let res = app
            .send(
                TestRequest::post()
                    .uri("/login")
                    .insert_header((header, value))
                    .set_form([
                        ("csrf_token", token.as_str()),
                        ("username", &alice.username),
                        ("password", &alice.password),
                    ]),
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(res.body.contains("another site"));
        assert!(res.headers.get("content-security-policy").is_some());
    }

    // The site's own origin is welcome.
    let token = app.get("/login").await.csrf_token();
    let res = app
        .send(
            TestRequest::post()
                .uri("/login")
                .insert_header(("origin", "http://localhost:8080"))
                .set_form([
                    ("csrf_token", token.as_str()),
                    ("username", &alice.username),
                    ("password", &alice.password),
                ]),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn html_pages_carry_the_security_headers_and_are_never_cached() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let login = app.get("/login").await;
    alice.login(&app).await;
    let profile = app.get("/profile").await;
    let not_found = app.get("/nowhere").await;
    for page in [&login, &profile, &not_found] {
        let header = |name| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "same-origin");
        assert_eq!(header("cache-control"), "no-store");
    }
    let css = app.get("/static/porter.css").await;
    assert_ne!(
        css.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[actix_web::test]
async fn the_csrf_cookie_is_http_only_lax_and_secure() {
    let app = spawn_app().await;
    let cookie = app
        .get("/login")
        .await
        .set_cookie("csrftoken")
        .expect("a CSRF cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(actix_web::cookie::SameSite::Lax));
}

const NEW_KEY: &str =
    "a-new-secret-key-for-rotation-a-new-secret-key-for-rotation-0123456789abcdef";

#[actix_web::test]
async fn rotating_the_secret_key_keeps_sessions_while_the_old_key_is_a_fallback() {
    let old = spawn_app().await;
    let alice = TestUser::create(&old, "alice");
    alice.login(&old).await;
    let cookie = old.cookie("sessionid").expect("a session cookie");
    let hash_before: String = sessions::table
        .select(sessions::data)
        .first(&mut *old.db())
        .expect("the session");

    let rotated = spawn_sibling(
        &old,
        &[
            ("SECRET_KEY", NEW_KEY),
            ("SECRET_KEY_FALLBACKS", TEST_SECRET_KEY),
        ],
    )
    .await;
    rotated.set_cookie("sessionid", &cookie);
    assert_eq!(rotated.get("/profile").await.status, StatusCode::OK);
    let hash_after: String = sessions::table
        .select(sessions::data)
        .first(&mut *rotated.db())
        .expect("the session");
    assert_ne!(
        hash_before, hash_after,
        "the auth hash is re-stamped with the new key"
    );
    // The re-stamped session keeps working under the new key.
    assert_eq!(rotated.get("/profile").await.status, StatusCode::OK);

    let fallback_removed = spawn_sibling(&old, &[("SECRET_KEY", NEW_KEY)]).await;
    fallback_removed.set_cookie("sessionid", &cookie);
    assert_eq!(
        fallback_removed.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "without the fallback, the old cookie is dead"
    );
}

#[actix_web::test]
async fn a_hash_made_with_older_costs_is_upgraded_at_login() {
    let app = spawn_app().await;
    let weak = PasswordHasher::new(argon2::Params::new(1024, 1, 1, None).expect("params"))
        .expect("hasher");
    let hash = weak.hash("an old passphrase").expect("hash");
    let user =
        models::create(&mut app.db(), &models::NewUser::new("legacy", &hash, false)).expect("user");
    let legacy = TestUser {
        username: "legacy".into(),
        password: "an old passphrase".into(),
        id: user.id,
    };
    assert_eq!(legacy.login(&app).await.location(), Some("/profile"));

    let stored: String = users::table
        .find(user.id)
        .select(users::password)
        .first(&mut *app.db())
        .expect("the user");
    assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
    assert_eq!(
        app.get("/profile").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[actix_web::test]
async fn bad_input_gets_a_readable_4xx_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "null bytes",
            b"username=al%00ice&password=x%00".to_vec(),
            StatusCode::OK,
        ),
        (
            "invalid UTF-8",
            b"username=%C3%28&password=%FF".to_vec(),
            StatusCode::OK,
        ),
        (
            "a 100,000-character field",
            format!("username={}&password=x", "a".repeat(100_000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "SQL",
            b"username=alice'%20OR%20'1'%3D'1'%3B%20DROP%20TABLE%20users%3B--&password=x".to_vec(),
            StatusCode::OK,
        ),
        (
            "repeated fields",
            b"username=a&username=b&password=x".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("missing fields", b"".to_vec(), StatusCode::OK),
        ("garbage", b"%%%&&&===".to_vec(), StatusCode::OK),
    ];
    for (name, body, expected) in cases {
        let token = app.get("/login").await.csrf_token();
        let res = app
            .send(
                TestRequest::post()
                    .uri("/login")
                    .insert_header(("x-csrftoken", token.as_str()))
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .set_payload(body),
            )
            .await;
        assert_eq!(res.status, expected, "{name}");
        assert!(res.body.contains("<h1>"), "{name}: a readable page");
    }
    let signup = app
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "<b>bold</b>"),
                ("password1", "x"),
                ("password2", "x"),
            ],
        )
        .await;
    assert!(!signup.body.contains("<b>bold</b>"), "HTML is escaped");

    assert_eq!(
        alice.login(&app).await.location(),
        Some("/profile"),
        "still serving"
    );
    let count: i64 = users::table
        .count()
        .get_result(&mut *app.db())
        .expect("users");
    assert_eq!(count, 1, "the users table is intact");
}
