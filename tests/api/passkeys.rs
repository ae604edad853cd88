//! Passkeys through HTTP, with webauthn-authenticator-rs's software
//! authenticator playing the browser and the device: adding one on the
//! security page, signing in with it from the login page, using it as the
//! second factor, and what must fail (a replayed answer, no CSRF token).
//!
//! The software authenticator cannot keep discoverable credentials, so the
//! test does the two things a browser with a real passkey does for it: it
//! asks for a plain credential, and it returns the user handle with the
//! signature (the handle is not signed; the server checks it against the
//! credential anyway).

use actix_web::{
    dev::{Service, ServiceResponse},
    http::StatusCode,
    test::TestRequest,
};
use diesel::prelude::*;
use porter::{auth::passkeys::Ceremony, schema::passkeys};
use webauthn_authenticator_rs::{
    WebauthnAuthenticator,
    prelude::{CreationChallengeResponse, RequestChallengeResponse, Url},
    softpasskey::SoftPasskey,
};
use webauthn_rs::prelude::WebauthnBuilder;

use crate::{
    helpers::{Request, TEST_SITE_URL, TestApp, TestResponse, TestUser, spawn_app, spawn_sibling},
    two_factor::enable_two_factor,
};

/// POSTs to a ceremony's `begin` with the CSRF token of `page`, as
/// `passkeys.js` does.
async fn begin<S, B>(app: &TestApp<S>, page: &str, path: &str) -> TestResponse
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let token = app.get(page).await.csrf_token();
    app.send(
        TestRequest::post()
            .uri(path)
            .insert_header(("x-csrftoken", token)),
    )
    .await
}

/// Bytes as unpadded base64url, as WebAuthn's JSON writes them.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn origin() -> Url {
    Url::parse(TEST_SITE_URL).expect("the test site URL")
}

/// Adds a passkey named `name` for the signed-in user; returns the device.
async fn add_passkey<S, B>(app: &TestApp<S>, name: &str) -> SoftPasskey
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = begin(app, "/security", "/security/passkeys/begin").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.body.contains("\"residentKey\":\"required\""),
        "the server asks for a discoverable credential"
    );
    let mut options: CreationChallengeResponse =
        serde_json::from_str(&res.body).expect("creation options");
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        // See the module comment: the software key keeps no credentials.
        selection.require_resident_key = false;
        selection.resident_key = None;
    }
    let mut device = SoftPasskey::new(true);
    let answer = device
        .do_registration(origin(), options)
        .expect("the software key registers");
    let res = app
        .submit_form(
            "/security",
            "/security/passkeys",
            &[
                ("name", name),
                (
                    "passkey_credential",
                    &serde_json::to_string(&answer).expect("JSON"),
                ),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/security"));
    device
}

/// The credential id and user handle stored for the user's first passkey.
fn stored_ids<S>(app: &TestApp<S>, user: &TestUser) -> (Vec<u8>, Vec<u8>) {
    let (credential_id, user_handle): (String, String) = passkeys::table
        .filter(passkeys::user_id.eq(user.id))
        .select((passkeys::credential_id, passkeys::user_handle))
        .first(&mut *app.db())
        .expect("a stored passkey");
    let handle = webauthn_rs::prelude::Uuid::parse_str(&user_handle).expect("a UUID");
    (
        hex::decode(credential_id).expect("hex"),
        handle.as_bytes().to_vec(),
    )
}

/// Answers a sign-in ceremony begun at `begin_path` with `device`, as a
/// browser holding the passkey would; returns the JSON to post.
async fn answer_sign_in<S, B>(
    app: &TestApp<S>,
    device: &mut SoftPasskey,
    (page, begin_path): (&str, &str),
    (credential_id, user_handle): &(Vec<u8>, Vec<u8>),
) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = begin(app, page, begin_path).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let mut options: serde_json::Value = serde_json::from_str(&res.body).expect("JSON");
    let allowed = options
        .pointer_mut("/publicKey/allowCredentials")
        .expect("allowCredentials");
    if allowed.as_array().is_none_or(Vec::is_empty) {
        // A discoverable sign-in: the browser picks the credential.
        *allowed = serde_json::json!([{"type": "public-key", "id": base64url(credential_id)}]);
    }
    let options: RequestChallengeResponse =
        serde_json::from_value(options).expect("request options");
    let mut answer = device
        .do_authentication(origin(), options)
        .expect("the software key signs");
    answer.response.user_handle = Some(user_handle.clone());
    serde_json::to_string(&answer).expect("JSON")
}

#[actix_web::test]
async fn a_passkey_is_added_on_the_security_page_and_signs_in_without_a_username() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut device = add_passkey(&app, "Laptop").await;
    let page = app.get("/security").await;
    assert!(page.body.contains("Laptop"), "listed by name");
    assert!(page.body.contains("never"), "not used yet");
    app.logout().await;
    let ids = stored_ids(&app, &alice);

    let phone = app.new_browser();
    let answer = answer_sign_in(
        &phone,
        &mut device,
        ("/login", "/login/passkey/begin"),
        &ids,
    )
    .await;
    let res = phone
        .submit_form(
            "/login",
            "/login/passkey",
            &[("passkey_credential", &answer), ("next", "/sessions")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/sessions"));
    let profile = phone.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"));

    // The session names the passkey backend, which loads the user.
    let data: String = porter::schema::sessions::table
        .filter(porter::schema::sessions::user_id.eq(alice.id))
        .order(porter::schema::sessions::id.desc())
        .select(porter::schema::sessions::data)
        .first(&mut *app.db())
        .expect("the session row");
    assert!(data.contains("\"passkey\""), "{data}");
    let page = phone.get("/security").await;
    assert!(!page.body.contains("never"), "last used is recorded");
}

#[actix_web::test]
async fn an_answer_is_good_for_one_ceremony_only() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut device = add_passkey(&app, "Laptop").await;
    app.logout().await;
    let ids = stored_ids(&app, &alice);

    let victim = app.new_browser();
    let answer = answer_sign_in(
        &victim,
        &mut device,
        ("/login", "/login/passkey/begin"),
        &ids,
    )
    .await;
    // Someone who copied the answer, in a browser of their own with a
    // ceremony of its own: the challenge differs.
    let thief = app.new_browser();
    begin(&thief, "/login", "/login/passkey/begin").await;
    let res = thief
        .submit_form(
            "/login",
            "/login/passkey",
            &[("passkey_credential", &answer)],
        )
        .await;
    assert_eq!(res.location(), Some("/login"));
    thief
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");

    // The owner signs in once; the same answer again finds no ceremony.
    let res = victim
        .submit_form(
            "/login",
            "/login/passkey",
            &[("passkey_credential", &answer)],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"));
    victim.logout().await;
    let res = victim
        .submit_form(
            "/login",
            "/login/passkey",
            &[("passkey_credential", &answer)],
        )
        .await;
    assert_eq!(res.location(), Some("/login"), "a ceremony answers once");
}

#[actix_web::test]
async fn a_ceremony_sent_in_the_login_form_is_not_believed() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut device = add_passkey(&app, "Laptop").await;
    app.logout().await;
    let (credential_id, user_handle) = stored_ids(&app, &alice);

    // An attacker makes a ceremony of their own (same relying party), has
    // the passkey answer it (say, on a look-alike page), and posts both
    // to the password form, whose fields all reach the backends.
    let relying_party = WebauthnBuilder::new("localhost", &origin())
        .and_then(|builder| builder.build())
        .expect("a relying party");
    let (options, state) = relying_party
        .start_discoverable_authentication()
        .expect("a challenge");
    let mut options = serde_json::to_value(options).expect("JSON");
    *options
        .pointer_mut("/publicKey/allowCredentials")
        .expect("allowCredentials") =
        serde_json::json!([{"type": "public-key", "id": base64url(&credential_id)}]);
    let mut answer = device
        .do_authentication(
            origin(),
            serde_json::from_value(options).expect("request options"),
        )
        .expect("the software key signs");
    answer.response.user_handle = Some(user_handle);
    let forged = serde_json::to_string(&Ceremony::SignIn { state }).expect("JSON");
    let res = app
        .submit_form(
            "/login",
            "/login",
            &[
                (
                    "passkey_credential",
                    &serde_json::to_string(&answer).expect("JSON"),
                ),
                ("passkey_ceremony", &format!("{}.{forged}", "00".repeat(32))),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "refused: the seal is not ours");
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

#[actix_web::test]
async fn a_passkey_answers_the_second_factor() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    enable_two_factor(&app, &alice).await;
    app.force_login("alice").await;
    let mut device = add_passkey(&app, "Key").await;
    app.logout().await;
    let ids = stored_ids(&app, &alice);

    assert_eq!(alice.login(&app).await.location(), Some("/login/verify"));
    let page = app.get("/login/verify").await;
    assert!(page.body.contains("Use a passkey instead"));
    let answer = answer_sign_in(
        &app,
        &mut device,
        ("/login/verify", "/login/verify/passkey"),
        &ids,
    )
    .await;
    let res = app
        .submit_form(
            "/login/verify",
            "/login/verify",
            &[("passkey_credential", &answer)],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"), "{}", res.body);
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_passkey_is_renamed_and_removed() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    add_passkey(&app, "Laptop").await;
    let id: i32 = passkeys::table
        .select(passkeys::id)
        .first(&mut *app.db())
        .expect("a passkey");

    let res = app
        .submit_form(
            "/security",
            &format!("/security/passkeys/{id}/rename"),
            &[("name", "Work laptop")],
        )
        .await;
    assert_eq!(res.location(), Some("/security"));
    assert!(app.get("/security").await.body.contains("Work laptop"));

    // Someone else's passkey is not found.
    let bob = TestUser::create(&app, "bob");
    let other = app.new_browser();
    bob.login(&other).await;
    let res = other
        .submit_form("/security", &format!("/security/passkeys/{id}/remove"), &[])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    let res = app
        .submit_form("/security", &format!("/security/passkeys/{id}/remove"), &[])
        .await;
    assert_eq!(res.location(), Some("/security"));
    assert!(app.get("/security").await.body.contains("no passkey yet"));
}

#[actix_web::test]
async fn a_ceremony_is_answered_once() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let res = begin(&app, "/security", "/security/passkeys/begin").await;
    let mut options: CreationChallengeResponse =
        serde_json::from_str(&res.body).expect("creation options");
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.require_resident_key = false;
        selection.resident_key = None;
    }
    // Two devices answer the same challenge; only the first answer counts.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = SoftPasskey::new(true)
            .do_registration(origin(), options.clone())
            .expect("the software key registers");
        answers.push(serde_json::to_string(&answer).expect("JSON"));
    }
    for answer in &answers {
        app.submit_form(
            "/security",
            "/security/passkeys",
            &[("name", "Key"), ("passkey_credential", answer)],
        )
        .await;
    }
    let stored: i64 = passkeys::table
        .count()
        .get_result(&mut *app.db())
        .expect("a count");
    assert_eq!(stored, 1, "the second answer found no ceremony");
}

#[actix_web::test]
async fn a_passkey_answers_sudo() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut device = add_passkey(&app, "Laptop").await;
    let ids = stored_ids(&app, &alice);
    crate::sudo::signed_in_since(&app, &alice, 11 * 60).await;
    assert_eq!(app.get("/email").await.status, StatusCode::SEE_OTHER);

    let page = app.get("/sudo?next=%2Femail").await;
    assert!(page.body.contains("Confirm with a passkey"));
    let answer = answer_sign_in(&app, &mut device, ("/sudo", "/sudo/passkey"), &ids).await;
    let res = app
        .submit_form(
            "/sudo",
            "/sudo",
            &[("passkey_credential", &answer), ("next", "/email")],
        )
        .await;
    assert_eq!(res.location(), Some("/email"));
    assert_eq!(app.get("/email").await.status, StatusCode::OK);
}

/// Sign-ins with one passkey at once on several instances: each checks the
/// answer against the credential it read, and the stored counter ends at
/// the highest answered, never lowered by a sign-in that read it earlier
/// and wrote later (a lower counter would let a cloned authenticator's
/// answers pass).
#[actix_web::test]
async fn sign_ins_with_one_passkey_at_once_keep_its_highest_counter() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut device = add_passkey(&app, "Laptop").await;
    let ids = stored_ids(&app, &alice);

    // Four instances on the one database, a browser on each: within one
    // instance sign-ins are checked on its password threads, one at a time
    // on a small machine, so overlapping checks need several. Each browser
    // begins a sign-in and gets the device's answer, which counts up: the
    // last carries the highest counter, 4. Then all four are sent at once,
    // the highest first, so that a lower counter may be written after it.
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(spawn_sibling(&app, &[]).await);
    }
    let mut answers = Vec::new();
    for instance in &instances {
        let answer = answer_sign_in(
            instance,
            &mut device,
            ("/login", "/login/passkey/begin"),
            &ids,
        )
        .await;
        answers.push((answer, instance.get("/login").await.csrf_token()));
    }
    let forms: Vec<[(&str, &str); 2]> = answers
        .iter()
        .map(|(answer, token)| {
            [
                ("passkey_credential", answer.as_str()),
                ("csrf_token", token.as_str()),
            ]
        })
        .collect();
    let attempts = instances
        .iter()
        .zip(&forms)
        .rev()
        .map(|(instance, form)| instance.post_form("/login/passkey", form));
    let results = futures_util::future::join_all(attempts).await;

    for res in &results {
        assert!(
            !res.status.is_server_error(),
            "{}: {}",
            res.status,
            res.body
        );
    }
    // An earlier counter may be refused once a later one is stored (a
    // cloned authenticator looks the same), never the latest.
    assert_eq!(
        results[0].location(),
        Some("/profile"),
        "{}",
        results[0].body
    );
    let credential: String = passkeys::table
        .filter(passkeys::user_id.eq(alice.id))
        .select(passkeys::credential)
        .first(&mut *app.db())
        .expect("the passkey");
    let credential: serde_json::Value = serde_json::from_str(&credential).expect("JSON");
    assert_eq!(
        credential
            .pointer("/cred/counter")
            .and_then(serde_json::Value::as_u64),
        Some(4),
        "the highest counter stays, however the sign-ins raced"
    );
}

#[actix_web::test]
async fn a_site_on_an_ip_address_runs_without_passkeys() {
    // WebAuthn wants a domain for the relying party.
    let app = crate::helpers::spawn_app_with(&[("SITE_URL", "http://127.0.0.1:8080")]).await;
    let alice = TestUser::create(&app, "alice");
    app.force_login("alice").await;
    let page = app.get("/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Passkeys need the site"));
    let token = page.csrf_token();
    let res = app
        .send(
            TestRequest::post()
                .uri("/login/passkey/begin")
                .insert_header(("x-csrftoken", token))
                .insert_header(("origin", "http://127.0.0.1:8080")),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    drop(alice);
}
