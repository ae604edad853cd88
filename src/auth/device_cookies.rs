//! Device cookies: OWASP's "Slow Down Online Guessing Attacks with Device
//! Cookies", beside the throttle (Django has no counterpart; django-axes
//! locks the whole account instead).
//!
//! A successful login gives the browser a long-lived, signed, `HttpOnly`
//! cookie bound to that user: `nonce.issued.signature`, where the signature
//! is an HMAC under `SECRET_KEY` (fallbacks accepted) over the username's
//! key, the nonce and the issue time. The username is not in the cookie;
//! the signature only checks out for the username being signed in as.
//!
//! A browser presenting a valid device cookie for the username it signs in
//! as is *trusted*: its attempts count against its own small counter (keyed
//! by the nonce), not against the per-username, per-address and per-account
//! limits, so an attacker's failures do not lock the owner out. Every other
//! browser (no cookie, a cookie for another user, a tampered or expired one)
//! is untrusted and subject to all of them.

use std::time::Duration;

use actix_web::{
    HttpRequest,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::models::username_key;
use crate::settings::SecretKey;

/// The cookie's name.
pub const DEVICE_COOKIE_NAME: &str = "device";

/// How long a device cookie is trusted after the login that issued it.
pub const DEVICE_COOKIE_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Issues and checks device cookies.
pub struct DeviceCookies {
    /// The current key, then those of `SECRET_KEY_FALLBACKS`.
    keys: Vec<[u8; 32]>,
    secure: bool,
}

impl std::fmt::Debug for DeviceCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCookies")
            .field("keys", &"[redacted]")
            .field("secure", &self.secure)
            .finish()
    }
}

impl DeviceCookies {
    /// Device cookies signed with `secret_key`, accepted under `fallbacks`
    /// too, sent over HTTPS only when `secure`.
    pub fn new(secret_key: &SecretKey, fallbacks: &[SecretKey], secure: bool) -> Self {
        Self {
            keys: SecretKey::derive_all(secret_key, fallbacks, b"porter.auth.device_cookie"),
            secure,
        }
    }

    fn mac(key: &[u8; 32], username: &str, nonce: &str, issued: u64) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(format!("{}\n{nonce}\n{issued}", username_key(username)).as_bytes());
        mac
    }

    /// A fresh device cookie for `username`, to set on a successful login.
    pub fn issue(&self, username: &str) -> Cookie<'static> {
        let mut random = [0u8; 16];
        rand::fill(&mut random);
        let nonce = hex::encode(random);
        let issued = unix_now();
        let signature = hex::encode(
            Self::mac(&self.keys[0], username, &nonce, issued)
                .finalize()
                .into_bytes(),
        );
        Cookie::build(DEVICE_COOKIE_NAME, format!("{nonce}.{issued}.{signature}"))
            .path("/login")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(
                i64::try_from(DEVICE_COOKIE_TTL.as_secs()).unwrap_or(i64::MAX),
            ))
            .finish()
    }

    /// The nonce of the request's device cookie, if it is valid for
    /// `username`: signed by a key still accepted, and not expired.
    pub fn trusted_for(&self, req: &HttpRequest, username: &str) -> Option<String> {
        let cookie = req.cookie(DEVICE_COOKIE_NAME)?;
        self.verify(cookie.value(), username)
    }

    /// Checks a device cookie's value for `username`; returns its nonce.
    pub fn verify(&self, value: &str, username: &str) -> Option<String> {
        let mut parts = value.splitn(3, '.');
        let (nonce, issued, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let issued: u64 = issued.parse().ok()?;
        let signature = hex::decode(signature).ok()?;
        let fresh = unix_now().saturating_sub(issued) < DEVICE_COOKIE_TTL.as_secs();
        let signed = self.keys.iter().any(|key| {
            Self::mac(key, username, nonce, issued)
                .verify_slice(&signature)
                .is_ok()
        });
        (fresh && signed).then(|| nonce.to_owned())
    }
}

fn unix_now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> SecretKey {
        SecretKey::new(c.to_string().repeat(64)).expect("a long key")
    }

    #[test]
    fn a_device_cookie_is_valid_for_its_username_only() {
        let devices = DeviceCookies::new(&key('a'), &[], true);
        let cookie = devices.issue("Alice");
        assert!(devices.verify(cookie.value(), "alice").is_some());
        assert!(devices.verify(cookie.value(), "bob").is_none());
        let mut tampered = cookie.value().to_owned();
        tampered.replace_range(0..1, if tampered.starts_with('0') { "1" } else { "0" });
        assert!(devices.verify(&tampered, "alice").is_none());
        assert!(devices.verify("garbage", "alice").is_none());
        assert!(cookie.http_only().unwrap_or(false));
    }

    #[test]
    fn a_cookie_signed_with_a_fallback_key_is_still_valid_and_an_old_one_is_not() {
        let before = DeviceCookies::new(&key('a'), &[], true);
        let cookie = before.issue("alice");
        let rotated = DeviceCookies::new(&key('b'), &[key('a')], true);
        assert!(rotated.verify(cookie.value(), "alice").is_some());
        let forgotten = DeviceCookies::new(&key('b'), &[], true);
        assert!(forgotten.verify(cookie.value(), "alice").is_none());
    }

    #[test]
    fn an_expired_device_cookie_is_untrusted() {
        let devices = DeviceCookies::new(&key('a'), &[], true);
        let issued = unix_now() - DEVICE_COOKIE_TTL.as_secs() - 1;
        let nonce = "00ff";
        let signature = hex::encode(
            DeviceCookies::mac(&devices.keys[0], "alice", nonce, issued)
                .finalize()
                .into_bytes(),
        );
        assert!(
            devices
                .verify(&format!("{nonce}.{issued}.{signature}"), "alice")
                .is_none()
        );
    }
}
