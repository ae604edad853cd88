//! Observability: the tracing subscriber, a span per request, and the
//! request's [`metrics`](crate::metrics) reported in a `Server-Timing` header.
//!
//! The header is sent when `SERVER_TIMING` is on (by default only with
//! `DEBUG`), never on `POST /login`. It says how long the session took to
//! load (`session`), how long the user took to load (`user`, present only
//! when the lazy user was actually loaded), how many database queries the
//! request ran, and in how many trips to another thread (`db`):
//!
//! ```text
//! Server-Timing: session;dur=0.41, user;dur=0.38, db;dur=0.62;desc="2 queries, 1 hand-off"
//! ```

use std::rc::Rc;

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::{metrics::RequestMetrics, settings::Settings};

/// Installs the global tracing subscriber, filtered by `rust_log`
/// (`RUST_LOG` syntax). Calling it twice is harmless.
pub fn init_tracing(rust_log: &str) {
    let filter = EnvFilter::try_new(rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Middleware, outermost: a tracing span for the request, the request's
/// [`RequestMetrics`], and the `Server-Timing` header on the response.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Field values are only formatted when the span is enabled.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.path(),
        status = tracing::field::Empty,
    );
    let (debug, server_timing) = req
        .app_data::<web::Data<Settings>>()
        .map_or((false, false), |settings| {
            (settings.debug, settings.server_timing)
        });
    let metrics = Rc::new(RequestMetrics::new(debug));
    let res = RequestMetrics::scope(Rc::clone(&metrics), next.call(req))
        .instrument(span.clone())
        .await;
    let mut res = match res {
        Ok(res) => res,
        Err(err) => {
            tracing::warn!(parent: &span, error = %err, "request failed in middleware");
            return Err(err);
        }
    };
    span.record("status", res.status().as_u16());
    if server_timing
        && !metrics.is_withheld()
        && let Ok(value) = HeaderValue::from_str(&metrics.server_timing())
    {
        res.headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(res)
}
