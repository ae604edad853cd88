//! "Your sessions": list, revoke one, sign out everywhere else.

use actix_web::{http::StatusCode, test::TestRequest};
use diesel::prelude::*;
use porter::schema::sessions;
use time::OffsetDateTime;

use crate::helpers::{Request, TestApp, TestResponse, TestUser, spawn_app, spawn_app_with};

/// What the "your sessions" page says about this browser's session under
/// `label` (`Address`, `Last seen`: the exact time), or `Browser` for its
/// name (its user agent, when the name is not recognised).
pub fn this_session_fact(page: &TestResponse, label: &str) -> String {
    let current = page
        .body
        .split("<li class=\"session current\">")
        .nth(1)
        .expect("this browser's session on the page");
    let marker = if label == "Browser" {
        "<p class=\"agent\">".to_owned()
    } else {
        format!("<dt>{label}</dt><dd>")
    };
    let start = current.find(&marker).expect("the fact") + marker.len();
    let fact = &current[start..];
    // A time reads as "5 minutes ago"; the exact time is its `title`.
    if let Some(time) = fact.strip_prefix("<time ") {
        let title = time.split("title=\"").nth(1).expect("an exact time");
        return title[..title.find('"').expect("its end")].to_owned();
    }
    let len = fact.find('<').expect("its end");
    fact[..len].trim().to_owned()
}

/// Signs `user` in through the form from a browser announcing itself as
/// `user_agent`.
async fn login_as_browser<S, B>(app: &TestApp<S>, user: &TestUser, user_agent: &str)
where
    S: actix_web::dev::Service<
            Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let token = app.get("/login").await.csrf_token();
    let res = app
        .send(
            TestRequest::post()
                .uri("/login")
                .insert_header(("user-agent", user_agent))
                .set_form([
                    ("csrf_token", token.as_str()),
                    ("username", &user.username),
                    ("password", &user.password),
                ]),
        )
        .await;
    assert_eq!(res.location(), Some("/profile"));
}

/// The minute `at` falls in, as the page shows times.
fn minute(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

fn session_ids(app: &crate::helpers::TestApp<impl Sized>, user_id: i32) -> Vec<i32> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::id)
        .order(sessions::id)
        .load(&mut *app.db())
        .expect("session ids")
}

#[actix_web::test]
async fn the_page_lists_each_browser_and_marks_this_one() {
    let laptop = spawn_app().await;
    let phone = laptop.new_browser();
    laptop.set_peer("127.0.0.7:1234");
    phone.set_peer("127.0.0.8:4321");
    let alice = TestUser::create(&laptop, "alice");
    login_as_browser(&laptop, &alice, "LaptopBrowser/1.0").await;
    login_as_browser(&phone, &alice, "PhoneBrowser/2.0").await;

    let page = laptop.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<li class=\"session").count(), 2);
    assert_eq!(this_session_fact(&page, "Browser"), "LaptopBrowser/1.0");
    assert_eq!(this_session_fact(&page, "Address"), "127.0.0.7");
    assert!(page.body.contains("PhoneBrowser/2.0"), "the other browser");
    assert!(page.body.contains("<dd>127.0.0.8</dd>"), "and its address");
    assert_eq!(page.body.matches("this browser").count(), 1);
    assert_eq!(
        page.body.matches("/revoke\"").count(),
        1,
        "only the other can be revoked"
    );

    let page = phone.get("/sessions").await;
    assert_eq!(this_session_fact(&page, "Browser"), "PhoneBrowser/2.0");
    assert_eq!(this_session_fact(&page, "Address"), "127.0.0.8");
}

#[actix_web::test]
async fn revoking_a_session_signs_that_browser_out() {
    let laptop = spawn_app().await;
    let phone = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    alice.login(&phone).await;
    alice.login(&laptop).await;
    let phone_session = session_ids(&laptop, alice.id)[0];

    let res = laptop
        .submit_form(
            "/sessions",
            &format!("/sessions/{phone_session}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/sessions"));
    assert_eq!(phone.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/profile").await.status, StatusCode::OK);
    let page = laptop.get("/sessions").await;
    assert_eq!(
        page.body.matches("<li class=\"session").count(),
        1,
        "only this browser is left"
    );
}

#[actix_web::test]
async fn nobody_can_revoke_another_users_session() {
    let app = spawn_app().await;
    let mallory_browser = app.new_browser();
    let alice = TestUser::create(&app, "alice");
    let mallory = TestUser::create(&app, "mallory");
    alice.login(&app).await;
    mallory.login(&mallory_browser).await;
    let alices_session = session_ids(&app, alice.id)[0];

    let res = mallory_browser
        .submit_form(
            "/sessions",
            &format!("/sessions/{alices_session}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(session_ids(&app, alice.id), [alices_session]);
    assert_eq!(app.get("/profile").await.status, StatusCode::OK);

    let res = mallory_browser
        .submit_form("/sessions", "/sessions/not-a-number/revoke", &[])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn sign_out_everywhere_else_keeps_only_this_session() {
    let laptop = spawn_app().await;
    let phone = laptop.new_browser();
    let tablet = laptop.new_browser();
    let alice = TestUser::create(&laptop, "alice");
    for browser in [&phone, &tablet, &laptop] {
        alice.login(browser).await;
    }
    let res = laptop
        .submit_form("/sessions", "/sessions/revoke-others", &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(session_ids(&laptop, alice.id).len(), 1);
    assert_eq!(phone.get("/profile").await.status, StatusCode::SEE_OTHER);
    assert_eq!(tablet.get("/profile").await.status, StatusCode::SEE_OTHER);
    let page = laptop.get("/sessions").await;
    assert!(page.body.contains("2 other sessions signed out."));
}

#[actix_web::test]
async fn the_cookie_engine_says_plainly_it_cannot_list_sessions_and_offers_to_end_the_others() {
    let app = spawn_app_with(&[("SESSION_ENGINE", "cookie")]).await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let page = app.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("cannot sign out one other browser alone")
    );
    assert!(page.body.contains("in signed, encrypted cookies"));
    assert!(page.body.contains("action=\"/sessions/revoke-others\""));
}

#[actix_web::test]
async fn a_known_browser_is_named_as_people_say_it_and_its_time_in_words() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    login_as_browser(&app, &alice, firefox).await;

    let page = app.get("/sessions").await;
    assert_eq!(this_session_fact(&page, "Browser"), "Firefox on Linux");
    assert!(
        page.body
            .contains(&format!("<p class=\"raw-agent\">{firefox}</p>")),
        "the whole string, a click away"
    );
    assert!(
        page.body.contains(">just now</time>"),
        "signed in and last seen just now"
    );
}

#[actix_web::test]
async fn last_seen_and_the_browser_are_recorded_without_a_write_per_request() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    app.set_peer("127.0.0.7:1234");
    let before = OffsetDateTime::now_utc();
    login_as_browser(&app, &alice, "TestBrowser/3.1").await;
    let page = app.get("/sessions").await;
    let after = OffsetDateTime::now_utc();

    assert_eq!(this_session_fact(&page, "Browser"), "TestBrowser/3.1");
    assert_eq!(this_session_fact(&page, "Address"), "127.0.0.7");
    let last_seen = this_session_fact(&page, "Last seen");
    assert!(
        [minute(before), minute(after)].contains(&last_seen),
        "last seen {last_seen:?}, expected the minute of the login"
    );
    // Within the minute, pages change nothing: no session write.
    let res = app.get("/profile").await;
    assert!(res.set_cookie("sessionid").is_none());
    assert_eq!(res.query_count(), 2);
}
