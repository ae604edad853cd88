//! The `porter` command line, run as a user would run it.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use actix_web::http::StatusCode;

use crate::helpers::{TEST_SECRET_KEY, TEST_SITE_URL, TestUser, spawn_app};

/// Runs the real `porter` binary, a separate process, against `database_url`.
pub(crate) fn porter(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DEBUG", "false")
        .env("SITE_URL", TEST_SITE_URL)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("porter runs");
    // The command may exit before reading (bad arguments): ignore a broken pipe.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("porter finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[actix_web::test]
async fn createuser_makes_a_user_who_can_sign_in() {
    let app = spawn_app().await;
    let out = porter(
        &app.database_url(),
        &["createuser", "bob", "--password-stdin"],
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("User \"bob\" created"));

    let res = app
        .submit_form(
            "/login",
            "/login",
            &[("username", "bob"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(res.location(), Some("/profile"));
}

#[actix_web::test]
async fn createuser_refuses_a_taken_name_and_a_short_password() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice");

    let out = porter(
        &app.database_url(),
        &["createuser", "ALICE", "--password-stdin"],
        "long enough pw\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = porter(
        &app.database_url(),
        &["createuser", "carol", "--password-stdin"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));

    let out = porter(
        &app.database_url(),
        &["createuser", "bad name", "--password-stdin"],
        "long enough pw\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("username"), "{}", stderr(&out));
}

#[actix_web::test]
async fn session_show_prints_the_user_id_and_backend_after_a_login() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");

    let out = porter(&app.database_url(), &["session", "show", &cookie], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let decoded: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(decoded["_auth_user_id"], alice.id.to_string());
    assert_eq!(decoded["_auth_user_backend"], "model");

    let out = porter(&app.database_url(), &["session", "show", "no-such-key"], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no session has that key"));
}

#[actix_web::test]
async fn a_bad_setting_stops_with_one_line_naming_it() {
    let app = spawn_app().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_porter"));
    let out = cmd
        .args(["migrate"])
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("SESSION_ENGINE", "memcached")
        .output()
        .expect("porter runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SESSION_ENGINE"));
}

#[actix_web::test]
async fn migrate_reports_an_up_to_date_database() {
    let app = spawn_app().await;
    let out = porter(&app.database_url(), &["migrate"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 migration(s) applied"));
}

#[actix_web::test]
async fn changepassword_sets_a_new_password_and_refuses_weak_ones() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let url = app.database_url();

    let out = porter(
        &url,
        &["changepassword", "alice", "--password-stdin"],
        "12345678\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too common") || stderr(&out).contains("numeric"));

    let out = porter(
        &url,
        &["changepassword", "nobody", "--password-stdin"],
        "x\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no user named \"nobody\""));

    let out = porter(
        &url,
        &["changepassword", "alice", "--password-stdin"],
        "a new long passphrase\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        alice.login(&app).await.status,
        StatusCode::OK,
        "old one refused"
    );
    let renewed = TestUser {
        password: "a new long passphrase".into(),
        ..alice
    };
    assert_eq!(renewed.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn commands_find_a_user_by_any_unicode_spelling_of_the_name() {
    let app = spawn_app().await;
    TestUser::create(&app, "émile");
    let url = app.database_url();

    let out = porter(
        &url,
        &["createuser", "ÉMILE", "--password-stdin"],
        "long enough pw\n",
    );
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = porter(&url, &["deactivate", "ＥＭＩＬＥ"], "");
    assert!(!out.status.success(), "a different name: E is not É");
    let out = porter(&url, &["deactivate", "ÉMILE"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"émile\" is deactivated"),
        "{}",
        stdout(&out)
    );
}

#[actix_web::test]
async fn deactivate_and_activate_control_who_can_sign_in() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let url = app.database_url();
    alice.login(&app).await;

    let out = porter(&url, &["deactivate", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        app.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "session ended"
    );
    assert_eq!(
        alice.login(&app).await.status,
        StatusCode::OK,
        "login refused"
    );

    let out = porter(&url, &["activate", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}

#[actix_web::test]
async fn users_list_and_session_list_show_what_is_stored() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    TestUser::create(&app, "bob");
    alice.login(&app).await;
    let url = app.database_url();

    let out = porter(&url, &["users", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(listing.contains("alice") && listing.contains("bob"));
    assert!(listing.contains("2 user(s)."));

    let out = porter(&url, &["session", "list", "--user", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 live session(s)."));
    let out = porter(&url, &["session", "list", "--user", "bob"], "");
    assert!(stdout(&out).contains("0 live session(s)."));
}

#[actix_web::test]
async fn session_list_finds_a_users_sessions_on_redis_and_deactivate_ends_them() {
    if !crate::services::available("redis") {
        return;
    }
    let namespace = crate::services::RedisNamespace::new();
    let redis_url = crate::services::redis_url();
    let engine = [
        ("SESSION_ENGINE", "redis"),
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_KEY_PREFIX", namespace.prefix.as_str()),
    ];
    let app = crate::helpers::spawn_app_with(&engine).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    alice.login(&app.new_browser()).await;
    let porter_on_redis = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_porter"))
            .args(args)
            .envs(engine)
            .env("DATABASE_URL", app.database_url())
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .env("DEBUG", "false")
            .env("SITE_URL", TEST_SITE_URL)
            .env("RUST_LOG", "warn")
            .output()
            .expect("porter runs")
    };

    let out = porter_on_redis(&["session", "list", "--user", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 live session(s)."),
        "{}",
        stdout(&out)
    );
    let out = porter_on_redis(&["session", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pass --user NAME"));

    let out = porter_on_redis(&["deactivate", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        namespace.key_count(),
        0,
        "every session of alice's, at once"
    );
    let out = porter_on_redis(&["session", "list", "--user", "alice"]);
    assert!(stdout(&out).contains("0 live session(s)."));
}

#[actix_web::test]
async fn clearsessions_deletes_expired_sessions_and_says_how_many() {
    use diesel::prelude::*;
    use porter::schema::sessions;

    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    alice.login(&app.new_browser()).await;
    let past = porter::sessions::models::now() - time::Duration::hours(1);
    diesel::update(sessions::table.filter(sessions::id.eq(1)))
        .set(sessions::expires_at.eq(past))
        .execute(&mut *app.db())
        .expect("expire one session");

    let out = porter(&app.database_url(), &["clearsessions"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 expired session(s) deleted."));
    assert_eq!(app.session_rows(), 1);
}

#[actix_web::test]
async fn an_unreachable_database_is_a_clear_error() {
    let out = porter(
        "sqlite:///no/such/directory/porter.db",
        &["users", "list"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("DATABASE_URL: cannot open"),
        "{}",
        stderr(&out)
    );
}

#[actix_web::test]
async fn check_deploy_lists_unsafe_settings_with_a_fix_each() {
    let app = spawn_app().await;
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["check", "--deploy"])
        .env("DATABASE_URL", app.database_url())
        .env("DEBUG", "true")
        .env(
            "SECRET_KEY",
            "change-me-change-me-change-me-change-me-change-me-change-me-change-me",
        )
        .env("SESSION_ENGINE", "cookie")
        .env("BIND", "0.0.0.0:8080")
        .env("ARGON2_MEMORY_KIB", "1024")
        .output()
        .expect("porter runs");
    assert!(!out.status.success());
    let report = stdout(&out);
    for id in ["W001", "W002", "W003", "W005", "W006", "W007", "W008"] {
        assert!(report.contains(&format!("porter.{id}")), "{id} in {report}");
    }
    assert!(
        report.lines().all(|line| line.contains(" Fix: ")),
        "{report}"
    );

    let strong = porter(&app.database_url(), &["secret", "generate"], "");
    let key = stdout(&strong).trim().to_owned();
    assert_eq!(key.len(), 128);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));

    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["check", "--deploy"])
        .env("DATABASE_URL", app.database_url())
        .env("DEBUG", "false")
        .env("SECRET_KEY", &key)
        .env("SITE_URL", "https://porter.example")
        .env("EMAIL_URL", "smtps://porter:secret@mail.porter.example")
        .output()
        .expect("porter runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("no issues"));
}

#[actix_web::test]
async fn check_deploy_warns_about_mail_that_stays_on_this_machine() {
    let app = spawn_app().await;
    for email_url in ["console:", "file:///tmp/porter-mail"] {
        let out = Command::new(env!("CARGO_BIN_EXE_porter"))
            .args(["check", "--deploy"])
            .env("DATABASE_URL", app.database_url())
            .env("DEBUG", "false")
            .env(
                "SECRET_KEY",
                "8d0f6c0b5a4e3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6",
            )
            .env("SITE_URL", "https://porter.example")
            .env("EMAIL_URL", email_url)
            .output()
            .expect("porter runs");
        assert!(!out.status.success(), "{email_url}");
        let report = stdout(&out);
        assert!(report.contains("porter.W009"), "{report}");
        assert!(report.contains("sendtestemail"), "{report}");
    }
}

#[actix_web::test]
async fn createuser_takes_an_email_address_and_sendtestemail_sends_a_mail() {
    let app = spawn_app().await;
    let out = porter(
        &app.database_url(),
        &[
            "createuser",
            "bob",
            "--email",
            "Bob@Example.com",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    TestUser {
        username: "bob".into(),
        password: "correct horse battery".into(),
        id: 0,
    }
    .login(&app)
    .await;
    let profile = app.get("/profile").await;
    assert!(
        profile.body.contains("Bob@example.com (confirmed)"),
        "{}",
        profile.body
    );

    let taken = porter(
        &app.database_url(),
        &[
            "createuser",
            "carol",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(!taken.status.success());
    assert!(
        stderr(&taken).contains("already exists"),
        "{}",
        stderr(&taken)
    );

    let outbox = tempfile::tempdir().expect("a folder");
    let url = format!("file://{}", outbox.path().display());
    let sent = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["sendtestemail", "carol@example.com"])
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DEBUG", "false")
        .env("SITE_URL", TEST_SITE_URL)
        .env("EMAIL_URL", &url)
        .env("EMAIL_FROM", "Porter <noreply@porter.example>")
        .output()
        .expect("porter runs");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let mail = porter::testing::mail::read_mail_dir(outbox.path());
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, "carol@example.com");
    assert!(mail[0].text.contains("Porter's mail settings work"));

    let refused = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["sendtestemail", "carol@example.com"])
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DEBUG", "false")
        .env("SITE_URL", TEST_SITE_URL)
        .env("EMAIL_URL", "smtp://u:hunter2@127.0.0.1:1")
        .output()
        .expect("porter runs");
    assert!(!refused.status.success(), "nothing listens on port 1");
    assert!(
        !stderr(&refused).contains("hunter2"),
        "{}",
        stderr(&refused)
    );
}

#[actix_web::test]
async fn a_postgres_server_that_is_down_stops_start_up_without_a_sqlite_fallback() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("migrate")
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            "postgres://porter:secret@127.0.0.1:1/porter",
        )
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DEBUG", "false")
        .env("SITE_URL", TEST_SITE_URL)
        .output()
        .expect("porter runs");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("DATABASE_URL: cannot open postgres://porter:***@127.0.0.1:1/porter"),
        "{err}"
    );
    assert!(!err.contains("secret"), "the password is not shown");
    assert_eq!(err.lines().count(), 1, "{err}");
    let left = std::fs::read_dir(dir.path())
        .expect("the directory")
        .count();
    assert_eq!(left, 0, "no SQLite file was created");
}

#[actix_web::test]
async fn an_unreachable_redis_stops_start_up_with_a_clear_message() {
    let app = spawn_app().await;
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .arg("serve")
        .env("DATABASE_URL", app.database_url())
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DEBUG", "false")
        .env("SITE_URL", TEST_SITE_URL)
        .env("BIND", "127.0.0.1:0")
        .env("SESSION_ENGINE", "redis")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("porter runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("REDIS_URL: cannot connect to Redis"),
        "{}",
        stderr(&out)
    );
}

#[actix_web::test]
async fn createuser_staff_makes_a_staff_member() {
    let app = spawn_app().await;
    let out = porter(
        &app.database_url(),
        &["createuser", "carol", "--staff", "--password-stdin"],
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Staff user \"carol\" created"));
    let carol = porter::auth::models::find_by_username(&mut app.db(), "carol")
        .expect("a query")
        .expect("carol");
    assert!(carol.is_staff && !carol.is_superuser);
}

#[actix_web::test]
async fn perms_and_groups_grant_and_revoke_and_every_change_is_logged() {
    let app = spawn_app().await;
    TestUser::create(&app, "dave");
    let db = app.database_url();
    let run = |args: &[&str]| {
        let out = porter(&db, args, "");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(run(&["perms", "list"]).contains("sessions.view_any"));
    assert!(run(&["perms", "grant", "dave", "users.view"]).contains("now holds users.view"));
    assert!(run(&["perms", "grant", "dave", "users.view"]).contains("already held"));
    run(&["groups", "create", "support"]);
    run(&["groups", "grant", "support", "sessions.revoke_any"]);
    run(&["groups", "add", "dave", "support"]);
    let held = run(&["perms", "list", "--user", "dave"]);
    assert!(
        held.contains("users.view") && held.contains("sessions.revoke_any"),
        "{held}"
    );
    assert!(held.contains("groups: support"), "{held}");

    run(&["perms", "revoke", "dave", "users.view"]);
    run(&["groups", "remove", "dave", "support"]);
    assert!(!run(&["perms", "list", "--user", "dave"]).contains("users.view"));

    let unknown = porter(&db, &["perms", "grant", "dave", "no.such"], "");
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("no permission named \"no.such\""));

    let log = run(&["events", "--user", "dave"]);
    for kind in [
        "permission_granted",
        "group_joined",
        "permission_revoked",
        "group_left",
    ] {
        assert_eq!(log.matches(kind).count(), 1, "{kind} once in\n{log}");
    }
    let all = run(&["events"]);
    assert!(all.contains("group_created") && all.contains("group_permission_granted"));
}

#[actix_web::test]
async fn deactivate_ends_the_users_sessions_at_once_and_is_logged() {
    let app = spawn_app().await;
    let erin = TestUser::create(&app, "erin");
    erin.login(&app).await;
    assert_eq!(app.session_rows(), 1);
    let out = porter(&app.database_url(), &["deactivate", "erin"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 session(s) ended"));
    assert_eq!(app.session_rows(), 0);
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    let log = stdout(&porter(
        &app.database_url(),
        &["events", "--user", "erin"],
        "",
    ));
    assert!(log.contains("user_deactivated"), "{log}");
    let _ = erin;
}

#[actix_web::test]
async fn clearsessions_prunes_security_events_older_than_their_ttl() {
    use diesel::prelude::*;
    use porter::schema::auth_events;
    let app = spawn_app().await;
    let frank = TestUser::create(&app, "frank");
    frank.login(&app).await;
    frank.login(&app.new_browser()).await;
    let oldest: i32 = auth_events::table
        .select(auth_events::id)
        .order(auth_events::id.asc())
        .first(&mut *app.db())
        .expect("an event");
    diesel::update(auth_events::table.find(oldest))
        .set(auth_events::created_at.eq(porter::db::now() - time::Duration::days(91)))
        .execute(&mut *app.db())
        .expect("backdate");
    let out = porter(&app.database_url(), &["clearsessions"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 security log event(s)"),
        "{}",
        stdout(&out)
    );
    let left: i64 = auth_events::table
        .count()
        .get_result(&mut *app.db())
        .expect("count");
    assert_eq!(left, 1);
}

#[actix_web::test]
async fn twofactor_reset_lets_the_password_alone_sign_in_again() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    crate::two_factor::enable_two_factor(&app, &alice).await;
    assert_eq!(alice.login(&app).await.location(), Some("/login/verify"));
    app.clear_cookies();

    let out = porter(&app.database_url(), &["twofactor", "reset", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("10 recovery codes"),
        "{}",
        stdout(&out)
    );
    assert_eq!(alice.login(&app).await.location(), Some("/profile"));
}
