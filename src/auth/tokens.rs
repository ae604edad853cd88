//! Signed, stateless links for mail: Django's `PasswordResetTokenGenerator`
//! (`django.contrib.auth.tokens`), and the same idea for confirming an
//! e-mail address.
//!
//! A token is `TIMESTAMP-SIGNATURE`: the time it was made (seconds, base
//! 36) and an HMAC-SHA256 under a key derived from `SECRET_KEY` (tokens
//! made under one of `SECRET_KEY_FALLBACKS` are accepted) over that time and
//! the state the link is about. Nothing is stored: the token dies when that
//! state changes.
//!
//! | token | signs | dies when |
//! | ----- | ----- | --------- |
//! | password reset | user id, password hash, last login, address | the password changes (so after use), the user signs in, the address changes, `PASSWORD_RESET_TTL` passes |
//! | address confirmation | user id, address, whether confirmed, pending address | the address is confirmed (so after use) or changed again, [`CONFIRMATION_TTL`] passes |
//!
//! Time comes from a [`Clock`], which tests move forward.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::models::User;
use crate::settings::SecretKey;

/// How long an address confirmation link works: three days, as
/// django-allauth's default.
pub const CONFIRMATION_TTL: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// How many bytes of the HMAC a token carries: 128 bits.
const SIGNATURE_BYTES: usize = 16;

/// The time tokens are made and checked at: the system's, moved by an
/// offset that tests set. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock (and its clones) forward by `by`: for tests of
    /// expiry, without waiting.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// What a token is for; each purpose signs with a key of its own, so a
/// token for one is never valid for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    PasswordReset,
    EmailConfirmation,
}

impl Purpose {
    fn salt(self) -> &'static [u8] {
        match self {
            Self::PasswordReset => b"porter.auth.tokens.password_reset",
            Self::EmailConfirmation => b"porter.auth.tokens.email_confirmation",
        }
    }
}

/// Makes and checks the tokens of mailed links.
pub struct TokenGenerator {
    /// Per secret (the current one first), its key for each purpose.
    keys: Vec<[[u8; 32]; 2]>,
    reset_ttl: Duration,
    clock: Clock,
}

impl std::fmt::Debug for TokenGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGenerator")
            .field("keys", &"[redacted]")
            .field("reset_ttl", &self.reset_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenGenerator {
    /// Tokens signed with `secret_key`, accepted under `fallbacks` too;
    /// reset links live `reset_ttl`, by `clock`.
    pub fn new(
        secret_key: &SecretKey,
        fallbacks: &[SecretKey],
        reset_ttl: Duration,
        clock: Clock,
    ) -> Self {
        let derive = |secret: &SecretKey, purpose: Purpose| secret.derive(purpose.salt());
        Self {
            keys: std::iter::once(secret_key)
                .chain(fallbacks)
                .map(|secret| {
                    [
                        derive(secret, Purpose::PasswordReset),
                        derive(secret, Purpose::EmailConfirmation),
                    ]
                })
                .collect(),
            reset_ttl,
            clock,
        }
    }

    /// The clock tokens are dated by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// How long a reset link works.
    pub fn reset_ttl(&self) -> Duration {
        self.reset_ttl
    }

    /// A password reset token for `user`.
    pub fn reset_token(&self, user: &User) -> String {
        self.make(Purpose::PasswordReset, &reset_state(user))
    }

    /// Whether `token` is a live reset token for `user` as they are now.
    pub fn check_reset_token(&self, user: &User, token: &str) -> bool {
        self.check(
            Purpose::PasswordReset,
            &reset_state(user),
            token,
            self.reset_ttl,
        )
    }

    /// A token confirming the address `user` is waiting to confirm.
    pub fn confirmation_token(&self, user: &User) -> String {
        self.make(Purpose::EmailConfirmation, &confirmation_state(user))
    }

    /// Whether `token` confirms the address `user` is waiting to confirm.
    pub fn check_confirmation_token(&self, user: &User, token: &str) -> bool {
        self.check(
            Purpose::EmailConfirmation,
            &confirmation_state(user),
            token,
            CONFIRMATION_TTL,
        )
    }

    fn signature(key: &[u8; 32], state: &str, timestamp: i64) -> [u8; SIGNATURE_BYTES] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(state.as_bytes());
        mac.update(b"\n");
        mac.update(timestamp.to_string().as_bytes());
        let full = mac.finalize().into_bytes();
        let mut truncated = [0u8; SIGNATURE_BYTES];
        truncated.copy_from_slice(&full[..SIGNATURE_BYTES]);
        truncated
    }

    fn make(&self, purpose: Purpose, state: &str) -> String {
        let now = self.clock.now();
        let key = &self.keys[0][purpose as usize];
        format!(
            "{}-{}",
            to_base36(now),
            hex::encode(Self::signature(key, state, now))
        )
    }

    fn check(&self, purpose: Purpose, state: &str, token: &str, ttl: Duration) -> bool {
        let Some((timestamp, signature)) = token.split_once('-') else {
            return false;
        };
        let (Some(timestamp), Ok(signature)) = (from_base36(timestamp), hex::decode(signature))
        else {
            return false;
        };
        // Any key accepted, and every key tried, so the time taken does not
        // say which one matched.
        let signed = self.keys.iter().fold(false, |found, keys| {
            let expected = Self::signature(&keys[purpose as usize], state, timestamp);
            found | bool::from(expected.as_slice().ct_eq(&signature))
        });
        let age = self.clock.now() - timestamp;
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        signed && (0..=ttl).contains(&age)
    }
}

/// What a reset token is bound to: it dies when any of it changes.
fn reset_state(user: &User) -> String {
    let last_login = user
        .last_login
        .map(|at| at.assume_utc().unix_timestamp().to_string())
        .unwrap_or_default();
    format!(
        "{}\n{}\n{last_login}\n{}",
        user.id,
        user.password,
        user.email.as_deref().unwrap_or_default()
    )
}

/// What a confirmation token is bound to.
fn confirmation_state(user: &User) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        user.id,
        user.email.as_deref().unwrap_or_default(),
        user.email_confirmed,
        user.new_email.as_deref().unwrap_or_default()
    )
}

/// A user id as it appears in a link (Django's `uidb64`, here base 36).
pub fn encode_uid(id: i32) -> String {
    to_base36(i64::from(id))
}

/// The user id a link names, if it names one.
pub fn decode_uid(uid: &str) -> Option<i32> {
    from_base36(uid).and_then(|id| i32::try_from(id).ok())
}

fn to_base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(text: &str) -> Option<i64> {
    // Thirteen digits exceed i64; no honest token has more than twelve.
    if text.is_empty() || text.len() > 12 {
        return None;
    }
    i64::from_str_radix(text, 36).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn key(c: char) -> SecretKey {
        SecretKey::new(c.to_string().repeat(64)).expect("a long key")
    }

    fn user() -> User {
        User {
            id: 7,
            date_joined: datetime!(2026-01-01 0:00),
            email_confirmed: true,
            ..User::unsaved(
                "alice",
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                Some("alice@example.com"),
            )
        }
    }

    fn generator(secret: char, fallbacks: &[SecretKey]) -> TokenGenerator {
        TokenGenerator::new(
            &key(secret),
            fallbacks,
            Duration::from_secs(3600),
            Clock::system(),
        )
    }

    #[test]
    fn a_reset_token_dies_with_the_password_the_login_and_the_address() {
        let tokens = generator('a', &[]);
        let alice = user();
        let token = tokens.reset_token(&alice);
        assert!(tokens.check_reset_token(&alice, &token));
        for changed in [
            User {
                password: "another hash".into(),
                ..alice.clone()
            },
            User {
                last_login: Some(datetime!(2026-02-01 0:00)),
                ..alice.clone()
            },
            User {
                email: Some("eve@example.com".into()),
                ..alice.clone()
            },
            User {
                id: 8,
                ..alice.clone()
            },
        ] {
            assert!(!tokens.check_reset_token(&changed, &token));
        }
    }

    #[test]
    fn a_reset_token_expires_after_its_ttl() {
        let tokens = generator('a', &[]);
        let token = tokens.reset_token(&user());
        tokens.clock().advance(Duration::from_secs(3600));
        assert!(tokens.check_reset_token(&user(), &token), "still valid");
        tokens.clock().advance(Duration::from_secs(1));
        assert!(!tokens.check_reset_token(&user(), &token), "expired");
    }

    #[test]
    fn tokens_of_one_purpose_are_not_valid_for_the_other() {
        let tokens = generator('a', &[]);
        let alice = user();
        let reset = tokens.reset_token(&alice);
        assert!(!tokens.check_confirmation_token(&alice, &reset));
        let confirm = tokens.confirmation_token(&alice);
        assert!(!tokens.check_reset_token(&alice, &confirm));
    }

    #[test]
    fn a_token_made_under_a_fallback_key_is_accepted_and_a_forgotten_one_is_not() {
        let before = generator('a', &[]);
        let token = before.reset_token(&user());
        assert!(generator('b', &[key('a')]).check_reset_token(&user(), &token));
        assert!(!generator('b', &[]).check_reset_token(&user(), &token));
    }

    #[test]
    fn garbage_is_no_token() {
        let tokens = generator('a', &[]);
        for bad in ["", "-", "abc", "zzzzzzzzzzzzzzzzzz-00", "1-zz", "1-"] {
            assert!(!tokens.check_reset_token(&user(), bad), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_round_trip_through_base_36() {
        for id in [1, 35, 36, 1_000_000, i32::MAX] {
            assert_eq!(decode_uid(&encode_uid(id)), Some(id));
        }
        assert_eq!(decode_uid("not-an-id"), None);
    }
}
