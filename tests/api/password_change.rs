//! Changing the password keeps this session and ends every other, on every
//! engine.

use std::time::Duration;

use actix_web::{http::StatusCode, web};
use porter::auth::{
    hashers::PasswordHasher,
    models::{self, NewUser},
};

use crate::helpers::{TestApp, TestUser, spawn_app_with};

async fn password_change_ends_other_sessions(engine: &str) {
    let settings = [("SESSION_ENGINE", engine)];
    let laptop = spawn_app_with(&settings).await;
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&laptop).await;
    alice.login(&phone).await;
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);

    let res = laptop
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", &alice.password),
                ("new_password1", "a brand new passphrase"),
                ("new_password2", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some("/profile"));

    let profile = laptop.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK, "this session stays");
    assert!(profile.body.contains("Your password was changed"));
    assert_eq!(
        phone.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "the other session ends"
    );

    // The new password works, the old one does not.
    let tablet = laptop.new_browser();
    let old = TestUser {
        password: alice.password.clone(),
        ..alice.clone()
    };
    assert_eq!(old.login(&tablet).await.status, StatusCode::OK);
    let new = TestUser {
        password: "a brand new passphrase".into(),
        ..alice
    };
    assert_eq!(new.login(&tablet).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn a_password_change_ends_other_sessions_on_the_db_engine() {
    password_change_ends_other_sessions("db").await;
}

#[actix_web::test]
async fn a_password_change_ends_other_sessions_on_the_cookie_engine() {
    password_change_ends_other_sessions("cookie").await;
}

#[actix_web::test]
async fn a_wrong_old_password_changes_nothing() {
    let app = spawn_app_with(&[]).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let res = app
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", "not my password"),
                ("new_password1", "a brand new passphrase"),
                ("new_password2", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.body
            .contains("Your old password was entered incorrectly")
    );
    app.logout().await;
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn the_password_page_requires_login() {
    let app = spawn_app_with(&[]).await;
    let res = app.get("/password").await;
    assert_eq!(res.location(), Some("/login?next=/password"));
}

/// A login that finds the password hashed with older costs hashes it again
/// and stores the new hash. Stored over whatever is there, a password
/// changed while it hashed would be put back to the old one; it is stored
/// only over the hash the login checked, and that login fails.
#[actix_web::test]
async fn a_login_upgrading_an_old_hash_does_not_undo_a_change_made_meanwhile() {
    // New hashes take many passes, so the login's upgrade takes a while.
    let app = spawn_app_with(&[("ARGON2_ITERATIONS", "12")]).await;
    let older_costs = argon2::Params::new(8 * 1024, 1, 1, None).expect("valid costs");
    let old_hash = PasswordHasher::new(older_costs)
        .expect("a hasher")
        .hash("the old passphrase")
        .expect("a hash");
    let ada = models::create(
        &mut app.state.pool.get().expect("a connection"),
        &NewUser::new("ada", &old_hash, false),
    )
    .expect("ada's account");
    let new_hash = app.state.hasher.hash("the new passphrase").expect("a hash");
    let token = app.get("/login").await.csrf_token();

    let fields = [
        ("csrf_token", token.as_str()),
        ("username", "ada"),
        ("password", "the old passphrase"),
    ];
    // Another process changes the password while the login hashes.
    let (login, ()) = tokio::join!(
        app.post_form("/login", &fields),
        set_password_elsewhere_soon(&app, ada.id, new_hash)
    );

    assert!(
        stored_password_is(&app, ada.id, "the new passphrase"),
        "the login's upgrade put the old password back"
    );
    assert_eq!(
        login.status,
        StatusCode::OK,
        "signed in with a password replaced meanwhile"
    );
}

/// `POST /password` checks the old password, hashes the new one and then
/// stores it. A reset (or any change from elsewhere) that lands while it
/// hashes must not be overwritten by a change made with the password it
/// replaced: the change is refused and the visitor asked to sign in again.
#[actix_web::test]
async fn a_password_change_does_not_overwrite_a_reset_made_meanwhile() {
    // Many passes: the change's two hashes take a while.
    let app = spawn_app_with(&[("ARGON2_ITERATIONS", "12")]).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let reset_hash = app
        .state
        .hasher
        .hash("the reset passphrase")
        .expect("a hash");
    let id = alice.id;
    let token = app.get("/password").await.csrf_token();

    let fields = [
        ("csrf_token", token.as_str()),
        ("old_password", alice.password.as_str()),
        ("new_password1", "a brand new passphrase"),
        ("new_password2", "a brand new passphrase"),
    ];
    // Another process sets the password while the change hashes.
    let (change, ()) = tokio::join!(
        app.post_form("/password", &fields),
        set_password_elsewhere_soon(&app, id, reset_hash)
    );

    assert!(
        stored_password_is(&app, id, "the reset passphrase"),
        "the change overwrote the reset"
    );
    assert_eq!(change.location(), Some("/login"), "{}", change.body);
    let login = app.get("/login").await;
    assert!(
        login.body.contains("Your password was changed elsewhere"),
        "{}",
        login.body
    );
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

/// The same change sent twice at once (a double click): one lands, and the
/// other, finding the password already the one it was setting, answers as
/// the first did instead of signing the visitor out.
#[actix_web::test]
async fn the_same_password_change_sent_twice_at_once_keeps_the_visitor_signed_in() {
    let app = spawn_app_with(&[("ARGON2_ITERATIONS", "12")]).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let token = app.get("/password").await.csrf_token();
    let fields = [
        ("csrf_token", token.as_str()),
        ("old_password", alice.password.as_str()),
        ("new_password1", "a brand new passphrase"),
        ("new_password2", "a brand new passphrase"),
    ];

    let (first, second) = tokio::join!(
        app.post_form("/password", &fields),
        app.post_form("/password", &fields)
    );

    assert_eq!(first.location(), Some("/profile"), "{}", first.body);
    assert_eq!(second.location(), Some("/profile"), "{}", second.body);
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK, "signed out by the second");
    let tablet = app.new_browser();
    let new = TestUser {
        password: "a brand new passphrase".into(),
        ..alice
    };
    assert_eq!(new.login(&tablet).await.location(), Some("/profile"));
}

/// Stores `hash` as user `id`'s password from outside the app (as another
/// process would), 60 ms from now: while a request started at the same
/// time is still hashing.
async fn set_password_elsewhere_soon<S>(app: &TestApp<S>, id: i32, hash: String) {
    actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    let pool = app.state.pool.clone();
    web::block(move || {
        models::set_password_hash(&mut pool.get().expect("a connection"), id, &hash)
    })
    .await
    .expect("the blocking pool")
    .expect("the change");
}

/// Whether user `id`'s stored password is `password`.
fn stored_password_is<S>(app: &TestApp<S>, id: i32, password: &str) -> bool {
    let stored = models::find_by_id(&mut app.state.pool.get().expect("a connection"), id)
        .expect("a query")
        .expect("the user")
        .password;
    app.state.hasher.verify(password, &stored)
}
