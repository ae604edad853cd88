//! `/healthz` answers for the database.

use actix_web::http::StatusCode;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn healthz_is_ok_when_the_database_answers() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "ok");
}

#[actix_web::test]
async fn healthz_is_503_when_the_database_does_not_answer() {
    let app = spawn_app().await;
    // Hold every connection the pool has: the database cannot answer.
    let pool = &app.state.pool;
    let held: Vec<_> = (0..pool.max_size())
        .map(|_| pool.get().expect("a connection"))
        .collect();
    let res = app.get("/healthz").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}
