//! `/healthz` answers for the database.

use actix_web::http::StatusCode;
use diesel::{RunQueryDsl, dsl::sql, sql_types::Bool};
use porter::db::DbConnection;

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

/// A PostgreSQL server on a loopback address is asked for a plain
/// connection first (README, `DATABASE_URL`): TLS within one machine
/// protects nothing and costs each process its OpenSSL state.
#[actix_web::test]
async fn postgres_on_this_machine_is_spoken_to_without_tls() {
    let app = spawn_app().await;
    let mut conn = app.db();
    let DbConnection::Postgresql(conn) = &mut *conn else {
        return; // SQLite: no network, no TLS.
    };
    let tls: bool = diesel::select(sql::<Bool>(
        "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
    ))
    .get_result(conn)
    .expect("the connection's own row");
    assert!(!tls, "the connection to 127.0.0.1 uses TLS");
}
