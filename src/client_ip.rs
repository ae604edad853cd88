//! Which address a request comes from, for throttling and "your sessions".
//!
//! By default the address is the TCP peer's. Behind a reverse proxy that is
//! the proxy, so every visitor would share one address; with
//! `TRUST_X_FORWARDED_FOR=true` the last address in `X-Forwarded-For` (the
//! one the proxy itself appended) is used instead. Never turn that on
//! without a proxy in front: any client can write the header.

use std::net::IpAddr;

use actix_web::{HttpRequest, web};

/// How the client address is found; registered as app data.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIpConfig {
    /// Use the last `X-Forwarded-For` entry instead of the peer address.
    pub trust_x_forwarded_for: bool,
}

/// The client's address, or `None` when it cannot be told (test requests).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let trust = req
        .app_data::<web::Data<ClientIpConfig>>()
        .is_some_and(|config| config.trust_x_forwarded_for);
    if trust {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .last();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|addr| addr.ip())
}

/// [`client_ip`] as text, `unknown` when it cannot be told.
pub fn client_ip_text(req: &HttpRequest) -> String {
    client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}
