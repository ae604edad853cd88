//! `GET /healthz`: whether this instance can serve, for load balancers.

use actix_web::{HttpResponse, web};

use crate::db::{self, DbPool};

/// `200 ok` when the database answers a query, `503` when it does not.
pub async fn healthz(pool: web::Data<DbPool>) -> HttpResponse {
    match db::ping(&pool).await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok"),
        Err(err) => {
            tracing::warn!(error = %err, "health check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database unavailable")
        }
    }
}
