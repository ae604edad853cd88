//! "Forgot your password?": the mail, the link, the new password, and
//! every way the link must die.

use std::time::Duration;

use actix_web::{http::StatusCode, test::TestRequest};
use porter::{mail::outbox, schema::mail_outbox};

use crate::helpers::{TestApp, TestResponse, TestUser, spawn_app, spawn_app_with};

const NEW_PASSWORD: &str = "a fresh reset passphrase";

/// Asks for a reset link for `email` through the form.
async fn request_reset<S, B>(app: &TestApp<S>, email: &str) -> TestResponse
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    app.submit_form("/password/reset", "/password/reset", &[("email", email)])
        .await
}

/// The path of the reset link in the last mail to `email`.
async fn link_in_mail<S>(app: &TestApp<S>, email: &str) -> String {
    let mail = app.mail_to(email).await;
    let last = mail.last().expect("a mail arrived");
    assert_eq!(last.subject, "Reset your password");
    last.path("/password/reset/").expect("a reset link")
}

/// Follows a reset link and sets `password`; returns the final response.
async fn reset_with<S, B>(app: &TestApp<S>, link: &str, password: &str) -> TestResponse
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let opened = app.get(link).await;
    let Some(form) = opened.location().map(str::to_owned) else {
        return opened;
    };
    app.submit_form(
        &form,
        &form,
        &[("new_password1", password), ("new_password2", password)],
    )
    .await
}

#[actix_web::test]
async fn the_link_in_the_mail_sets_a_new_password_that_signs_in() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    let res = request_reset(&app, "Alice@EXAMPLE.com").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/password/reset/done"));
    assert!(
        app.get("/password/reset/done")
            .await
            .body
            .contains("Check your mail")
    );

    let link = link_in_mail(&app, "alice@example.com").await;
    let res = reset_with(&app, &link, NEW_PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some("/login"));
    assert!(
        app.get("/login")
            .await
            .body
            .contains("Your password has been set")
    );

    let old = alice.login(&app.new_browser()).await;
    assert_eq!(
        old.status,
        StatusCode::OK,
        "the old password no longer works"
    );
    let new = TestUser {
        password: NEW_PASSWORD.into(),
        ..alice
    };
    assert_eq!(new.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn the_token_leaves_the_address_bar_before_the_form_is_shown() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    let token = link.rsplit('/').next().expect("a token").to_owned();

    let res = app.get(&link).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let form = res.location().expect("a redirect").to_owned();
    assert!(form.ends_with("/set-password"), "{form}");
    assert!(!form.contains(&token));
    assert_eq!(
        res.headers.get("cache-control").map(|v| v.to_str().ok()),
        Some(Some("no-store"))
    );
    assert_eq!(
        res.headers.get("referrer-policy").map(|v| v.to_str().ok()),
        Some(Some("no-referrer"))
    );
    let page = app.get(&form).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Choose a new password"));
    assert!(!page.body.contains(&token), "the token is not on the page");
    assert_eq!(
        page.headers.get("cache-control").map(|v| v.to_str().ok()),
        Some(Some("no-store"))
    );

    // Another browser, without the session, cannot use the form.
    let other = app.new_browser();
    assert!(
        other
            .get(&form)
            .await
            .body
            .contains("Password reset unsuccessful")
    );
}

#[actix_web::test]
async fn the_same_link_a_second_time_is_refused() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    assert_eq!(
        reset_with(&app, &link, NEW_PASSWORD).await.location(),
        Some("/login")
    );

    for browser in [app.new_browser(), app.new_browser()] {
        let again = reset_with(&browser, &link, "yet another passphrase").await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(
            again.body.contains("Password reset unsuccessful"),
            "{}",
            again.body
        );
    }
}

#[actix_web::test]
async fn a_link_issued_before_a_password_change_is_refused() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;

    // Signed in without the login form, which would kill the link on its
    // own: this test is about the password change.
    let laptop = app.new_browser();
    laptop.force_login("alice").await;
    let changed = laptop
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", &alice.password),
                ("new_password1", "changed the usual way"),
                ("new_password2", "changed the usual way"),
            ],
        )
        .await;
    assert_eq!(changed.location(), Some("/profile"));

    let res = reset_with(&app, &link, NEW_PASSWORD).await;
    assert!(res.body.contains("Password reset unsuccessful"));
}

#[actix_web::test]
async fn a_link_issued_before_a_login_is_refused() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    // The clock's resolution is a second: the login must stamp a new one.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        alice.login(&app.new_browser()).await.location(),
        Some("/profile")
    );

    let res = reset_with(&app, &link, NEW_PASSWORD).await;
    assert!(res.body.contains("Password reset unsuccessful"));
}

#[actix_web::test]
async fn an_expired_link_is_refused() {
    let app = spawn_app_with(&[("PASSWORD_RESET_TTL", "30m")]).await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    assert!(
        app.get("/password/reset/done")
            .await
            .body
            .contains("30 minutes"),
        "the page says how long the link works"
    );

    app.state
        .tokens
        .clock()
        .advance(Duration::from_secs(29 * 60));
    let fresh = app.new_browser().get(&link).await;
    assert_eq!(fresh.status, StatusCode::SEE_OTHER, "valid before its TTL");

    app.state
        .tokens
        .clock()
        .advance(Duration::from_secs(60 + 1));
    let res = reset_with(&app, &link, NEW_PASSWORD).await;
    assert!(res.body.contains("Password reset unsuccessful"));
}

#[actix_web::test]
async fn known_and_unknown_addresses_get_the_same_answer_and_only_one_gets_mail() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    let known = request_reset(&app, "alice@example.com").await;
    let unknown = request_reset(&app, "nobody@example.com").await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    let headers = |res: &TestResponse| {
        let mut all: Vec<(String, String)> = res
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
            .collect();
        all.sort();
        all
    };
    assert_eq!(headers(&known), headers(&unknown));
    assert!(
        known.headers.get("server-timing").is_none(),
        "no timings to compare"
    );

    let delivery = app.deliver_mail().await;
    assert_eq!((delivery.sent, delivery.decoys), (1, 1));
    assert_eq!(
        app.sent_mail().len(),
        1,
        "only the account's address got mail"
    );
    assert!(app.mail_to("nobody@example.com").await.is_empty());
}

#[actix_web::test]
async fn a_forged_host_does_not_change_the_link() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    let token = app.get("/password/reset").await.csrf_token();
    let res = app
        .send(
            TestRequest::post()
                .uri("/password/reset")
                .insert_header(("host", "evil.example"))
                .insert_header(("x-forwarded-host", "evil.example"))
                .set_form([
                    ("email", "alice@example.com"),
                    ("csrf_token", token.as_str()),
                ]),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let mail = app.mail_to("alice@example.com").await;
    assert!(
        mail[0]
            .link("http://localhost:8080/password/reset/")
            .is_some(),
        "the link names SITE_URL: {}",
        mail[0].text
    );
    assert!(!mail[0].text.contains("evil") && !mail[0].html.contains("evil"));
}

#[actix_web::test]
async fn a_reset_ends_every_session_and_clears_the_login_throttle() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    let phone = app.new_browser();
    alice.login(&phone).await;
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);

    // Someone guesses until the account locks.
    let attacker = app.new_browser();
    for n in 0..5 {
        attacker.set_peer(&format!("127.0.0.9:{}", 40000 + n));
        attacker
            .submit_form(
                "/login",
                "/login",
                &[("username", "alice"), ("password", "guess")],
            )
            .await;
    }
    app.set_peer("127.0.0.9:50000");
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    assert_eq!(
        reset_with(&app, &link, NEW_PASSWORD).await.location(),
        Some("/login")
    );

    // Gone at once, before the phone's next request flushes its own.
    let alices_rows: i64 = {
        use diesel::prelude::*;
        porter::schema::sessions::table
            .filter(porter::schema::sessions::user_id.eq(alice.id))
            .count()
            .get_result(&mut *app.db())
            .expect("count")
    };
    assert_eq!(alices_rows, 0, "the session rows are gone");
    assert_eq!(
        phone.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
    let new = TestUser {
        password: NEW_PASSWORD.into(),
        ..alice
    };
    let res = new.login(&app).await;
    assert_eq!(
        res.location(),
        Some("/profile"),
        "not throttled: {}",
        res.status
    );
}

#[actix_web::test]
async fn reset_requests_for_one_address_are_throttled() {
    let app = spawn_app().await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    for n in 0..5 {
        app.set_peer(&format!("127.0.1.{}:40000", n + 1));
        assert_eq!(
            request_reset(&app, "alice@example.com").await.status,
            StatusCode::SEE_OTHER
        );
    }
    app.set_peer("127.0.2.1:40000");
    let res = request_reset(&app, "ALICE@example.com").await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    let queued: i64 = {
        use diesel::prelude::*;
        mail_outbox::table
            .count()
            .get_result(&mut *app.db())
            .expect("count")
    };
    assert_eq!(queued, 5, "the refused request queued nothing");
    assert_eq!(outbox::waiting(&mut app.db()).expect("count"), 5);
}

#[actix_web::test]
async fn the_login_page_links_to_the_reset_form() {
    let app = spawn_app().await;
    assert!(
        app.get("/login")
            .await
            .body
            .contains("href=\"/password/reset\"")
    );
    let form = app.get("/password/reset").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"email\""));
    let bad = request_reset(&app, "not an address").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("Enter a valid email address."));
}

#[actix_web::test]
async fn one_link_used_twice_at_once_resets_the_password_once() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    let hash_of_the_link = porter::auth::models::find_by_id(&mut app.db(), alice.id)
        .expect("a query")
        .expect("alice")
        .password;
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    // Two browsers open the same link and load the form...
    let mut pending = Vec::new();
    for password in ["first new passphrase", "second new passphrase"] {
        let browser = app.new_browser();
        let form = browser
            .get(&link)
            .await
            .location()
            .expect("to the form")
            .to_owned();
        let token = browser.get(&form).await.csrf_token();
        // ...and submit it at the same moment.
        pending.push(actix_web::rt::spawn(async move {
            let res = browser
                .post_form(
                    &form,
                    &[
                        ("csrf_token", token.as_str()),
                        ("new_password1", password),
                        ("new_password2", password),
                    ],
                )
                .await;
            (password, res)
        }));
    }
    let mut reset = Vec::new();
    for request in pending {
        let (password, res) = request.await.expect("the request ran");
        if res.status == StatusCode::SEE_OTHER {
            reset.push(password);
        } else {
            assert!(res.body.contains("Password reset unsuccessful"), "{res:?}");
        }
    }
    assert_eq!(reset.len(), 1, "exactly one reset landed: {reset:?}");
    let signed_in = app
        .new_browser()
        .submit_form(
            "/login",
            "/login",
            &[("username", "alice"), ("password", reset[0])],
        )
        .await;
    assert_eq!(signed_in.location(), Some("/profile"));

    // Whichever way the two requests interleave, the write is a
    // compare-and-set on the hash the link was made for: a second write
    // from the same state changes nothing.
    let replaced = porter::auth::models::replace_password_hash(
        &mut app.db(),
        alice.id,
        &hash_of_the_link,
        "a hash from a stale link",
    )
    .expect("a query");
    assert!(!replaced, "a stale link's write is refused");
}

#[actix_web::test]
async fn a_reset_by_mail_leaves_two_factor_sign_in_on() {
    let app = spawn_app().await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    crate::two_factor::enable_two_factor(&app, &alice).await;
    app.clear_cookies();
    request_reset(&app, "alice@example.com").await;
    let link = link_in_mail(&app, "alice@example.com").await;
    let res = reset_with(&app, &link, NEW_PASSWORD).await;
    assert_eq!(res.location(), Some("/login"));

    let new = TestUser {
        password: NEW_PASSWORD.into(),
        ..alice
    };
    assert_eq!(
        new.login(&app).await.location(),
        Some("/login/verify"),
        "a stolen mailbox does not undo the second factor"
    );
}
