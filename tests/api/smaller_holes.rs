//! The smaller holes of the security review: the client address behind a
//! proxy, the CSRF origin check, bad cookies, the flash cookie's `Secure`
//! flag, HSTS, and usernames that differ only in Unicode spelling.

use actix_web::{
    cookie::Key,
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
    test::TestRequest,
};
use diesel::prelude::*;
use porter::{schema::users, sessions::seal_session_cookie};

use crate::{
    helpers::{Request, TestApp, TestResponse, TestUser, spawn_app, spawn_app_with, spawn_sibling},
    your_sessions::this_session_fact,
};

/// Signs `user` in through the form, the login POST carrying `headers`.
async fn login_with_headers<S, B>(
    app: &TestApp<S>,
    user: &TestUser,
    headers: &[(&'static str, &str)],
) -> TestResponse
where
    S: actix_web::dev::Service<
            Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let token = app.get("/login").await.csrf_token();
    let mut req = TestRequest::post().uri("/login").set_form([
        ("csrf_token", token.as_str()),
        ("username", &user.username),
        ("password", &user.password),
    ]);
    for (name, value) in headers {
        req = req.append_header((*name, *value));
    }
    app.send(req).await
}

// 1. The client address behind a proxy.

#[actix_web::test]
async fn behind_one_proxy_the_address_is_the_entry_it_appended() {
    let app = spawn_app_with(&[("TRUST_X_FORWARDED_FOR", "true")]).await;
    let alice = TestUser::create(&app, "alice");
    for (forwarded_for, shown) in [
        ("203.0.113.7", "203.0.113.7"),
        // A proxy that appends the port: the client's own entry must not win.
        ("6.6.6.6, 203.0.113.7:5555", "203.0.113.7"),
        ("6.6.6.6, [2001:db8::7]:443", "2001:db8::7"),
        ("6.6.6.6,2001:db8::8", "2001:db8::8"),
        // Malformed: the header is ignored, never an earlier entry used.
        ("6.6.6.6, not-an-address", "127.0.0.9"),
        ("6.6.6.6, ", "127.0.0.9"),
    ] {
        let browser = app.new_browser();
        browser.set_peer("127.0.0.9:1234");
        let login =
            login_with_headers(&browser, &alice, &[("x-forwarded-for", forwarded_for)]).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{forwarded_for}");
        let page = browser.get("/sessions").await;
        assert_eq!(
            this_session_fact(&page, "Address"),
            shown,
            "X-Forwarded-For: {forwarded_for}"
        );
    }
}

#[actix_web::test]
async fn with_two_proxies_the_address_is_the_second_entry_from_the_end() {
    let app = spawn_app_with(&[("TRUST_X_FORWARDED_FOR", "2")]).await;
    let alice = TestUser::create(&app, "alice");
    for (forwarded_for, shown) in [
        ("6.6.6.6, 198.51.100.4, 10.0.0.1", "198.51.100.4"),
        ("198.51.100.5:80, 10.0.0.1:443", "198.51.100.5"),
        // Fewer entries than proxies: the header was not written by them.
        ("10.0.0.1", "127.0.0.9"),
        ("6.6.6.6, junk, 10.0.0.1", "127.0.0.9"),
    ] {
        let browser = app.new_browser();
        browser.set_peer("127.0.0.9:1234");
        login_with_headers(&browser, &alice, &[("x-forwarded-for", forwarded_for)]).await;
        let page = browser.get("/sessions").await;
        assert_eq!(
            this_session_fact(&page, "Address"),
            shown,
            "X-Forwarded-For: {forwarded_for}"
        );
    }
}

#[actix_web::test]
async fn without_trust_the_header_is_ignored() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    app.set_peer("127.0.0.9:1234");
    login_with_headers(&app, &alice, &[("x-forwarded-for", "203.0.113.7")]).await;
    let page = app.get("/sessions").await;
    assert_eq!(this_session_fact(&page, "Address"), "127.0.0.9");
}

// 2. The CSRF origin check.

/// Posts the login form with `headers` added; returns the status.
async fn login_status<S, B>(
    app: &TestApp<S>,
    user: &TestUser,
    headers: &[(&'static str, &str)],
) -> StatusCode
where
    S: actix_web::dev::Service<
            Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let status = login_with_headers(app, user, headers).await.status;
    app.clear_cookies();
    status
}

#[actix_web::test]
async fn the_origin_must_match_the_site_in_scheme_host_and_port() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    for origin in [
        "https://localhost:8080",
        "http://localhost:9999",
        "http://localhost",
        "http://localhost.evil.example:8080",
    ] {
        assert_eq!(
            login_status(&app, &alice, &[("origin", origin)]).await,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
    assert_eq!(
        login_status(&app, &alice, &[("referer", "https://localhost:8080/login")]).await,
        StatusCode::FORBIDDEN,
        "a Referer on another scheme"
    );
    for (header, value) in [
        ("origin", "http://localhost:8080"),
        ("origin", "HTTP://LOCALHOST:8080"),
        ("referer", "http://localhost:8080/login?next=/"),
    ] {
        assert_eq!(
            login_status(&app, &alice, &[(header, value)]).await,
            StatusCode::SEE_OTHER,
            "{header}: {value}"
        );
    }
}

#[actix_web::test]
async fn forwarding_headers_cannot_vouch_for_a_foreign_origin() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    for forged in [
        [
            ("origin", "https://evil.example"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ],
        [
            ("origin", "https://evil.example"),
            ("forwarded", "host=evil.example;proto=https"),
            ("x-forwarded-proto", "https"),
        ],
    ] {
        assert_eq!(
            login_status(&app, &alice, &forged).await,
            StatusCode::FORBIDDEN,
            "{forged:?}"
        );
    }
}

#[actix_web::test]
async fn site_url_defines_the_origin_and_default_ports_compare_equal() {
    let app = spawn_app_with(&[("SITE_URL", "https://porter.example")]).await;
    let alice = TestUser::create(&app, "alice");
    for origin in ["https://porter.example", "https://porter.example:443"] {
        assert_eq!(
            login_status(&app, &alice, &[("origin", origin)]).await,
            StatusCode::SEE_OTHER,
            "{origin}"
        );
    }
    // The host the request was sent to no longer counts.
    for origin in ["http://localhost:8080", "http://porter.example"] {
        assert_eq!(
            login_status(&app, &alice, &[("origin", origin)]).await,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
}

#[actix_web::test]
async fn trusted_origins_may_post_and_no_others() {
    let app = spawn_app_with(&[(
        "TRUSTED_ORIGINS",
        "https://admin.porter.example, http://localhost:3000",
    )])
    .await;
    let alice = TestUser::create(&app, "alice");
    for origin in [
        "https://admin.porter.example",
        "http://localhost:3000",
        "http://localhost:8080",
    ] {
        assert_eq!(
            login_status(&app, &alice, &[("origin", origin)]).await,
            StatusCode::SEE_OTHER,
            "{origin}"
        );
    }
    for origin in ["http://admin.porter.example", "http://localhost:3001"] {
        assert_eq!(
            login_status(&app, &alice, &[("origin", origin)]).await,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
}

#[actix_web::test]
async fn in_debug_without_site_url_the_host_header_names_the_site() {
    let app = spawn_app_with(&[("DEBUG", "true"), ("SITE_URL", "")]).await;
    let alice = TestUser::create(&app, "alice");
    let host = [("host", "porter.test:8000")];
    let with = |origin| [("host", "porter.test:8000"), ("origin", origin)];
    assert_eq!(
        login_status(&app, &alice, &with("http://porter.test:8000")).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        login_status(&app, &alice, &with("https://porter.test:8000")).await,
        StatusCode::FORBIDDEN,
        "the connection is plain http"
    );
    let forwarded = [
        ("host", "porter.test:8000"),
        ("origin", "https://evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(
        login_status(&app, &alice, &forwarded).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        login_status(&app, &alice, &host).await,
        StatusCode::SEE_OTHER,
        "no Origin, no Referer: the token alone decides"
    );
}

// 3. A bad value in any cookie Porter sets is ignored and cleared.

/// Sends `GET path` with exactly this `Cookie` header (raw bytes).
async fn get_with_cookie_header<S, B>(app: &TestApp<S>, path: &str, cookie: &[u8]) -> TestResponse
where
    S: actix_web::dev::Service<
            Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let value = HeaderValue::from_bytes(cookie).expect("a header value");
    app.send(
        TestRequest::get()
            .uri(path)
            .insert_header((header::COOKIE, value)),
    )
    .await
}

/// Whether the response removes cookie `name` (or replaces it with a value
/// other than `bad`).
fn clears(res: &TestResponse, name: &str, bad: &[u8]) -> bool {
    res.headers
        .get_all(header::SET_COOKIE)
        .filter_map(|value| value.to_str().ok())
        .filter(|value| value.starts_with(&format!("{name}=")))
        .any(|value| {
            let removed = value.starts_with(&format!("{name}=;"))
                || value.contains("Max-Age=0")
                || value.contains("max-age=0");
            removed || !value.as_bytes().windows(bad.len()).any(|w| w == bad)
        })
}

/// Values of each cookie that Porter did not make: garbage, a value made
/// with another key (or, for the unsigned CSRF secret, the wrong length),
/// bytes that are not UTF-8, and percent-escapes that decode to no text.
async fn bad_values(name: &str) -> Vec<Vec<u8>> {
    let other_key = Key::derive_from(&[7u8; 64]);
    let wrong_signature = match name {
        "sessionid" => seal_session_cookie(&other_key, &"k".repeat(64), false),
        "csrftoken" => "ab".repeat(31),
        _ => {
            // A real flash cookie, from a site with another SECRET_KEY.
            let other = spawn_app_with(&[(
                "SECRET_KEY",
                "another-secret-key-another-secret-key-another-secret-key-another",
            )])
            .await;
            TestUser::create(&other, "bob").login(&other).await;
            other.logout().await;
            other.cookie("messages").expect("a flash cookie")
        }
    };
    vec![
        b"garbage".to_vec(),
        wrong_signature.into_bytes(),
        b"\xff\xfe\x80junk".to_vec(),
        b"%FF%FE%80".to_vec(),
    ]
}

#[actix_web::test]
async fn a_bad_cookie_is_ignored_and_cleared_never_a_bad_request() {
    let app = spawn_app().await;
    for name in ["sessionid", "csrftoken", "messages"] {
        for bad in bad_values(name).await {
            let mut header = name.as_bytes().to_vec();
            header.push(b'=');
            header.extend_from_slice(&bad);
            let shown = String::from_utf8_lossy(&header).into_owned();
            for path in ["/login", "/"] {
                let res = get_with_cookie_header(&app, path, &header).await;
                assert_eq!(res.status, StatusCode::OK, "{path} with {shown}");
                assert!(
                    clears(&res, name, &bad),
                    "{path} with {shown} does not clear it: {:?}",
                    res.headers.get_all(header::SET_COOKIE).collect::<Vec<_>>()
                );
                app.clear_cookies();
            }
            let form = get_with_cookie_header(&app, "/login", &header).await;
            assert!(form.body.contains("name=\"password\""), "{shown}");
            let home = get_with_cookie_header(&app, "/", &header).await;
            assert!(home.body.contains("You are not signed in"), "{shown}");
            app.clear_cookies();
        }
    }
}

// 4. The flash cookie follows COOKIE_SECURE.

#[actix_web::test]
async fn the_flash_cookie_is_secure_only_when_cookies_are() {
    for (cookie_secure, expected) in [("false", None), ("true", Some(true))] {
        let app = spawn_app_with(&[("COOKIE_SECURE", cookie_secure)]).await;
        let alice = TestUser::create(&app, "alice");
        alice.login(&app).await;
        let logout = app.logout().await;
        let flash = logout.set_cookie("messages").expect("a flash cookie");
        assert_eq!(flash.secure(), expected, "COOKIE_SECURE={cookie_secure}");
        assert_eq!(flash.http_only(), Some(true));
        assert!(
            app.get("/")
                .await
                .body
                .contains("You have been signed out."),
            "the message arrives"
        );
    }
}

// 5. HSTS when COOKIE_SECURE is on.

#[actix_web::test]
async fn hsts_is_sent_on_every_response_only_when_cookies_are_secure() {
    let secure = spawn_app().await;
    let plain = spawn_app_with(&[("COOKIE_SECURE", "false")]).await;
    for path in ["/login", "/healthz", "/static/porter.css", "/no/such/page"] {
        let res = secure.get(path).await;
        assert_eq!(
            res.headers
                .get("strict-transport-security")
                .and_then(|value| value.to_str().ok()),
            Some("max-age=31536000; includeSubDomains"),
            "{path}"
        );
        let res = plain.get(path).await;
        assert!(
            res.headers.get("strict-transport-security").is_none(),
            "{path}"
        );
    }
}

// 7. Usernames: NFKC at sign-up and login, compared in full Unicode case.

/// Signs up through the form; returns the response to the POST.
async fn sign_up<S, B>(app: &TestApp<S>, username: &str) -> TestResponse
where
    S: actix_web::dev::Service<
            Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    app.submit_form(
        "/signup",
        "/signup",
        &[
            ("username", username),
            ("password1", "a long enough passphrase"),
            ("password2", "a long enough passphrase"),
        ],
    )
    .await
}

fn usernames<S>(app: &TestApp<S>) -> Vec<String> {
    users::table
        .select(users::username)
        .order(users::id)
        .load(&mut *app.db())
        .expect("usernames")
}

#[actix_web::test]
async fn a_fullwidth_twin_cannot_sign_up_and_signs_in_as_the_original() {
    let app = spawn_app().await;
    let victim = TestUser::create(&app, "victim");

    let twin = sign_up(&app, "ｖｉｃｔｉｍ").await;
    assert_eq!(twin.status, StatusCode::OK, "the form comes back");
    assert!(
        twin.body
            .contains("A user with that username already exists."),
        "{}",
        twin.body
    );
    assert_eq!(usernames(&app), ["victim"]);

    let login = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "ｖｉｃｔｉｍ"), ("password", &victim.password)],
        )
        .await;
    assert_eq!(login.location(), Some("/profile"));
    let profile = app.get("/profile").await;
    assert!(profile.body.contains("victim"));
    assert!(!profile.body.contains("ｖｉｃｔｉｍ"));
}

#[actix_web::test]
async fn case_is_folded_beyond_ascii() {
    let app = spawn_app().await;
    assert_eq!(sign_up(&app, "émile").await.location(), Some("/profile"));
    app.clear_cookies();
    assert!(
        sign_up(&app, "ÉMILE")
            .await
            .body
            .contains("A user with that username already exists.")
    );
    let emile = TestUser {
        username: "ÉMILE".into(),
        password: "a long enough passphrase".into(),
        id: 0,
    };
    assert_eq!(emile.login(&app).await.location(), Some("/profile"));
    let profile = app.get("/profile").await;
    assert!(profile.body.contains("émile"), "shown as it was typed");
    assert_eq!(usernames(&app), ["émile"]);
}

#[actix_web::test]
async fn a_new_name_is_stored_in_nfkc_keeping_its_case() {
    let app = spawn_app().await;
    // Fullwidth letters and the "ﬁ" ligature: compatibility forms.
    assert_eq!(
        sign_up(&app, "Ｇｒａｃｅ_ﬁ").await.location(),
        Some("/profile")
    );
    assert_eq!(usernames(&app), ["Grace_fi"]);
}

#[actix_web::test]
async fn legacy_keys_are_recomputed_when_the_app_starts() {
    let app = spawn_app().await;
    let emile = TestUser::create(&app, "Émile");
    // As the migration left a non-ASCII name: SQL's lower(), ASCII only.
    diesel::update(users::table.find(emile.id))
        .set(users::username_key.eq("Émile"))
        .execute(&mut *app.db())
        .expect("a legacy key");
    let restarted = spawn_sibling(&app, &[]).await;
    let typed = TestUser {
        username: "émile".into(),
        ..emile
    };
    assert_eq!(typed.login(&restarted).await.location(), Some("/profile"));
}
