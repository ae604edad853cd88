//! One conformance suite for the four session engines (`db`, `cached_db`,
//! `redis`, `cookie`): the same scenarios, run against each. Where an
//! engine cannot do something, the test asserts its documented behaviour
//! instead.

use actix_session::storage::{SessionKey, SessionStore};
use actix_web::{
    body::MessageBody,
    cookie::time::Duration,
    dev::{Service, ServiceResponse},
    http::StatusCode,
};
use diesel::prelude::*;
use porter::{
    sessions::{open_session_cookie, outcome, seal_session_cookie},
    startup::cookie_key,
};
use sha2::{Digest, Sha256};

use crate::{
    helpers::{TestApp, TestUser, spawn_app_with, spawn_sibling},
    services::{self, RedisNamespace},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Db,
    CachedDb,
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
        Engine::Redis | Engine::CachedDb => {
            if !services::available("redis") {
                return None;
            }
            let namespace = RedisNamespace::new();
            let name = if engine == Engine::Redis {
                "redis"
            } else {
                "cached_db"
            };
            settings.push(("SESSION_ENGINE".into(), name.into()));
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

/// `SESSION_MAX_AGE`: however busy, and even remembered, a session ends
/// that long after its login; the store keeps it no longer either.
async fn a_session_ends_at_its_absolute_lifetime_whatever_its_activity(engine: Engine) {
    let Some((app, namespace)) = spawn(engine, &[("SESSION_MAX_AGE", "4s")]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    let started = std::time::Instant::now();
    let login = alice.login_with(&app, &[("remember_me", "on")]).await;
    let cookie = login.set_cookie("sessionid").expect("a session cookie");
    let max_age = cookie
        .max_age()
        .expect("a remembered cookie")
        .whole_seconds();
    assert!(
        (1..=4).contains(&max_age),
        "{engine:?}: the cookie lasts no longer than the session, got {max_age}"
    );
    match engine {
        Engine::Db | Engine::CachedDb => {
            let expires_at: time::PrimitiveDateTime = porter::schema::sessions::table
                .select(porter::schema::sessions::expires_at)
                .first(&mut *app.db())
                .expect("a session row");
            let left = (expires_at - porter::sessions::models::now()).whole_seconds();
            assert!(
                left <= 4,
                "{engine:?}: the row expires with it, got {left}s"
            );
        }
        Engine::Redis => {
            let namespace = namespace.as_ref().expect("a namespace");
            for key in namespace.keys() {
                let ttl = namespace.ttl(&key);
                assert!(ttl <= 4, "{engine:?}: {key} lives {ttl}s");
            }
        }
        Engine::Cookie => {}
    }
    // Busy all along: a page every half second (login times are whole
    // seconds, so the session may end up to a second early).
    while started.elapsed() < std::time::Duration::from_millis(2000) {
        assert_eq!(
            app.get("/profile").await.status,
            StatusCode::OK,
            "{engine:?}"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let end = std::time::Duration::from_millis(5100);
    actix_web::rt::time::sleep(end.saturating_sub(started.elapsed())).await;
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    let replay = app.new_browser();
    replay.set_cookie("sessionid", cookie.value());
    replay
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
}

/// How long the store keeps the browser's session, in seconds, by the
/// store's own reckoning (row, Redis TTL, the cookie's sealed expiry).
fn stored_lifetime<S>(app: &TestApp<S>, engine: Engine, namespace: Option<&RedisNamespace>) -> i64 {
    match engine {
        Engine::Db | Engine::CachedDb => {
            let expires_at: time::PrimitiveDateTime = porter::schema::sessions::table
                .select(porter::schema::sessions::expires_at)
                .first(&mut *app.db())
                .expect("a session row");
            (expires_at - porter::sessions::models::now()).whole_seconds()
        }
        Engine::Redis => {
            let namespace = namespace.expect("a namespace");
            namespace.ttl(&namespace.session_keys()[0])
        }
        Engine::Cookie => {
            let cookie = app.cookie("sessionid").expect("a session cookie");
            let data = open_session_cookie(&cookie_key(&app.state.settings), &cookie, true)
                .expect("a cookie the app sealed");
            let data: serde_json::Value = serde_json::from_str(&data).expect("JSON");
            let expires_at: i64 = data[porter::sessions::COOKIE_EXPIRES_KEY]
                .as_str()
                .and_then(|at| at.parse().ok())
                .expect("a sealed expiry");
            expires_at - time::OffsetDateTime::now_utc().unix_timestamp()
        }
    }
}

async fn remember_me_keeps_the_session_for_the_remember_ttl(engine: Engine) {
    let Some((app, namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&app, "alice");
    let browser_session = alice.login(&app).await;
    let cookie = browser_session.set_cookie("sessionid").expect("a cookie");
    assert_eq!(cookie.max_age(), None, "{engine:?}: a browser session");
    let day = 24 * 60 * 60;
    let lifetime = stored_lifetime(&app, engine, namespace.as_ref());
    assert!(
        (day - 60..=day).contains(&lifetime),
        "{engine:?}: SESSION_TTL, got {lifetime}"
    );
    app.logout().await;

    let remembered = alice.login_with(&app, &[("remember_me", "on")]).await;
    let cookie = remembered.set_cookie("sessionid").expect("a cookie");
    assert_eq!(
        cookie.max_age(),
        Some(Duration::days(14)),
        "{engine:?}: the cookie outlives the browser"
    );
    let lifetime = stored_lifetime(&app, engine, namespace.as_ref());
    assert!(
        (14 * day - 60..=14 * day).contains(&lifetime),
        "{engine:?}: SESSION_REMEMBER_TTL, got {lifetime}"
    );
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);
}

const ROTATED_KEY: &str =
    "a-new-secret-key-for-rotation-a-new-secret-key-for-rotation-0123456789abcdef";

async fn rotating_the_secret_key_keeps_sessions_while_the_old_key_is_a_fallback(engine: Engine) {
    let Some((old, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let alice = TestUser::create(&old, "alice");
    alice.login(&old).await;
    let cookie = old.cookie("sessionid").expect("a session cookie");
    let settings = &old.state.settings;
    let same_store = [
        ("SESSION_ENGINE", settings.session_engine.as_str()),
        ("REDIS_URL", settings.redis_url.as_str()),
        ("REDIS_KEY_PREFIX", settings.redis_key_prefix.as_str()),
    ];
    let rotated_settings: Vec<_> = same_store
        .iter()
        .copied()
        .chain([
            ("SECRET_KEY", ROTATED_KEY),
            ("SECRET_KEY_FALLBACKS", crate::helpers::TEST_SECRET_KEY),
        ])
        .collect();
    let rotated = spawn_sibling(&old, &rotated_settings).await;
    rotated.set_cookie("sessionid", &cookie);
    let page = rotated.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK, "{engine:?}");
    assert!(page.body.contains("alice"));
    // Re-stamped: it keeps working under the new key.
    assert_eq!(
        rotated.get("/profile").await.status,
        StatusCode::OK,
        "{engine:?}"
    );
    // Each instance holds a pool of its own: one at a time, so that the
    // suite on PostgreSQL stays within the server's connections.
    drop(rotated);

    let without: Vec<_> = same_store
        .iter()
        .copied()
        .chain([("SECRET_KEY", ROTATED_KEY)])
        .collect();
    let fallback_removed = spawn_sibling(&old, &without).await;
    fallback_removed.set_cookie("sessionid", &cookie);
    fallback_removed
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
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
        Engine::Db | Engine::CachedDb | Engine::Redis => StatusCode::SEE_OTHER,
        // Documented: a cookie session lives in the cookie, so a copy taken
        // before logout stays valid until it expires or the password changes.
        Engine::Cookie => StatusCode::OK,
    };
    assert_eq!(replay.get("/profile").await.status, expected, "{engine:?}");
}

/// The revoke URLs on a "your sessions" page, one per other session.
fn revoke_paths(page: &str) -> Vec<String> {
    page.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|path| path.ends_with("/revoke"))
        .map(str::to_owned)
        .collect()
}

async fn one_other_session_can_be_revoked_where_the_engine_keeps_them(engine: Engine) {
    let Some((laptop, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let phone = laptop.new_browser();
    let tablet = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    let bob = TestUser::create(&laptop, "bob");
    alice.login(&phone).await;
    alice.login(&laptop).await;
    let page = laptop.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);

    if engine == Engine::Cookie {
        // Documented: the server keeps no cookie session to end alone.
        assert!(
            page.body
                .contains("cannot sign out one other browser alone"),
            "{engine:?}"
        );
        assert!(page.body.contains("/sessions/revoke-others"));
        assert!(revoke_paths(&page.body).is_empty());
        let res = laptop
            .submit_form("/sessions", "/sessions/1/revoke", &[])
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{engine:?}");
        assert_eq!(phone.get("/profile").await.status, StatusCode::OK);
        return;
    }
    assert_eq!(
        page.body.matches("<li class=\"session").count(),
        2,
        "{engine:?}"
    );
    assert_eq!(page.body.matches("this browser").count(), 1, "{engine:?}");
    let [phones] = revoke_paths(&page.body)
        .try_into()
        .expect("one other session");

    // Not bob's to end: a 404, and alice's phone stays signed in.
    bob.login(&tablet).await;
    let res = tablet.submit_form("/sessions", &phones, &[]).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{engine:?}");
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);

    let res = laptop.submit_form("/sessions", &phones, &[]).await;
    assert_eq!(res.location(), Some("/sessions"), "{engine:?}");
    phone
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    assert_eq!(laptop.get("/profile").await.status, StatusCode::OK);
    let page = laptop.get("/sessions").await;
    assert_eq!(
        page.body.matches("<li class=\"session").count(),
        1,
        "{engine:?}"
    );
    let again = laptop.submit_form("/sessions", &phones, &[]).await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "{engine:?}: already gone"
    );
    // Revoking needs the page's CSRF token, like every POST.
    let forged = laptop.post_form(&phones, &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn signing_out_everywhere_else_keeps_only_this_session(engine: Engine) {
    let Some((laptop, _namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let phone = laptop.new_browser();
    let tablet = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&phone).await;
    alice.login(&tablet).await;
    alice.login(&laptop).await;
    let phones_copy = phone.cookie("sessionid").expect("a session cookie");

    let forged = laptop.post_form("/sessions/revoke-others", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF-checked");
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);

    let res = laptop
        .submit_form("/sessions", "/sessions/revoke-others", &[])
        .await;
    assert_eq!(res.location(), Some("/sessions"), "{engine:?}");
    let page = laptop.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK, "{engine:?}: this one stays");
    match engine {
        Engine::Cookie => assert!(page.body.contains("Every other browser is signed out.")),
        _ => {
            assert!(
                page.body.contains("2 other sessions signed out."),
                "{engine:?}"
            );
            assert_eq!(page.body.matches("<li class=\"session").count(), 1);
        }
    }
    for browser in [&phone, &tablet] {
        browser
            .get("/profile")
            .await
            .assert_redirects_to_login("/profile");
    }
    // A copy of an ended session's cookie, taken before: dead too, on the
    // cookie engine as well (its auth hash is of an older generation).
    let thief = laptop.new_browser();
    thief.set_cookie("sessionid", &phones_copy);
    thief
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    assert_eq!(laptop.get("/profile").await.status, StatusCode::OK);
}

/// Deactivating a user (staff, `porter deactivate`) ends every session of
/// theirs through `auth::end_every_session`: at once on the engines that
/// keep sessions, and for good on the cookie engine, even if the user is
/// let in again.
async fn ending_every_session_of_a_user_ends_them_on_every_engine(engine: Engine) {
    let Some((laptop, namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    let bob = TestUser::create(&laptop, "bob");
    alice.login(&phone).await;
    alice.login(&laptop).await;
    let bobs = laptop.new_browser();
    bob.login(&bobs).await;
    let copied = laptop.cookie("sessionid").expect("a session cookie");

    let pool = &laptop.state.pool;
    porter::auth::models::set_active(&mut laptop.db(), alice.id, false).expect("deactivate");
    let ended = porter::auth::end_every_session(
        pool,
        &laptop.state.session_backend,
        alice.id,
        porter::auth::nothing_else(),
    )
    .await
    .expect("sessions end");
    match engine {
        Engine::Cookie => assert_eq!(ended, None),
        _ => assert_eq!(ended, Some(2), "{engine:?}"),
    }
    // Gone from the store at once, not on their next request.
    match engine {
        Engine::Db | Engine::CachedDb => {
            let rows: i64 = porter::schema::sessions::table
                .filter(porter::schema::sessions::user_id.eq(alice.id))
                .count()
                .get_result(&mut *laptop.db())
                .expect("count");
            assert_eq!(rows, 0);
            if let Some(namespace) = &namespace {
                assert!(namespace.session_keys().len() <= 1, "no copy of alice's");
            }
        }
        Engine::Redis => {
            let namespace = namespace.as_ref().expect("a namespace");
            assert!(namespace.index_members(alice.id).is_empty());
            assert_eq!(namespace.session_keys().len(), 1, "bob's alone");
        }
        Engine::Cookie => {}
    }
    porter::auth::models::set_active(&mut laptop.db(), alice.id, true).expect("activate");
    for browser in [&laptop, &phone] {
        browser
            .get("/profile")
            .await
            .assert_redirects_to_login("/profile");
    }
    let thief = laptop.new_browser();
    thief.set_cookie("sessionid", &copied);
    thief
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    assert_eq!(
        bobs.get("/profile").await.status,
        StatusCode::OK,
        "{engine:?}"
    );
    assert_eq!(alice.login(&phone).await.location(), Some("/profile"));
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
    if engine != Engine::Cookie {
        // Gone from the store at once, not only on their next request.
        let page = laptop.get("/sessions").await;
        assert_eq!(
            page.body.matches("<li class=\"session").count(),
            1,
            "{engine:?}"
        );
    }
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
        Engine::Db | Engine::CachedDb => usize::try_from(app.session_rows()).expect("a count"),
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
        namespace.session_keys(),
        std::slice::from_ref(&key),
        "one key: the SHA-256"
    );
    assert_eq!(
        namespace.index_members(alice.id),
        std::slice::from_ref(&hashed)
    );
    assert!(!key.contains(&session_key), "never the session key itself");
    let ttl = namespace.ttl(&key);
    assert!(
        (1..=24 * 60 * 60).contains(&ttl),
        "a TTL of at most SESSION_TTL, got {ttl}"
    );

    app.logout().await;
    assert_eq!(namespace.key_count(), 0, "the key and its index entry");
}

/// The per-user index never shows a session that has expired: members are
/// dropped when the index is read, and the index goes with its last one.
async fn redis_index_members_never_outlive_their_session(engine: Engine) {
    if engine != Engine::Redis {
        return;
    }
    let Some((laptop, namespace)) = spawn(engine, &[("SESSION_TTL", "2s")]).await else {
        return;
    };
    let namespace = namespace.expect("a namespace");
    let alice = TestUser::create(&laptop, "alice");
    for _ in 0..2 {
        alice.login(&laptop.new_browser()).await;
    }
    assert_eq!(namespace.index_members(alice.id).len(), 2);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    // A later session keeps the index alive past the first two.
    alice.login(&laptop).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(namespace.session_keys().len(), 1, "two expired by Redis");
    assert_eq!(namespace.index_members(alice.id).len(), 3, "not read yet");
    let page = laptop.get("/sessions").await;
    assert_eq!(page.body.matches("<li class=\"session").count(), 1);
    assert_eq!(namespace.index_members(alice.id).len(), 1, "pruned on read");
    let index = format!("{}user:{}", namespace.prefix, alice.id);
    let ttl = namespace.ttl(&index);
    assert!(
        (1..=2).contains(&ttl),
        "the index lives as its longest session, got {ttl}"
    );
    actix_web::rt::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(namespace.key_count(), 0, "nothing outlives the sessions");
}

/// The `cached_db` engine reads the session from Redis (the page runs one
/// query, the user's, where `db` runs two), writes through to both, and
/// drops the cached copy with the row at logout.
async fn cached_db_reads_from_redis_and_drops_the_copy_with_the_row(engine: Engine) {
    if engine != Engine::CachedDb {
        return;
    }
    let Some((app, namespace)) = spawn(engine, &[]).await else {
        return;
    };
    let namespace = namespace.expect("a namespace");
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    assert_eq!(app.session_rows(), 1, "the row is the truth");
    assert_eq!(namespace.session_keys().len(), 1, "and Redis has a copy");
    let page = app.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.query_count(),
        1,
        "only the user is read from the database"
    );

    // A copy lost (evicted, Redis restarted): the row answers, and is cached again.
    for key in namespace.session_keys() {
        namespace.delete(&key);
    }
    let page = app.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.query_count(), 2);
    assert_eq!(namespace.session_keys().len(), 1);
    let ttl = namespace.ttl(&namespace.session_keys()[0]);
    assert!(
        (1..=60).contains(&ttl),
        "a copy lives a minute at most, got {ttl}"
    );

    app.logout().await;
    assert_eq!(app.session_rows(), 0);
    assert_eq!(namespace.key_count(), 0, "the copy went with the row");
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
        mod cached_db {
            $(#[actix_web::test]
            async fn $scenario() {
                super::$scenario(super::Engine::CachedDb).await;
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
    a_session_ends_at_its_absolute_lifetime_whatever_its_activity,
    remember_me_keeps_the_session_for_the_remember_ttl,
    rotating_the_secret_key_keeps_sessions_while_the_old_key_is_a_fallback,
    logout_ends_the_session,
    one_other_session_can_be_revoked_where_the_engine_keeps_them,
    signing_out_everywhere_else_keeps_only_this_session,
    ending_every_session_of_a_user_ends_them_on_every_engine,
    a_password_change_ends_other_sessions,
    a_password_change_cycles_this_sessions_key,
    a_session_gone_at_save_time_is_not_resurrected,
    signing_out_during_a_request_that_writes_the_session_leaves_the_browser_anonymous,
    a_tampered_cookie_is_anonymous,
    redis_keys_hold_hashes_with_a_ttl_and_go_at_logout,
    redis_index_members_never_outlive_their_session,
    cached_db_reads_from_redis_and_drops_the_copy_with_the_row,
);
