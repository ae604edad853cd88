//! An origin, the scheme, host and port a page was served from: what
//! browsers send in `Origin`, and what Django's `CSRF_TRUSTED_ORIGINS` and
//! `CsrfViewMiddleware._origin_verified` compare.
//!
//! Two origins are the same only when all three parts are; a port left out
//! means the scheme's default, so `https://example.com` and
//! `https://example.com:443` are one origin.

use std::fmt;

/// A web origin: `http` or `https`, a lowercased host, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http` or `https` URL (`Origin` and
    /// `Referer` values, `SITE_URL`); `None` for anything else, `null`
    /// included.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // User info names nobody's origin: "https://user@host/" is host's.
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        Self::from_parts(scheme, authority)
    }

    /// The origin of a request sent over `scheme` with this `Host` value.
    pub fn from_parts(scheme: &str, authority: &str) -> Option<Self> {
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        // The port follows the last colon, unless that colon is inside an
        // IPv6 literal ("[::1]").
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let port = match port {
            None => default_port,
            Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                port.parse().ok()?
            }
            Some(_) => return None,
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        host_ok.then(|| Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match (self.scheme, self.port) {
            ("http", 80) | ("https", 443) => Ok(()),
            (_, port) => write!(f, ":{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Option<String> {
        Origin::parse(url).map(|origin| origin.to_string())
    }

    #[test]
    fn origins_are_read_from_origins_referers_and_site_urls() {
        for (url, expected) in [
            ("https://Example.com", "https://example.com"),
            ("https://example.com:443/", "https://example.com"),
            ("http://example.com:80", "http://example.com"),
            (
                "http://localhost:8080/login?next=/",
                "http://localhost:8080",
            ),
            ("https://user@evil.example/", "https://evil.example"),
            ("HTTP://[::1]:8080/", "http://[::1]:8080"),
            ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ] {
            assert_eq!(origin(url).as_deref(), Some(expected), "{url}");
        }
    }

    #[test]
    fn scheme_host_and_port_all_count() {
        let site = Origin::parse("https://example.com");
        assert_eq!(site, Origin::parse("https://example.com:443/page"));
        for other in [
            "http://example.com",
            "https://example.com:8443",
            "https://www.example.com",
        ] {
            assert_ne!(site, Origin::parse(other), "{other}");
        }
    }

    #[test]
    fn anything_but_an_http_url_is_no_origin() {
        for bad in [
            "null",
            "",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://example.com:port",
            "https://example.com:99999",
            "https://exa mple.com",
            "javascript://example.com",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }
}
