//! The benchmark's baseline: the fastest page actix-web can serve, one
//! handler returning a fixed HTML page, with no session, no user and no
//! database. `bench/run.sh` compares Porter's pages with it, so results
//! read as fractions of the framework's ceiling.
//!
//! ```sh
//! cargo run --release --example baseline -- 127.0.0.1:8090 1200
//! ```
//! serves `GET /profile` with a 1200-byte page on 127.0.0.1:8090.

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let size: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1200);
    // A page of the requested size, as Porter's profile page would be.
    let page: &'static str = Box::leak(
        format!(
            "<!doctype html><html><body>{}</body></html>",
            "x".repeat(size.saturating_sub(42))
        )
        .into_boxed_str(),
    );
    HttpServer::new(move || {
        App::new().route(
            "/profile",
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(page)
            }),
        )
    })
    .bind(bind)?
    .run()
    .await
}
