//! Two-factor sign-in with TOTP: turning it on, `/login/verify`, recovery
//! codes, and what must never get through (a replayed code, a guessed one,
//! a stale half-signed-in state, a known browser without the code).

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{
    dev::{Service, ServiceResponse},
    http::StatusCode,
};
use porter::{
    auth::{SessionKeys, totp},
    views::second_factor::INVALID_CODE,
};
use totp_rs::{Builder, Secret};

use crate::helpers::{Request, TestApp, TestResponse, TestUser, spawn_app};

/// The authenticator app: reads the key the set-up page shows as text.
pub struct AuthenticatorApp {
    secret: Vec<u8>,
}

impl AuthenticatorApp {
    /// The code the app shows `steps` 30-second steps from now.
    pub fn code(&self, steps: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let at = now.saturating_add_signed(steps * 30);
        Builder::new()
            .with_secret(Secret::from(&self.secret[..]))
            .build()
            .expect("a valid TOTP")
            .generate(at)
            .to_string()
    }
}

/// The text of the first `<code class="secret">` on the page.
fn secret_on(page: &str) -> Vec<u8> {
    let marker = "<code class=\"secret\">";
    let start = page.find(marker).expect("the secret as text") + marker.len();
    let end = start + page[start..].find('<').expect("a closing tag");
    Secret::try_from_base32(&page[start..end])
        .expect("base32")
        .as_ref()
        .to_vec()
}

/// Starts set-up on the security page and returns the app that scanned it
/// (nothing confirmed yet).
pub async fn start_setup<S, B>(app: &TestApp<S>) -> AuthenticatorApp
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = app
        .submit_form("/security", "/security/totp/setup", &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some("/security/totp"));
    let page = app.get("/security/totp").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"), "a QR code, drawn inline");
    AuthenticatorApp {
        secret: secret_on(&page.body),
    }
}

/// Signs `user` in and turns two-factor sign-in on with the code of the
/// current step; returns the app and the recovery codes shown.
pub async fn enable_two_factor<S, B>(
    app: &TestApp<S>,
    user: &TestUser,
) -> (AuthenticatorApp, Vec<String>)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    user.login(app).await;
    let authenticator = start_setup(app).await;
    let res = app
        .submit_form(
            "/security/totp",
            "/security/totp",
            &[("code", &authenticator.code(0))],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body.contains("Your recovery codes"));
    let codes = recovery_codes_on(&res.body);
    assert_eq!(codes.len(), 10, "ten recovery codes");
    app.logout().await;
    (authenticator, codes)
}

/// Answers `/login/verify` with `code`, in a browser half signed in.
async fn enter_code<S, B>(browser: &TestApp<S>, code: &str) -> TestResponse
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    browser
        .submit_form("/login/verify", "/login/verify", &[("code", code)])
        .await
}

fn recovery_codes_on(page: &str) -> Vec<String> {
    page.split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').expect("a closing tag")].to_owned())
        .collect()
}

#[actix_web::test]
async fn turning_two_factor_on_needs_a_valid_code() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let authenticator = start_setup(&app).await;

    let wrong = app
        .submit_form("/security/totp", "/security/totp", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("That code is not valid"));
    // Not on yet: the password alone still signs in.
    let phone = app.new_browser();
    assert_eq!(alice.login(&phone).await.location(), Some("/profile"));

    let right = app
        .submit_form(
            "/security/totp",
            "/security/totp",
            &[("code", &authenticator.code(0))],
        )
        .await;
    assert_eq!(right.status, StatusCode::OK);
    assert_eq!(recovery_codes_on(&right.body).len(), 10);
    assert_eq!(
        right
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "codes shown once are never cached"
    );
    let tablet = app.new_browser();
    assert_eq!(alice.login(&tablet).await.location(), Some("/login/verify"));
}

/// Set-up begun again (in another tab, say) replaces the secret while a
/// code for the first one is being checked: that code confirms the device
/// it was checked against, not the new secret the user never scanned.
#[actix_web::test]
async fn a_code_checked_against_a_replaced_secret_does_not_turn_on_the_new_one() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    start_setup(&app).await;
    let mut conn = app.state.pool.get().expect("a connection");
    let checked = totp::find(&mut conn, alice.id)
        .expect("a query")
        .expect("the device in set-up");

    start_setup(&app).await;
    let confirmed = totp::confirm(&mut conn, &checked).expect("a query");

    assert!(!confirmed, "the replaced secret's device was confirmed");
    let device = totp::find(&mut conn, alice.id)
        .expect("a query")
        .expect("the new device in set-up");
    assert_eq!(device.confirmed_at, None, "the new secret was turned on");
    let phone = app.new_browser();
    assert_eq!(alice.login(&phone).await.location(), Some("/profile"));
}

/// The same, as it happens: a code sent while set-up begins again in the
/// same browser, both at once. However they race, two-factor sign-in ends
/// up on with the secret the code proved, or still off; never on with the
/// new, unproven one.
#[actix_web::test]
async fn a_code_sent_while_set_up_begins_again_turns_on_only_the_secret_it_proves() {
    let app = spawn_app().await;
    for round in 0..6 {
        let user = TestUser::create(&app, &format!("user{round}"));
        let browser = app.new_browser();
        user.login(&browser).await;
        let authenticator = start_setup(&browser).await;
        let code = authenticator.code(0);
        let confirm_token = browser.get("/security/totp").await.csrf_token();
        let setup_token = browser.get("/security").await.csrf_token();
        let confirm = [
            ("code", code.as_str()),
            ("csrf_token", confirm_token.as_str()),
        ];
        let setup = [("csrf_token", setup_token.as_str())];
        let both = futures_util::future::join_all([
            browser.post_form("/security/totp", &confirm),
            browser.post_form("/security/totp/setup", &setup),
        ]);
        for res in both.await {
            assert!(!res.status.is_server_error(), "round {round}: {}", res.body);
        }

        let phone = app.new_browser();
        match user.login(&phone).await.location() {
            Some("/profile") => {}
            Some("/login/verify") => {
                // The code of set-up's step is spent; the next one is good.
                let res = enter_code(&phone, &authenticator.code(1)).await;
                assert_eq!(
                    res.location(),
                    Some("/profile"),
                    "round {round}: on, but not with the secret the code proved"
                );
            }
            other => panic!("round {round}: the password led to {other:?}"),
        }
    }
}

/// Set-up begun in several tabs at once: each answers with the set-up page
/// (never an error), and one secret, unconfirmed, is left to scan.
#[actix_web::test]
async fn set_up_begun_several_times_at_once_leaves_one_device_to_confirm() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let token = app.get("/security").await.csrf_token();
    let form = [("csrf_token", token.as_str())];
    for round in 0..4 {
        let attempts = (0..8).map(|_| app.post_form("/security/totp/setup", &form));
        for res in futures_util::future::join_all(attempts).await {
            assert_eq!(
                res.location(),
                Some("/security/totp"),
                "round {round}: {} {}",
                res.status,
                res.body
            );
        }
    }
    let device = totp::find(&mut app.state.pool.get().expect("a connection"), alice.id)
        .expect("a query")
        .expect("a device in set-up");
    assert_eq!(device.confirmed_at, None);
    let page = app.get("/security/totp").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<code class=\"secret\">"));
}

/// Set-up begun again while two-factor sign-in is on is refused, and the
/// device the authenticator app holds stays as it was.
#[actix_web::test]
async fn set_up_begun_while_two_factor_is_on_changes_nothing() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, recovery_codes) = enable_two_factor(&app, &alice).await;
    let before = totp::find(&mut app.state.pool.get().expect("a connection"), alice.id)
        .expect("a query")
        .expect("the device");
    assert_eq!(alice.login(&app).await.location(), Some("/login/verify"));
    let verified = enter_code(&app, &recovery_codes[0]).await;
    assert_eq!(verified.location(), Some("/profile"), "{}", verified.body);

    let res = app
        .submit_form("/security", "/security/totp/setup", &[])
        .await;

    assert_eq!(res.location(), Some("/security"), "{}", res.body);
    assert!(
        app.get("/security")
            .await
            .body
            .contains("Two-factor sign-in is already on.")
    );
    let after = totp::find(&mut app.state.pool.get().expect("a connection"), alice.id)
        .expect("a query")
        .expect("the device");
    assert_eq!(after.confirmed_at, before.confirmed_at);
    // The app's codes still sign in: the secret was not replaced.
    let phone = app.new_browser();
    assert_eq!(alice.login(&phone).await.location(), Some("/login/verify"));
    let verified = enter_code(&phone, &authenticator.code(1)).await;
    assert_eq!(verified.location(), Some("/profile"), "{}", verified.body);
}

#[actix_web::test]
async fn the_password_alone_reaches_login_verify_not_the_profile() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;

    let res = alice.login_with(&app, &[("next", "/sessions")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login/verify"));
    let half_signed_in = app.cookie("sessionid").expect("a session");
    // Half signed in is not signed in.
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    assert!(app.get("/").await.body.contains("Sign in"));

    let verified = enter_code(&app, &authenticator.code(1)).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    assert_eq!(verified.location(), Some("/sessions"), "next is kept");
    assert_ne!(
        app.cookie("sessionid"),
        Some(half_signed_in),
        "the session key is renewed at the end"
    );
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_wrong_code_is_refused_and_then_throttled() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;
    alice.login(&app).await;

    for _ in 0..5 {
        let res = enter_code(&app, "123456").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.body.contains(INVALID_CODE));
    }
    let locked = enter_code(&app, &authenticator.code(1)).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits once the user's codes are locked"
    );
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn a_code_is_not_accepted_twice() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;
    let code = authenticator.code(1);

    alice.login(&app).await;
    let first = enter_code(&app, &code).await;
    assert_eq!(first.location(), Some("/profile"));

    let eavesdropper = app.new_browser();
    alice.login(&eavesdropper).await;
    let replayed = enter_code(&eavesdropper, &code).await;
    assert_eq!(replayed.status, StatusCode::OK);
    assert!(replayed.body.contains(INVALID_CODE));
    // The code of the setup step (older than the last one used) is no good
    // either.
    let older = enter_code(&eavesdropper, &authenticator.code(0)).await;
    assert!(older.body.contains(INVALID_CODE));
}

#[actix_web::test]
async fn a_recovery_code_signs_in_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (_, codes) = enable_two_factor(&app, &alice).await;

    alice.login(&app).await;
    let res = enter_code(&app, &codes[3]).await;
    assert_eq!(res.location(), Some("/profile"));
    assert!(app.get("/security").await.body.contains("9 unused"));

    let again = app.new_browser();
    alice.login(&again).await;
    let reused = enter_code(&again, &codes[3]).await;
    assert!(
        reused.body.contains(INVALID_CODE),
        "a recovery code works once"
    );
    // Typed in capitals without the dash, another one works.
    let typed = codes[4].replace('-', "").to_uppercase();
    let res = enter_code(&again, &typed).await;
    assert_eq!(res.location(), Some("/profile"));
}

#[actix_web::test]
async fn the_half_signed_in_state_expires_after_five_minutes() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;
    let started_at = time::OffsetDateTime::now_utc().unix_timestamp() - 301;
    let pending = serde_json::json!({
        "user_id": alice.id, "backend": "model", "started_at": started_at,
        "remember_me": false, "next": null,
    })
    .to_string();
    app.plant_session(&[(SessionKeys::PENDING_LOGIN, &pending)])
        .await;

    let res = app.get("/login/verify").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login"));
    // The code does not help either.
    let res = app
        .post_form("/login/verify", &[("code", &authenticator.code(1))])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "no CSRF token, even so");
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn a_known_browser_still_needs_the_code() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, _) = enable_two_factor(&app, &alice).await;
    alice.login(&app).await;
    enter_code(&app, &authenticator.code(1)).await;
    assert!(
        app.cookie(porter::auth::device_cookies::DEVICE_COOKIE_NAME)
            .is_some(),
        "this browser is now known"
    );
    app.logout().await;

    let res = alice.login(&app).await;
    assert_eq!(
        res.location(),
        Some("/login/verify"),
        "a device cookie does not skip the second factor"
    );
}

#[actix_web::test]
async fn turning_two_factor_off_lets_the_password_alone_in_again() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    enable_two_factor(&app, &alice).await;
    app.force_login("alice").await;
    let res = app
        .submit_form("/security", "/security/totp/disable", &[])
        .await;
    assert_eq!(res.location(), Some("/security"));
    app.logout().await;
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn a_staff_reset_takes_every_factor_off_an_account() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    enable_two_factor(&app, &alice).await;
    let outcome = porter::auth::two_factor::reset(&mut app.db(), alice.id).expect("reset");
    assert!(outcome.totp_removed);
    assert_eq!(outcome.recovery_codes_removed, 10);
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn one_code_sent_twice_at_once_signs_in_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let (authenticator, codes) = enable_two_factor(&app, &alice).await;
    for code in [authenticator.code(1), codes[0].clone()] {
        let browsers: Vec<_> = (0..4).map(|_| app.new_browser()).collect();
        let mut tokens = Vec::new();
        for browser in &browsers {
            alice.login(browser).await;
            tokens.push(browser.get("/login/verify").await.csrf_token());
        }
        let forms: Vec<[(&str, &str); 2]> = tokens
            .iter()
            .map(|token| [("code", code.as_str()), ("csrf_token", token.as_str())])
            .collect();
        let attempts = browsers
            .iter()
            .zip(&forms)
            .map(|(browser, form)| browser.post_form("/login/verify", form));
        let results = futures_util::future::join_all(attempts).await;
        let signed_in = results
            .iter()
            .filter(|res| res.location() == Some("/profile"))
            .count();
        assert_eq!(signed_in, 1, "{code}: one of the four, however they race");
    }
}
