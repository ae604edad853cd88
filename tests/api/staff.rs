//! The staff area and its guards: who gets in (303 to sign in, 403, 200),
//! what each action needs, what it costs, and what it leaves in the log.

use actix_web::http::StatusCode;
use porter::auth::{
    grants,
    models::{self, User},
    permissions::{self, DECLARED, Permission},
};

use crate::{
    helpers::{TestApp, TestUser, spawn_app},
    security_log::events,
};

/// A staff member (or not) holding `perms` directly.
fn member<S>(app: &TestApp<S>, name: &str, is_staff: bool, perms: &[Permission]) -> TestUser {
    let user = TestUser::create(app, name);
    let mut conn = app.db();
    models::set_staff(&mut conn, user.id, is_staff).expect("staff flag");
    for permission in perms {
        let id = grants::find_permission(&mut conn, permission.codename)
            .expect("a query")
            .expect("synced")
            .id;
        grants::grant_to_user(&mut conn, user.id, id).expect("grant");
    }
    user
}

fn reload<S>(app: &TestApp<S>, id: i32) -> User {
    models::find_by_id(&mut app.db(), id)
        .expect("a query")
        .expect("the user")
}

const EVERY_PERMISSION: &[Permission] = DECLARED;

#[actix_web::test]
async fn the_staff_area_lets_in_only_signed_in_staff_holding_the_permission() {
    let app = spawn_app().await;
    let view = &[permissions::VIEW_USERS];
    // Anonymous: to the login page, coming back here.
    app.get("/staff/users")
        .await
        .assert_redirects_to_login("/staff/users");

    let cases = [
        (member(&app, "plain", false, &[]), StatusCode::FORBIDDEN),
        (member(&app, "holder", false, view), StatusCode::FORBIDDEN),
        (member(&app, "bare_staff", true, &[]), StatusCode::FORBIDDEN),
        (member(&app, "direct", true, view), StatusCode::OK),
        (member(&app, "grouped", true, &[]), StatusCode::OK),
        (member(&app, "root", false, &[]), StatusCode::OK),
    ];
    {
        let mut conn = app.db();
        let desk = grants::create_group(&mut conn, "help desk").expect("a group");
        let perm = grants::find_permission(&mut conn, permissions::VIEW_USERS.codename)
            .expect("a query")
            .expect("synced");
        grants::grant_to_group(&mut conn, desk.id, perm.id).expect("grant");
        grants::add_to_group(&mut conn, cases[4].0.id, desk.id).expect("join");
        models::set_superuser(&mut conn, cases[5].0.id, true).expect("promote");
    }
    for (user, expected) in &cases {
        let browser = app.new_browser();
        user.login(&browser).await;
        let res = browser.get("/staff/users").await;
        assert_eq!(res.status, *expected, "{}", user.username);
        if *expected == StatusCode::FORBIDDEN {
            assert!(res.body.contains("Permission denied"), "a readable page");
        }
    }

    // An inactive staff member's session ends: they are anonymous again.
    let browser = app.new_browser();
    cases[3].0.login(&browser).await;
    models::set_active(&mut app.db(), cases[3].0.id, false).expect("deactivate");
    browser
        .get("/staff/users")
        .await
        .assert_redirects_to_login("/staff/users");
}

#[actix_web::test]
async fn permission_checks_cost_one_query_however_many_are_asked() {
    let app = spawn_app().await;
    let boss = member(&app, "boss", true, EVERY_PERMISSION);
    let target = TestUser::create(&app, "target");
    boss.login(&app).await;
    // Session, user, the permissions (once), the page of users.
    let list = app.get("/staff/users").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.query_count(), 4);
    // The user page asks seven permissions (the guards' and its own): one
    // permission query still. Session, user, permissions; the target, their
    // groups, direct and held permissions, every group, every permission;
    // their sessions; their events.
    let page = app.get(&format!("/staff/users/{}", target.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.query_count(), 11);
    // Pages that ask nothing pay nothing.
    assert_eq!(app.get("/profile").await.query_count(), 2);
}

/// A form's fields.
type Fields = Vec<(&'static str, &'static str)>;

/// Every staff action: its path (after `/staff/users/{id}`), its form, and
/// the permission it needs.
fn actions() -> Vec<(&'static str, Fields, Permission)> {
    vec![
        ("/deactivate", vec![], permissions::CHANGE_ACTIVE),
        ("/activate", vec![], permissions::CHANGE_ACTIVE),
        (
            "/sign-out-everywhere",
            vec![],
            permissions::REVOKE_ANY_SESSIONS,
        ),
        (
            "/groups/add",
            vec![("group", "support")],
            permissions::CHANGE_PERMISSIONS,
        ),
        (
            "/groups/remove",
            vec![("group", "support")],
            permissions::CHANGE_PERMISSIONS,
        ),
        (
            "/permissions/grant",
            vec![("permission", "sessions.view_any")],
            permissions::CHANGE_PERMISSIONS,
        ),
        (
            "/permissions/revoke",
            vec![("permission", "sessions.view_any")],
            permissions::CHANGE_PERMISSIONS,
        ),
        (
            "/flags",
            vec![("flag", "staff"), ("value", "on")],
            permissions::CHANGE_PERMISSIONS,
        ),
        ("/password-reset", vec![], permissions::SEND_PASSWORD_RESET),
        ("/two-factor/reset", vec![], permissions::RESET_TWO_FACTOR),
    ]
}

#[actix_web::test]
async fn every_action_is_refused_without_its_permission_and_without_a_csrf_token() {
    let app = spawn_app().await;
    grants::create_group(&mut app.db(), "support").expect("a group");
    let target = TestUser::create_with_email(&app, "target", "target@example.com");
    let page = format!("/staff/users/{}", target.id);
    for (path, fields, needed) in actions() {
        let action = format!("{page}{path}");
        // Staff with every permission but this one.
        let others: Vec<Permission> = EVERY_PERMISSION
            .iter()
            .copied()
            .filter(|p| *p != needed)
            .collect();
        let name = format!("lacks{}", path.replace(['/', '-'], "_"));
        let lacking = member(&app, &name, true, &others);
        let browser = app.new_browser();
        lacking.login(&browser).await;
        let res = browser.submit_form(&page, &action, &fields).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{action} without {needed:?}"
        );

        // Staff with every permission, but no token.
        let holder = member(&app, &format!("holds{name}"), true, EVERY_PERMISSION);
        let browser = app.new_browser();
        holder.login(&browser).await;
        let res = browser.post_form(&action, &fields).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{action} without a token"
        );
        // Anonymous (with a token): to sign in.
        let anonymous = app.new_browser();
        let token = anonymous.get("/login").await.csrf_token();
        let mut with_token = fields.clone();
        with_token.push(("csrf_token", &token));
        anonymous
            .post_form(&action, &with_token)
            .await
            .assert_redirects_to_login(&action);
    }
    // Nothing happened to the target, and nothing was logged about them.
    let target_now = reload(&app, target.id);
    assert!(target_now.is_active && !target_now.is_staff);
    assert!(
        events(&app)
            .iter()
            .all(|event| event.user_id != Some(target.id)),
        "no action was made"
    );
    assert!(app.mail_to("target@example.com").await.is_empty());
}

#[actix_web::test]
async fn each_action_leaves_one_row_naming_the_staff_member() {
    let app = spawn_app().await;
    grants::create_group(&mut app.db(), "support").expect("a group");
    let target = TestUser::create_with_email(&app, "target", "target@example.com");
    let boss = member(&app, "boss", true, EVERY_PERMISSION);
    boss.login(&app).await;
    let page = format!("/staff/users/{}", target.id);
    let expected = [
        "user_deactivated",
        "user_activated",
        "signed_out_everywhere",
        "group_joined",
        "group_left",
        "permission_granted",
        "permission_revoked",
        "staff_granted",
        "password_reset_sent",
        "two_factor_reset",
    ];
    for ((path, fields, _), kind) in actions().into_iter().zip(expected) {
        let before = events(&app).len();
        let res = app
            .submit_form(&page, &format!("{page}{path}"), &fields)
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.location(), Some(page.as_str()));
        let new: Vec<_> = events(&app).into_iter().skip(before).collect();
        assert_eq!(new.len(), 1, "{path}: {new:?}");
        assert_eq!(new[0].kind, kind);
        assert_eq!(new[0].user_id, Some(target.id));
        assert_eq!(new[0].actor_id, Some(boss.id));
    }
    assert!(reload(&app, target.id).is_staff);
    assert_eq!(app.mail_to("target@example.com").await.len(), 1);
    // Doing again what is done changes nothing and logs nothing.
    let before = events(&app).len();
    app.submit_form(
        &page,
        &format!("{page}/groups/remove"),
        &[("group", "support")],
    )
    .await;
    assert_eq!(events(&app).len(), before);
}

#[actix_web::test]
async fn a_deactivated_user_is_signed_out_everywhere_and_cannot_sign_in() {
    let app = spawn_app().await;
    let target = TestUser::create(&app, "target");
    let phone = app.new_browser();
    target.login(&phone).await;
    assert_eq!(phone.get("/profile").await.status, StatusCode::OK);
    let boss = member(
        &app,
        "boss",
        true,
        &[permissions::VIEW_USERS, permissions::CHANGE_ACTIVE],
    );
    boss.login(&app).await;
    let page = format!("/staff/users/{}", target.id);
    app.submit_form(&page, &format!("{page}/deactivate"), &[])
        .await;
    phone
        .get("/profile")
        .await
        .assert_redirects_to_login("/profile");
    let again = target.login(&app.new_browser()).await;
    assert_eq!(again.status, StatusCode::OK, "the form again");
    assert!(
        again
            .body
            .contains("Please enter a correct username and password")
    );
}

#[actix_web::test]
async fn staff_reset_the_two_factor_of_a_user_who_lost_every_factor() {
    let app = spawn_app().await;
    let target = TestUser::create(&app, "target");
    crate::two_factor::enable_two_factor(&app, &target).await;
    let before = app.new_browser();
    assert_eq!(
        target.login(&before).await.location(),
        Some("/login/verify"),
        "two-factor sign-in is on"
    );
    let boss = member(
        &app,
        "boss",
        true,
        &[permissions::VIEW_USERS, permissions::RESET_TWO_FACTOR],
    );
    boss.login(&app).await;
    let page = format!("/staff/users/{}", target.id);
    let res = app
        .submit_form(&page, &format!("{page}/two-factor/reset"), &[])
        .await;
    assert_eq!(res.location(), Some(page.as_str()));
    assert!(
        app.get(&page)
            .await
            .body
            .contains("their password alone signs in")
    );

    let after = app.new_browser();
    assert_eq!(
        target.login(&after).await.location(),
        Some("/profile"),
        "the password alone signs in"
    );
    let logged: Vec<_> = events(&app)
        .into_iter()
        .filter(|event| event.kind == "two_factor_reset")
        .collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].user_id, Some(target.id));
    assert_eq!(logged[0].actor_id, Some(boss.id));
}

#[actix_web::test]
async fn only_a_superuser_can_make_a_superuser() {
    let app = spawn_app().await;
    let target = TestUser::create(&app, "target");
    let staff = member(&app, "staff", true, EVERY_PERMISSION);
    let page = format!("/staff/users/{}", target.id);
    let promote = [("flag", "superuser"), ("value", "on")];
    staff.login(&app).await;
    let res = app
        .submit_form(&page, &format!("{page}/flags"), &promote)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(!reload(&app, target.id).is_superuser);

    let root = member(&app, "root", true, &[]);
    models::set_superuser(&mut app.db(), root.id, true).expect("promote");
    let browser = app.new_browser();
    root.login(&browser).await;
    let res = browser
        .submit_form(&page, &format!("{page}/flags"), &promote)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(reload(&app, target.id).is_superuser);
}

#[actix_web::test]
async fn staff_find_users_by_name_a_page_at_a_time() {
    let app = spawn_app().await;
    for n in 0..30 {
        TestUser::create(&app, &format!("user{n:02}"));
    }
    TestUser::create_with_email(&app, "zed", "zed_100%@example.com");
    let boss = member(&app, "boss", true, &[permissions::VIEW_USERS]);
    boss.login(&app).await;
    let first = app.get("/staff/users").await;
    assert_eq!(first.body.matches("href=\"/staff/users/").count(), 25);
    assert!(first.body.contains("rel=\"next\""));
    let second = app.get("/staff/users?q=&page=2").await;
    assert!(second.body.contains("rel=\"prev\""));
    assert!(second.body.contains(">zed</a>"));
    let found = app.get("/staff/users?q=USER1").await;
    assert_eq!(found.body.matches("href=\"/staff/users/").count(), 10);
    let literal = app.get("/staff/users?q=100%25").await;
    assert!(literal.body.contains(">zed</a>"));
    let none = app.get("/staff/users?q=%25%25%25x").await;
    assert!(none.body.contains("No user matches"));
}

#[actix_web::test]
async fn the_header_links_to_the_staff_area_for_staff_only() {
    let app = spawn_app().await;
    let staff = member(&app, "staff", true, &[permissions::VIEW_USERS]);
    let plain = TestUser::create(&app, "plain");
    staff.login(&app).await;
    assert!(
        app.get("/profile")
            .await
            .body
            .contains("href=\"/staff/users\"")
    );
    assert!(app.get("/").await.body.contains("href=\"/staff/users\""));
    let other = app.new_browser();
    plain.login(&other).await;
    assert!(!other.get("/profile").await.body.contains("/staff/"));
    assert!(!other.get("/").await.body.contains("/staff/"));
}

#[actix_web::test]
async fn staff_read_everyones_log_filtered_by_user_and_kind() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app.new_browser()).await;
    app.submit_form(
        "/login",
        "/login",
        &[("username", "alice"), ("password", "wrong")],
    )
    .await;
    TestUser::create(&app, "bob")
        .login(&app.new_browser())
        .await;
    let auditor = member(&app, "auditor", true, &[permissions::VIEW_ANY_EVENTS]);
    auditor.login(&app).await;
    let alices = app.get("/staff/events?user=alice").await;
    assert_eq!(alices.status, StatusCode::OK);
    assert_eq!(alices.body.matches("<td title=\"login\">").count(), 1);
    assert_eq!(
        alices.body.matches("<td title=\"login_failed\">").count(),
        1,
        "found by digest"
    );
    let failed = app.get("/staff/events?kind=login_failed").await;
    assert_eq!(failed.body.matches("<td title=").count(), 1);
    let nobody = app.get("/staff/events?user=nobody").await;
    assert!(nobody.body.contains("No user is named nobody"));
    // The log is not the user list: no permission, no entry.
    assert_eq!(app.get("/staff/users").await.status, StatusCode::FORBIDDEN);
}
