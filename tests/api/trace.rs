//! The request trace page: only in debug, and it shows the dance.

use actix_web::{http::StatusCode, test::TestRequest};

use crate::helpers::{TestUser, spawn_app, spawn_app_with};

#[actix_web::test]
async fn the_trace_page_is_a_404_outside_debug() {
    let app = spawn_app().await;
    assert_eq!(app.get("/debug/trace").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/debug/source/src/db.rs").await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn the_trace_shows_a_signed_in_request_step_by_step() {
    let app = spawn_app_with(&[("DEBUG", "true")]).await;
    let anonymous = app.get("/debug/trace").await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.body.contains("No sessionid cookie"));

    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    let cookie = app.cookie("sessionid").expect("a session cookie");
    let key = &cookie[cookie.len() - 64..];

    let page = app.get("/debug/trace").await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "The session middleware reads the cookie",
        "_auth_user_backend",
        "by model, its auth hash checked",
        "(masked)",
        "loaded when this page asked: alice",
        "Queries this request ran",
        "/debug/source/src/auth/middleware.rs",
    ] {
        assert!(page.body.contains(expected), "{expected}");
    }
    assert!(page.body.contains(&key[..8]), "the key, truncated");
    assert!(!page.body.contains(key), "never the whole key");

    let json = app
        .send(
            TestRequest::get()
                .uri("/debug/trace")
                .insert_header(("accept", "application/json")),
        )
        .await;
    let trace: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    assert_eq!(trace["engine"], "db");
    assert_eq!(
        trace["steps"][1]["data"]["_auth_user_id"],
        alice.id.to_string()
    );
    assert_eq!(trace["steps"][1]["data"]["_auth_user_backend"], "model");
    let queries: Vec<&str> = trace["queries"]
        .as_array()
        .expect("a list of queries")
        .iter()
        .filter_map(|sql| sql.as_str())
        .collect();
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(queries[0].contains("FROM") && queries[0].contains("sessions"));
    assert!(queries[1].contains("FROM") && queries[1].contains("users"));

    // The steps are numbered 1, 2, 3… on the page and in the JSON.
    let steps = trace["steps"].as_array().expect("a list of steps");
    for (place, step) in steps.iter().enumerate() {
        assert_eq!(step["number"], place + 1, "{step}");
    }
    let shown: Vec<&str> = page
        .body
        .split("<span class=\"step\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .collect();
    let expected: Vec<String> = (1..=steps.len()).map(|n| n.to_string()).collect();
    assert_eq!(shown, expected, "numbered without gaps or repeats");
    assert!(
        page.body.contains("Step 2½ of the dance"),
        "and their step of the dance"
    );

    let source = app.get("/debug/source/src/auth/middleware.rs").await;
    assert_eq!(source.status, StatusCode::OK);
    assert!(source.body.contains("pub struct LazyUser"));
}
