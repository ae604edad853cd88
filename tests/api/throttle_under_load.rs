//! The throttle under bursts, spread addresses and shared addresses; device
//! cookies; the other password oracles; the bounded hashing queue; what a
//! login response may not reveal.

use actix_web::{
    body::MessageBody,
    dev::{Service, ServiceResponse},
    http::StatusCode,
};
use diesel::prelude::*;
use porter::schema::login_attempts;

use crate::helpers::{TestApp, TestResponse, TestUser, spawn_app, spawn_app_with};

/// Posts the login form from `browser` with `password`, returning the response.
async fn attempt<S, B>(browser: &TestApp<S>, username: &str, password: &str) -> TestResponse
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    browser
        .submit_form(
            "/login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
}

/// Sends `count` login attempts at once, each from its own browser (with its
/// own CSRF token) at `peer`; returns their statuses.
async fn burst<S, B>(
    app: &TestApp<S>,
    count: usize,
    username: &str,
    password_of: impl Fn(usize) -> String,
    peer: impl Fn(usize) -> String,
) -> Vec<StatusCode>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>
        + 'static,
    B: MessageBody + 'static,
{
    let mut pending = Vec::new();
    for n in 0..count {
        let browser = app.new_browser();
        browser.set_peer(&peer(n));
        let token = browser.get("/login").await.csrf_token();
        let (username, password) = (username.to_owned(), password_of(n));
        pending.push(actix_web::rt::spawn(async move {
            browser
                .post_form(
                    "/login",
                    &[
                        ("csrf_token", token.as_str()),
                        ("username", username.as_str()),
                        ("password", password.as_str()),
                    ],
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for request in pending {
        statuses.push(request.await.expect("the request ran"));
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[actix_web::test]
async fn thirty_parallel_guesses_check_at_most_five_passwords() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let right = alice.password.clone();
    // The right password is the last of the burst.
    let statuses = burst(
        &app,
        30,
        "alice",
        |n| {
            if n == 29 {
                right.clone()
            } else {
                format!("wrong guess {n}")
            }
        },
        |_| "127.0.0.5:40000".into(),
    )
    .await;
    let checked = count(&statuses, StatusCode::OK) + count(&statuses, StatusCode::SEE_OTHER);
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        30 - checked,
        "every other attempt was refused: {statuses:?}"
    );
    assert_eq!(count(&statuses, StatusCode::SEE_OTHER), 0, "{statuses:?}");
}

#[actix_web::test]
async fn guesses_spread_over_many_addresses_hit_the_per_account_limit() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let mut statuses = Vec::new();
    // Four guesses from each of ten addresses: under the per-address limits.
    for address in 0..10 {
        for _ in 0..4 {
            let browser = app.new_browser();
            browser.set_peer(&format!("127.0.{address}.9:40000"));
            statuses.push(attempt(&browser, "alice", "a wrong guess").await.status);
        }
    }
    assert_eq!(count(&statuses, StatusCode::OK), 20, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 20);
    // A new address with the right password waits too: the account is locked.
    let fresh = app.new_browser();
    fresh.set_peer("127.0.99.9:40000");
    assert_eq!(
        alice.login(&fresh).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn the_owners_browser_signs_in_during_a_lockout_and_no_other_does() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let bob = TestUser::create(&app, "bob");
    // The owner signed in from this browser before.
    let owner = app.new_browser();
    owner.set_peer("127.0.0.7:40000");
    assert_eq!(alice.login(&owner).await.status, StatusCode::SEE_OTHER);
    assert!(owner.cookie("device").is_some(), "a device cookie");
    owner.logout().await;
    // Bob's browser, with Bob's device cookie.
    let bobs = app.new_browser();
    bobs.set_peer("127.0.0.7:40000");
    assert_eq!(bob.login(&bobs).await.status, StatusCode::SEE_OTHER);
    bobs.logout().await;

    // An attacker at the same address locks the account.
    let attacker = app.new_browser();
    attacker.set_peer("127.0.0.7:40000");
    for _ in 0..25 {
        attempt(&attacker, "alice", "a wrong guess").await;
    }
    assert_eq!(
        alice.login(&attacker).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker's browser is locked out"
    );
    let fresh = app.new_browser();
    fresh.set_peer("127.0.0.7:40000");
    assert_eq!(
        alice.login(&fresh).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "so is any browser without a device cookie"
    );
    assert_eq!(
        alice.login(&bobs).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "another user's device cookie does not help"
    );
    let tampered = app.new_browser();
    tampered.set_peer("127.0.0.7:40000");
    let mut forged = owner.cookie("device").expect("a device cookie");
    forged.insert(0, '0');
    tampered.set_cookie("device", &forged);
    assert_eq!(
        alice.login(&tampered).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "nor does a tampered one"
    );
    assert_eq!(
        alice.login(&owner).await.status,
        StatusCode::SEE_OTHER,
        "the owner's browser is trusted"
    );
}

#[actix_web::test]
async fn a_trusted_browser_has_its_own_small_limit() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    app.logout().await;
    for _ in 0..5 {
        assert_eq!(
            attempt(&app, "alice", "a wrong guess").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        attempt(&app, "alice", "a wrong guess").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn a_parallel_burst_from_a_trusted_browser_checks_at_most_five_passwords() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    app.logout().await;
    let device = app.cookie("device").expect("a device cookie");
    let mut pending = Vec::new();
    for n in 0..20 {
        let browser = app.new_browser();
        browser.set_cookie("device", &device);
        let token = browser.get("/login").await.csrf_token();
        pending.push(actix_web::rt::spawn(async move {
            let password = format!("wrong guess {n}");
            browser
                .post_form(
                    "/login",
                    &[
                        ("csrf_token", token.as_str()),
                        ("username", "alice"),
                        ("password", password.as_str()),
                    ],
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for request in pending {
        statuses.push(request.await.expect("the request ran"));
    }
    assert!(count(&statuses, StatusCode::OK) <= 5, "{statuses:?}");
}

#[actix_web::test]
async fn the_old_password_check_is_throttled_per_user() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let change = |old: String| {
        let app = &app;
        async move {
            app.submit_form(
                "/password",
                "/password",
                &[
                    ("old_password", old.as_str()),
                    ("new_password1", "another fine passphrase"),
                    ("new_password2", "another fine passphrase"),
                ],
            )
            .await
        }
    };
    for n in 0..5 {
        let res = change(format!("wrong old password {n}")).await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.body.contains("entered incorrectly"));
    }
    let res = change(alice.password.clone()).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.body.contains("Too many wrong passwords"));
    assert!(res.headers.get("retry-after").is_some());
}

#[actix_web::test]
async fn sign_up_is_throttled_per_address() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for n in 0..11 {
        let browser = app.new_browser();
        browser.set_peer("127.0.0.8:40000");
        let username = format!("newcomer{n}");
        let res = browser
            .submit_form(
                "/signup",
                "/signup",
                &[
                    ("username", username.as_str()),
                    ("password1", "a fine long passphrase"),
                    ("password2", "a fine long passphrase"),
                ],
            )
            .await;
        statuses.push(res.status);
    }
    assert_eq!(count(&statuses, StatusCode::SEE_OTHER), 10, "{statuses:?}");
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    // Another address may still sign up.
    let elsewhere = app.new_browser();
    elsewhere.set_peer("127.0.0.9:40000");
    let res = elsewhere
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "someone"),
                ("password1", "a fine long passphrase"),
                ("password2", "a fine long passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_full_hashing_queue_answers_503_and_counts_nothing() {
    let app = spawn_app_with(&[("HASHING_QUEUE", "1")]).await;
    let alice = TestUser::create(&app, "alice");
    // More guesses at once than the account allows (20), each from its own
    // address.
    let statuses = burst(
        &app,
        25,
        "alice",
        |n| format!("wrong guess {n}"),
        |n| format!("127.0.1.{}:40000", n + 1),
    )
    .await;
    let (checked, busy) = (
        count(&statuses, StatusCode::OK),
        count(&statuses, StatusCode::SERVICE_UNAVAILABLE),
    );
    assert!(busy > 0, "some were refused: {statuses:?}");
    // While refused attempts give their reservations back, others may find
    // the account's limit reached by attempts in flight: 429, never more.
    assert_eq!(
        checked + busy + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        25,
        "nothing else: {statuses:?}"
    );
    assert!(checked < 20, "{statuses:?}");
    // Refused attempts were never checked, so they do not count: the
    // account is not locked.
    let owner = app.new_browser();
    owner.set_peer("127.0.4.1:40000");
    assert_eq!(alice.login(&owner).await.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_busy_answer_says_when_to_come_back() {
    let app = spawn_app_with(&[("HASHING_QUEUE", "1")]).await;
    TestUser::create(&app, "alice");
    let statuses_and_headers = {
        let mut pending = Vec::new();
        for n in 0..12 {
            let browser = app.new_browser();
            browser.set_peer(&format!("127.0.5.{}:40000", n + 1));
            let token = browser.get("/login").await.csrf_token();
            pending.push(actix_web::rt::spawn(async move {
                browser
                    .post_form(
                        "/login",
                        &[
                            ("csrf_token", token.as_str()),
                            ("username", "alice"),
                            ("password", "wrong"),
                        ],
                    )
                    .await
            }));
        }
        let mut answers = Vec::new();
        for request in pending {
            answers.push(request.await.expect("the request ran"));
        }
        answers
    };
    let busy: Vec<_> = statuses_and_headers
        .iter()
        .filter(|res| res.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!busy.is_empty());
    for res in busy {
        assert_eq!(
            res.headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        assert!(res.body.contains("busy"), "a readable page");
    }
}

#[actix_web::test]
async fn the_throttle_keeps_no_username_or_address_in_clear() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.set_peer("127.0.0.77:40000");
    attempt(&browser, "Mallory", "a password typed in the wrong box").await;
    let scopes: Vec<String> = login_attempts::table
        .select(login_attempts::scope)
        .load(&mut *app.db())
        .expect("the counters");
    assert_eq!(scopes.len(), 3, "three scopes counted: {scopes:?}");
    for scope in scopes {
        assert_eq!(scope.len(), 64, "{scope}");
        assert!(scope.chars().all(|c| c.is_ascii_hexdigit()), "{scope}");
        assert!(!scope.contains("allory") && !scope.contains("127.0.0.77"));
    }
}

/// The headers of a failed login, minus those that differ on every
/// response (`date`) and the body's length (the username typed is echoed).
fn login_headers(res: &TestResponse) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = res
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    headers.sort();
    headers
}

#[actix_web::test]
async fn an_unknown_user_and_a_wrong_password_get_identical_headers() {
    for server_timing in ["true", "false"] {
        let app = spawn_app_with(&[("SERVER_TIMING", server_timing)]).await;
        TestUser::create(&app, "alice");
        // Both browsers already hold a CSRF cookie, so neither sets one.
        let (known, unknown) = (app.new_browser(), app.new_browser());
        let known_res = attempt(&known, "alice", "a wrong guess").await;
        let unknown_res = attempt(&unknown, "nobody", "a wrong guess").await;
        assert_eq!(known_res.status, StatusCode::OK);
        assert_eq!(unknown_res.status, StatusCode::OK);
        assert_eq!(
            login_headers(&known_res),
            login_headers(&unknown_res),
            "SERVER_TIMING={server_timing}"
        );
        assert!(known_res.headers.get("server-timing").is_none());
        // Other pages do carry it when it is on.
        let page = known.get("/login").await;
        assert_eq!(
            page.headers.get("server-timing").is_some(),
            server_timing == "true"
        );
    }
}

#[actix_web::test]
async fn a_device_cookie_is_signed_http_only_and_scoped_to_the_login_page() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let res = alice.login(&app).await;
    let device = res.set_cookie("device").expect("a device cookie");
    assert_eq!(device.http_only(), Some(true));
    assert_eq!(device.path(), Some("/login"));
    assert!(device.max_age().is_some_and(|age| age.whole_days() >= 300));
    assert!(
        !device.value().contains("alice"),
        "the username is not in it"
    );
}

#[actix_web::test]
async fn every_spelling_of_a_username_shares_one_counter() {
    let app = spawn_app().await;
    let victim = TestUser::create(&app, "victim");
    for spelling in ["ｖｉｃｔｉｍ", "VICTIM", "Victim", " victim", "ｖictim"] {
        assert_eq!(
            attempt(&app, spelling, "a wrong guess").await.status,
            StatusCode::OK,
            "{spelling}"
        );
    }
    let fresh = app.new_browser();
    assert_eq!(
        victim.login(&fresh).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}
