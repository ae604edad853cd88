//! The hot path does only the work a page needs: queries per route, read
//! from the `Server-Timing` header. Every GET page of the route table has
//! its count here, each number with what its queries are, so that a
//! shortcut (or a new page) that changes one is a decision, not a drift.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use porter::urls;

use crate::{
    helpers::{TestApp, TestUser, spawn_app},
    two_factor,
};

/// What was measured: each page's route pattern, and every count that
/// was not the expected one.
#[derive(Default)]
struct Counts {
    routes: BTreeSet<&'static str>,
    wrong: Vec<String>,
}

impl Counts {
    /// Notes `route` as covered, and `queries` if it is not `expected`.
    fn check(
        &mut self,
        who: &str,
        route: &'static str,
        path: &str,
        res: &crate::helpers::TestResponse,
        expected: u64,
    ) {
        self.routes.insert(route);
        let queries = res.query_count();
        if queries != expected {
            self.wrong.push(format!(
                "{who} GET {path} ({}): {queries} queries, expected {expected}",
                res.status
            ));
        }
    }
}

/// The path of the link starting `prefix` in the last mail to `address`.
async fn link_in_mail<S>(app: &TestApp<S>, address: &str, prefix: &str) -> String {
    let mail = app.mail_to(address).await;
    mail.last()
        .and_then(|mail| mail.path(prefix))
        .unwrap_or_else(|| panic!("a {prefix} link mailed to {address}"))
}

#[actix_web::test]
async fn each_get_page_runs_only_the_queries_it_needs() {
    let app = spawn_app().await;
    let mut counts = Counts::default();

    // Anonymous pages never reach the database for the user, nor for a
    // session the browser does not have.
    for (route, queries) in [
        ("/", 0),
        ("/login", 0),
        // No half-signed-in session to read: straight back to /login.
        ("/login/verify", 0),
        ("/signup", 0),
        ("/password/reset", 0),
        ("/password/reset/done", 0),
        ("/static/{name}", 0),
        // `SELECT 1`: the health check is the query.
        ("/healthz", 1),
    ] {
        let path = route.replace("{name}", "porter.css");
        let res = app.get(&path).await;
        counts.check("anonymous", route, &path, &res, queries);
        assert!(!res.loaded_user(), "anonymous {path}");
    }

    // The mailed links, opened by a visitor who is not signed in.
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    let visitor = app.new_browser();
    visitor
        .submit_form(
            "/password/reset",
            "/password/reset",
            &[("email", "alice@example.com")],
        )
        .await;
    visitor.clear_cookies();
    let link = link_in_mail(&app, "alice@example.com", "/password/reset/").await;
    let opened = visitor.get(&link).await;
    // The user named by the link, to check the token against; then the
    // token moves into a new session (one insert), out of the address bar.
    counts.check(
        "visitor",
        "/password/reset/{uid}/{token}",
        &link,
        &opened,
        2,
    );
    let form = opened.location().expect("to the form").to_owned();
    let res = visitor.get(&form).await;
    assert_eq!(res.status, StatusCode::OK, "the new-password form");
    // The session holding the token, and the user, to check it again.
    counts.check("visitor", "/password/reset/{uid}/{token}", &form, &res, 2);

    let newcomer = app.new_browser();
    newcomer
        .submit_form(
            "/signup",
            "/signup",
            &[
                ("username", "grace"),
                ("email", "grace@example.com"),
                ("password1", "a sign-up passphrase"),
                ("password2", "a sign-up passphrase"),
            ],
        )
        .await;
    let link = link_in_mail(&app, "grace@example.com", "/email/confirm/").await;
    let res = app.new_browser().get(&link).await;
    // The user named by the link; then one transaction (BEGIN, COMMIT)
    // marks the address confirmed and logs it.
    counts.check("visitor", "/email/confirm/{uid}/{token}", &link, &res, 5);

    // Signed in: one session read, one user read, no writes; then what the
    // page itself shows.
    alice.login(&app).await;
    for (route, queries) in [
        ("/", 2),
        ("/profile", 2),
        ("/password", 2),
        ("/email", 2),
        // ... the user's sessions.
        ("/sessions", 3),
        // ... one each: passkeys, TOTP, recovery codes left, recent events.
        ("/security", 6),
        // ... the TOTP device and the passkeys: which factors to offer.
        ("/sudo", 4),
        // Public pages show who is signed in: the session and the user.
        ("/password/reset", 2),
        ("/password/reset/done", 2),
    ] {
        let res = app.get(route).await;
        counts.check("signed-in", route, route, &res, queries);
        assert_eq!(
            res.status,
            StatusCode::OK,
            "signed-in {route}: the page itself"
        );
        assert!(res.loaded_user(), "signed-in {route}");
    }
    two_factor::start_setup(&app).await;
    let res = app.get("/security/totp").await;
    // ... the TOTP device being set up, whose secret the page shows.
    assert_eq!(res.status, StatusCode::OK, "the set-up page itself");
    counts.check("signed-in", "/security/totp", "/security/totp", &res, 3);

    // Half signed in: the password was right, the second factor is asked.
    let bob = TestUser::create(&app, "bob");
    let phone = app.new_browser();
    two_factor::enable_two_factor(&phone, &bob).await;
    assert_eq!(bob.login(&phone).await.location(), Some("/login/verify"));
    let res = phone.get("/login/verify").await;
    assert_eq!(res.status, StatusCode::OK, "the code form itself");
    // The session that holds the half sign-in (the user is not loaded:
    // not signed in yet), and the user's passkeys: whether to offer one.
    counts.check("half-signed-in", "/login/verify", "/login/verify", &res, 2);

    // The staff area: the permissions are read once, however many are asked.
    let boss = TestUser::create(&app, "boss");
    porter::auth::models::set_superuser(&mut app.db(), boss.id, true).expect("promote");
    let staff = app.new_browser();
    boss.login(&staff).await;
    for (route, path, queries) in [
        // session, user, permissions, a page of users
        ("/staff/users", "/staff/users".to_owned(), 4),
        // ... the target and what they hold (6), their sessions, their events
        (
            "/staff/users/{id}",
            format!("/staff/users/{}", alice.id),
            11,
        ),
        // ... a page of events
        ("/staff/events", "/staff/events".to_owned(), 4),
    ] {
        let res = staff.get(&path).await;
        assert_eq!(res.status, StatusCode::OK, "staff {path}");
        counts.check("staff", route, &path, &res, queries);
    }

    assert!(counts.wrong.is_empty(), "{}", counts.wrong.join("\n"));
    // A GET page added to the table without a count here fails: measure
    // it, then write down what its queries are.
    let missing: Vec<&str> = urls::table()
        .iter()
        .filter(|route| route.allow.split(", ").any(|method| method == "GET"))
        .map(|route| route.path)
        .filter(|path| !counts.routes.contains(path))
        .collect();
    assert!(
        missing.is_empty(),
        "GET pages with no query count: {missing:?}"
    );
}

#[actix_web::test]
async fn a_page_that_does_not_ask_for_the_user_does_not_load_it() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice").login(&app).await;
    let css = app.get("/static/porter.css").await;
    assert_eq!(css.query_count(), 1, "the session is read, the user is not");
    assert!(!css.loaded_user());
}

#[actix_web::test]
async fn force_login_signs_in_without_the_form() {
    let app = spawn_app().await;
    app.get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    TestUser::create(&app, "alice");
    app.force_login("alice").await;
    let page = app.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.query_count(), 2);
}

#[actix_web::test]
async fn a_signed_in_page_reads_its_session_and_user_in_one_hand_off() {
    let app = spawn_app().await;
    TestUser::create(&app, "alice").login(&app).await;

    // A page that is not public always loads its user: on the database
    // engines the user is read on the session's own trip.
    let profile = app.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("alice"), "alice's own profile");
    assert_eq!(profile.query_count(), 2, "the session, then the user");
    assert!(profile.loaded_user());
    assert_eq!(profile.hand_offs(), 1);

    // A public page that asks for the user (it greets them) loads it on a
    // second trip, only once it asks.
    let home = app.get("/").await;
    assert!(home.body.contains("alice"), "the greeting names alice");
    assert_eq!(home.query_count(), 2);
    assert_eq!(home.hand_offs(), 2);

    // A stylesheet behind no guard never asks: one trip, for the session.
    let css = app.get("/static/porter.css").await;
    assert_eq!((css.query_count(), css.hand_offs()), (1, 1));
}
