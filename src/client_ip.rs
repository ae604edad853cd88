//! Which address a request comes from, for throttling and "your sessions".
//!
//! By default the address is the TCP peer's. Behind reverse proxies that is
//! the nearest proxy, so every visitor would share one address. Each proxy
//! appends the address it received the request from to `X-Forwarded-For`,
//! so with `TRUST_X_FORWARDED_FOR` set to the number of trusted proxies in
//! front of Porter (`true` meaning one), the entry that many places from the
//! end is the one the outermost trusted proxy wrote: the client's address.
//!
//! Everything before that entry was written by the client and is ignored.
//! If the trusted entry is missing or malformed the header is ignored as a
//! whole and the peer address is used: falling back to an earlier entry
//! would let a client choose its own address. Never trust the header
//! without a proxy in front: any client can write it.

use std::net::{IpAddr, SocketAddr};

use actix_web::{HttpRequest, http::header::HeaderName, web};

/// The header reverse proxies append the client's address to.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// How the client address is found; registered as app data.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIpConfig {
    /// How many reverse proxies in front of Porter append to
    /// `X-Forwarded-For`; `0` uses the peer address.
    pub trusted_proxies: usize,
}

/// The client's address, or `None` when it cannot be told (test requests).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let trusted_proxies = req
        .app_data::<web::Data<ClientIpConfig>>()
        .map_or(0, |config| config.trusted_proxies);
    forwarded_for(req, trusted_proxies).or_else(|| req.peer_addr().map(|addr| addr.ip()))
}

/// The entry the outermost of `trusted_proxies` proxies appended, if it is
/// there and well formed.
fn forwarded_for(req: &HttpRequest, trusted_proxies: usize) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return None;
    }
    // Several header lines form one list, in order (RFC 9110, 5.3). A line
    // that is not text makes the whole list unreadable.
    let mut entries = Vec::new();
    for value in req.headers().get_all(X_FORWARDED_FOR) {
        entries.extend(value.to_str().ok()?.split(','));
    }
    let index = entries.len().checked_sub(trusted_proxies)?;
    parse_entry(entries[index])
}

/// One `X-Forwarded-For` entry: `IP`, `IP:port` or `[IPv6]:port`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(address) = entry.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    // `[IPv6]` without a port.
    entry
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// [`client_ip`] as text, `unknown` when it cannot be told.
pub fn client_ip_text(req: &HttpRequest) -> String {
    client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_may_carry_a_port() {
        for (entry, ip) in [
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7:51234 ", "203.0.113.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
        ] {
            assert_eq!(parse_entry(entry), ip.parse().ok(), "{entry}");
        }
    }

    #[test]
    fn malformed_entries_are_not_addresses() {
        for entry in [
            "",
            "unknown",
            "203.0.113.7:",
            "[203.0.113.7]",
            "1.2.3.4.5",
            "_hidden",
        ] {
            assert_eq!(parse_entry(entry), None, "{entry}");
        }
    }
}
