//! An unreachable database is an outage, not a bug: `503` with
//! `Retry-After` and a readable page; a query that is wrong stays a `500`.
//! (Real outages, a server cut under load, are in `tests/faults.rs`.)

use actix_web::http::{StatusCode, header};
use diesel::RunQueryDsl;

use crate::helpers::{TestUser, spawn_app};

#[actix_web::test]
async fn a_page_answers_503_with_retry_after_while_no_connection_can_be_had() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    // Hold every connection the pool has: the database cannot be reached.
    let pool = &app.state.pool;
    let held: Vec<_> = (0..pool.max_size())
        .map(|_| pool.get().expect("a connection"))
        .collect();

    let res = app.get("/profile").await;

    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers.contains_key(header::RETRY_AFTER));
    assert!(res.body.contains("Service unavailable"), "{}", res.body);
    drop(held);
    let res = app.get("/profile").await;
    assert_eq!(res.status, StatusCode::OK, "still signed in afterwards");
    assert!(res.body.contains("alice"));
}

#[actix_web::test]
async fn a_query_that_fails_on_a_reachable_database_is_still_a_500() {
    let app = spawn_app().await;
    let alice = TestUser::create(&app, "alice");
    alice.login(&app).await;
    // A schema the code does not expect: the user query fails, the server
    // answered.
    diesel::sql_query("ALTER TABLE users RENAME TO users_elsewhere")
        .execute(&mut app.db())
        .expect("the table is renamed");

    let res = app.get("/profile").await;

    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!res.headers.contains_key(header::RETRY_AFTER));
    assert!(res.body.contains("Server error"), "{}", res.body);
}
