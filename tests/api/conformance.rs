//! One conformance suite for the three session engines (`db`, `redis`,
//! `cookie`): the same scenarios, run against each. Where an engine cannot
//! do something, the test asserts its documented behaviour instead.

use actix_session::storage::{SessionKey, SessionStore};
use actix_web::{
    body::MessageBody,
    cookie::time::Duration,
    dev::{Service, ServiceResponse},
    http::StatusCode,
};
use porter::{
    sessions::{open_session_cookie, outcome, seal_session_cookie},
    startup::cookie_key,
};
use sha2::{Digest, Sha256};

use crate::{
    helpers::{TestApp, TestUser, spawn_app_with},
    services::{self, RedisNamespace},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Db,
    Redis,
    Cookie,
}

/// The app on `engine`, or `None` when the engine's server is absent
/// (outside CI). The namespace keeps the test's Redis keys apart.
async fn spawn(
    engine: Engine,
    extra: &[(&str, &str)],
) -> Option<(
    TestApp<
        impl Service<
            actix_http::Request,
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
        >,
    >,
    Option<RedisNamespace>,
)> {
    let mut settings: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let namespace = match engine {
        Engine::Db => {
            settings.push(("SESSION_ENGINE".into(), "db".into()));
            None
        }
        Engine::Cookie => {
            settings.push(("SESSION_ENGINE".into(), "cookie".into()));
            None
        }
        Engine::Redis => {
            if !services::available("redis") {
                return None;
            }
            let namespace = RedisNamespace::new();
            settings.push(("SESSION_ENGINE".into(), "redis".into()));
            settings.push(("REDIS_URL".into(), services::redis_url()));
            settings.push(("REDIS_KEY_PREFIX".into(), namespace.prefix.clone()));
            Some(namespace)
        }
    };
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Some((spawn_app_with(&settings).await, namespace))
}

async fn the_key_changes_at_login(engine: Engine) {
    let Some((app, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    // A session planted before login, straight into the engine's store.
    let backend = &app.state.session_backend;
    let state = [("cart".to_owned(), "\"apples\"".to_owned())].into();
    let planted_key = backend
        .save(state, &Duration::hours(1))
        .await
        .expect("plant a session");
    let planted = seal_session_cookie(
        &cookie_key(&app.state.settings),
        planted_key.as_ref(),
        engine == Engine::Cookie,
    );
    app.set_cookie("sessionid", &planted);

    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
    let after = app.cookie("sessionid").expect("a session cookie");
    assert_ne!(after, planted, "{engine:?}: login issues a new key");
    if engine != Engine::Cookie {
        let old = backend.load(&planted_key).await.expect("load");
        assert!(old.is_none(), "{engine:?}: the planted session is deleted");
    }
    let attacker = app.new_browser();
    attacker.set_cookie("sessionid", &planted);
    assert_eq!(attacker.get("/profile").await.status, StatusCode::SEE_OTHER);
}

async fn the_session_is_saved_only_when_modified(engine: Engine) {
    let Some((app, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    let login = alice.login(&app).await;
    assert!(
        login.set_cookie("sessionid").is_some(),
        "{engine:?}: login saves"
    );
    for _ in 0..3 {
        let res = app.get("/profile").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(
            res.set_cookie("sessionid").is_none(),
            "{engine:?}: an unchanged session is not saved again"
        );
    }
}

async fn an_expired_session_is_anonymous(engine: Engine) {
    let Some((app, _namespace)) = spawn(engine, &[("SESSION_TTL", "2s")]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        app.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "{engine:?}: the session expired"
    );
}

async fn logout_ends_the_session(engine: Engine) {
    let Some((app, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let copied = app.cookie("sessionid").expect("a session cookie");
    let logout = app.logout().await;
    let removal = logout
        .set_cookie("sessionid")
        .expect("the cookie is removed");
    assert_eq!(removal.value(), "");
    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);

    let replay = app.new_browser();
    replay.set_cookie("sessionid", &copied);
    let expected = match engine {
        // Server-side engines delete the session: a copy is worthless.
        Engine::Db | Engine::Redis => StatusCode::SEE_OTHER,
        // Documented: a cookie session lives in the cookie, so a copy taken
        // before logout stays valid until it expires or the password changes.
        Engine::Cookie => StatusCode::OK,
    };
    assert_eq!(replay.get("/profile").await.status, expected, "{engine:?}");
}

async fn another_session_can_be_revoked_where_the_engine_lists_them(engine: Engine) {
    let Some((laptop, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&phone).await;
    alice.login(&laptop).await;
    let page = laptop.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);

    if engine == Engine::Db {
        let res = laptop
            .submit_form("/sessions", "/sessions/revoke-others", &[])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(phone.get("/profile").await.status, StatusCode::SEE_OTHER);
    } else {
        // Documented: Redis and cookie sessions cannot be listed by user.
        assert!(
            page.body.contains("cannot sign one out by itself"),
            "{engine:?}"
        );
        let res = laptop
            .submit_form("/profile", "/sessions/revoke-others", &[])
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{engine:?}");
        assert_eq!(phone.get("/profile").await.status, StatusCode::OK);
    }
}

async fn a_password_change_ends_other_sessions(engine: Engine) {
    let Some((laptop, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&phone).await;
    alice.login(&laptop).await;
    let res = laptop
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", &alice.password),
                ("new_password1", "another fine passphrase"),
                ("new_password2", "another fine passphrase"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"), "{engine:?}");
    assert_eq!(laptop.get("/profile").await.status, StatusCode::OK);
    assert_eq!(
        phone.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "{engine:?}"
    );
}

async fn a_password_change_cycles_this_sessions_key(engine: Engine) {
    let Some((laptop, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&laptop).await;
    let before = laptop.cookie("sessionid").expect("a session cookie");
    let res = laptop
        .submit_form(
            "/password",
            "/password",
            &[
                ("old_password", &alice.password),
                ("new_password1", "another fine passphrase"),
                ("new_password2", "another fine passphrase"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"), "{engine:?}");
    let after = laptop.cookie("sessionid").expect("still a session cookie");
    assert_ne!(before, after, "{engine:?}: a new key");
    let page = laptop.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK, "{engine:?}: still signed in");
    assert!(page.body.contains("alice"));

    // A copy of the cookie taken before the change is dead.
    let thief = laptop.new_browser();
    thief.set_cookie("sessionid", &before);
    assert_eq!(
        thief.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "{engine:?}"
    );
}

fn same_key(key: &SessionKey) -> SessionKey {
    SessionKey::try_from(key.as_ref().to_owned()).expect("a valid key")
}

/// The store-level race: a request loaded the session, the session was then
/// deleted (signed out, revoked), and the request saves it.
async fn a_session_gone_at_save_time_is_not_resurrected(engine: Engine) {
    let Some((app, namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    let backend = &app.state.session_backend;
    let signed_in = |last_seen: &str| {
        [
            ("_auth_user_id".to_owned(), format!("\"{}\"", alice.id)),
            ("_last_seen".to_owned(), last_seen.to_owned()),
        ]
        .into()
    };
    let stored_sessions = || match engine {
        Engine::Db => usize::try_from(app.session_rows()).expect("a count"),
        Engine::Redis => namespace.as_ref().expect("a namespace").key_count(),
        Engine::Cookie => 0,
    };
    let ttl = Duration::hours(1);

    // An update (the once-a-minute "last seen" write, say).
    let key = backend.save(signed_in("1"), &ttl).await.expect("save");
    backend.delete(&key).await.expect("sign out");
    let (updated, update_outcome) =
        outcome::track(backend.update(same_key(&key), signed_in("2"), &ttl)).await;
    let gone = update_outcome.gone;
    updated.expect("an interrupted update is not an error");
    let old_key = key;

    // A key cycle (a password change, say).
    let key = backend.save(signed_in("1"), &ttl).await.expect("save");
    backend.delete(&key).await.expect("sign out");
    let (cycled, cycle_outcome) = outcome::track(async {
        backend.delete(&key).await.expect("delete");
        backend.save(signed_in("2"), &ttl).await
    })
    .await;
    let new_key = cycled.expect("an interrupted cycle is not an error");
    let cycle_gone = cycle_outcome.gone;

    if engine == Engine::Cookie {
        // Nothing is stored server-side: there is nothing to find gone.
        assert!(!gone && !cycle_gone);
        return;
    }
    assert!(
        gone && cycle_gone,
        "{engine:?}: the interruption is reported"
    );
    assert_eq!(stored_sessions(), 0, "{engine:?}: nothing was re-created");
    for key in [old_key, key, new_key] {
        assert!(
            backend.load(&key).await.expect("load").is_none(),
            "{engine:?}: no key names a session"
        );
    }
}

/// The same race through HTTP: a password change (slow: two argon2 hashes)
/// is in flight when the same browser signs out in another tab.
async fn signing_out_during_a_request_that_writes_the_session_leaves_the_browser_anonymous(
    engine: Engine,
) {
    let Some((app, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");
    let tab = app.new_browser();
    tab.set_cookie("sessionid", &cookie);
    let csrf = app.cookie("csrftoken").expect("a CSRF cookie");
    tab.set_cookie("csrftoken", &csrf);
    let token = app.get("/password").await.csrf_token();

    let fields = [
        ("csrf_token", token.as_str()),
        ("old_password", alice.password.as_str()),
        ("new_password1", "another fine passphrase"),
        ("new_password2", "another fine passphrase"),
    ];
    let change = app.post_form("/password", &fields);
    let logout = async {
        // Once the password change has loaded its session.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
        tab.logout().await
    };
    let (change, logout) = tokio::join!(change, logout);
    assert_eq!(logout.location(), Some("/"));
    if engine == Engine::Cookie {
        // No server-side session to find gone: the cookie engine cannot
        // tell (see the README's engine table).
        assert_eq!(change.status, StatusCode::SEE_OTHER);
        return;
    }
    let removed = change
        .set_cookie("sessionid")
        .expect("the interrupted request answers with a session cookie");
    assert!(
        removed.value().is_empty(),
        "{engine:?}: the cookie is removed, not re-issued"
    );
    assert!(app.cookie("sessionid").is_none());
    for browser in [&app, &tab] {
        browser.set_cookie("sessionid", &cookie);
        assert_eq!(
            browser.get("/profile").await.status,
            StatusCode::SEE_OTHER,
            "{engine:?}: anonymous"
        );
    }
}

async fn a_tampered_cookie_is_anonymous(engine: Engine) {
    let Some((app, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let mut cookie = app.cookie("sessionid").expect("a session cookie");
    let last = cookie.pop().expect("non-empty");
    cookie.push(if last == 'A' { 'B' } else { 'A' });
    app.set_cookie("sessionid", &cookie);
    assert_eq!(app.get("/profile").await.status, StatusCode::SEE_OTHER);
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("You are not signed in"));
}

async fn redis_keys_hold_hashes_with_a_ttl_and_go_at_logout(engine: Engine) {
    if engine != Engine::Redis {
        return;
    }
    let Some((app, namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let namespace = namespace.expect("a namespace");
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;

    let cookie = app.cookie("sessionid").expect("a session cookie");
    let session_key = open_session_cookie(&cookie_key(&app.state.settings), &cookie, false)
        .expect("a cookie the app signed");
    let hashed = hex::encode(Sha256::digest(session_key.as_bytes()));
    let key = format!("{}{hashed}", namespace.prefix);
    assert_eq!(
        namespace.keys(),
        std::slice::from_ref(&key),
        "one key: the SHA-256"
    );
    assert!(!key.contains(&session_key), "never the session key itself");
    let ttl = namespace.ttl(&key);
    assert!(
        (1..=24 * 60 * 60).contains(&ttl),
        "a TTL of at most SESSION_TTL, got {ttl}"
    );

    app.logout().await;
    assert_eq!(namespace.key_count(), 0);
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod db {
            $(#[actix_web::test]
            async fn $scenario() {
                super::$scenario(super::Engine::Db).await;
            })*
        }
        mod redis {
            $(#[actix_web::test]
            async fn $scenario() {
                super::$scenario(super::Engine::Redis).await;
            })*
        }
        mod cookie {
            $(#[actix_web::test]
            async fn $scenario() {
                super::$scenario(super::Engine::Cookie).await;
            })*
        }
    };
}

conformance!(
    the_key_changes_at_login,
    the_session_is_saved_only_when_modified,
    an_expired_session_is_anonymous,
    logout_ends_the_session,
    another_session_can_be_revoked_where_the_engine_lists_them,
    a_password_change_ends_other_sessions,
    a_password_change_cycles_this_sessions_key,
    a_session_gone_at_save_time_is_not_resurrected,
    signing_out_during_a_request_that_writes_the_session_leaves_the_browser_anonymous,
    a_tampered_cookie_is_anonymous,
    redis_keys_hold_hashes_with_a_ttl_and_go_at_logout,
);
