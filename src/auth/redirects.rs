//! Where a visitor may be sent after signing in: Django's
//! `url_has_allowed_host_and_scheme`, reduced to the one safe answer.
//!
//! Only a same-site relative path is honoured. Anything a browser could read
//! as another host (`//evil.example`, `/\evil.example`, `https://…`,
//! `javascript:…`, paths with control characters that browsers strip) is
//! refused, and the caller falls back to a fixed page.

/// The longest `next` honoured; longer ones are refused, not truncated.
const MAX_NEXT_LEN: usize = 2048;

/// Whether `target` is a path on this site that is safe to redirect to.
pub fn is_safe_redirect(target: &str) -> bool {
    let bytes = target.as_bytes();
    target.len() <= MAX_NEXT_LEN
        && bytes.first() == Some(&b'/')
        // "//host" and "/\host" are protocol-relative URLs to another host.
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        // Browsers treat "\" as "/" and drop tabs and newlines, so any of
        // them could turn the path into one of the forms above.
        && !target.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

/// `next` if it is safe, else `fallback`.
pub fn safe_next_or<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    next.filter(|next| is_safe_redirect(next))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_are_safe() {
        for ok in [
            "/",
            "/profile",
            "/profile?tab=1",
            "/a/b#c",
            "/search?q=a%20b",
        ] {
            assert!(is_safe_redirect(ok), "{ok}");
        }
    }

    #[test]
    fn anything_that_leaves_the_site_is_refused() {
        for bad in [
            "",
            "profile",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            " /profile",
            "/path\\with\\backslashes",
        ] {
            assert!(!is_safe_redirect(bad), "{bad:?}");
        }
        assert!(!is_safe_redirect(&format!("/{}", "a".repeat(MAX_NEXT_LEN))));
    }
}
