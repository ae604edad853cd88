//! The `Cookie` request header read as bytes, for the cookies Porter sets
//! (`sessionid`, `csrftoken`, `messages`).
//!
//! actix parses the header as UTF-8 and percent-decodes each value; a
//! cookie that fails either is silently absent from `req.cookies()`. A
//! browser holding such a cookie would send it forever, so the layers that
//! own a cookie ask here whether it was sent at all, and when its value is
//! no good, ignore it and answer with [`removal`]. A bad cookie is never an
//! error page: Django's `SessionMiddleware` also treats one as no cookie.

use actix_web::{
    cookie::{Cookie, time::Duration},
    http::header::{self, HeaderMap},
};

/// Whether the request carries a cookie named `name`, whatever its value.
pub fn sent(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .any(|pair| {
            let pair = pair.trim_ascii_start();
            pair.strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"="))
        })
}

/// A `Set-Cookie` that makes the browser forget cookie `name` (set on `/`,
/// as Porter sets every cookie).
pub fn removal(name: &str) -> Cookie<'static> {
    Cookie::build(name.to_owned(), "")
        .path("/")
        .max_age(Duration::ZERO)
        .finish()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_bytes(value).expect("a header value"),
        );
        headers
    }

    #[test]
    fn a_cookie_counts_as_sent_whatever_its_value() {
        let sent_cookies = headers(b"a=1; csrftoken=\xff\xfe%zz; messages=");
        assert!(sent(&sent_cookies, "csrftoken"));
        assert!(sent(&sent_cookies, "messages"));
        assert!(sent(&sent_cookies, "a"));
        assert!(!sent(&sent_cookies, "sessionid"));
        assert!(!sent(&headers(b"xcsrftoken=1; csrftokens=2"), "csrftoken"));
    }
}
