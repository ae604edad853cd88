//! Response headers every page gets: Django's `SecurityMiddleware` and
//! `XFrameOptionsMiddleware`, and `never_cache` on every HTML page.
//!
//! * `Content-Security-Policy`: assets from this site only, no inline
//!   script, no framing, forms post only here;
//! * `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: same-origin`;
//! * `Strict-Transport-Security` on every response when `COOKIE_SECURE` is
//!   on (Django's `SECURE_HSTS_SECONDS`): the site is served over HTTPS,
//!   so the browser is told to use nothing else, for a year;
//! * `Cache-Control: no-store` on HTML, so a shared or back-button cache
//!   never shows one user's page to another. Static assets keep their own
//!   caching.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderName, HeaderValue},
    middleware::Next,
    web,
};

/// The policy: nothing but this site's own files, and no inline script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The `Strict-Transport-Security` value: a year, subdomains included.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// Which optional headers are sent; registered as app data.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityHeadersConfig {
    /// Send `Strict-Transport-Security` (when the site is HTTPS only).
    pub strict_transport_security: bool,
}

/// Middleware: adds the headers.
pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let hsts = req
        .app_data::<web::Data<SecurityHeadersConfig>>()
        .is_some_and(|config| config.strict_transport_security);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
