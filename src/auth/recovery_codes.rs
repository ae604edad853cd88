//! Recovery codes: ten single-use codes, shown once when two-factor
//! sign-in is turned on, for the day the authenticator is lost
//! (`django-otp`'s static tokens).
//!
//! Only a keyed hash of each code is stored: HMAC-SHA256 under a key
//! derived from `SECRET_KEY`. A fast hash is enough here, unlike for
//! passwords: each code is 50 random bits, not something a person chose,
//! so there is no dictionary to try, and without the key not even a guess
//! can be checked offline. A code is used up with one conditional update
//! (`used_at IS NULL`), so two requests with the same code cannot both
//! pass.

use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{
    db::{DbConnection, now, transaction},
    schema::recovery_codes,
    settings::SecretKey,
};

/// How many codes a user gets.
pub const CODE_COUNT: usize = 10;

/// The letters codes are written in: no o, i, l or 1, which are misread
/// as 0 or each other.
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Makes and checks recovery codes.
#[derive(Clone)]
pub struct RecoveryCodes {
    /// The current key first, then those of `SECRET_KEY_FALLBACKS`.
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes([redacted])")
    }
}

/// A code as typed: lower case, without spaces or dashes.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether what was typed looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(code: &str) -> bool {
    normalize(code).len() == 10
}

impl RecoveryCodes {
    /// Keys derived from `secret_key` and `fallbacks`.
    pub fn new(secret_key: &SecretKey, fallbacks: &[SecretKey]) -> Self {
        Self {
            keys: SecretKey::derive_all(secret_key, fallbacks, b"porter.auth.recovery_code"),
        }
    }

    fn hash_with(key: &[u8; 32], code: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(normalize(code).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Replaces the user's codes with ten new ones; returns them, to be
    /// shown once (`xxxxx-xxxxx`).
    pub fn regenerate(&self, conn: &mut DbConnection, user_id: i32) -> QueryResult<Vec<String>> {
        let codes: Vec<String> = (0..CODE_COUNT).map(|_| new_code()).collect();
        transaction(conn, |conn| {
            delete_all(conn, user_id)?;
            for code in &codes {
                diesel::insert_into(recovery_codes::table)
                    .values((
                        recovery_codes::user_id.eq(user_id),
                        recovery_codes::code_hash.eq(Self::hash_with(&self.keys[0], code)),
                    ))
                    .execute(conn)?;
            }
            Ok(codes)
        })
    }

    /// Uses up `code` if it is one of the user's unused codes.
    pub fn use_code(&self, conn: &mut DbConnection, user_id: i32, code: &str) -> QueryResult<bool> {
        let hashes: Vec<String> = self
            .keys
            .iter()
            .map(|key| Self::hash_with(key, code))
            .collect();
        let used = diesel::update(
            recovery_codes::table
                .filter(recovery_codes::user_id.eq(user_id))
                .filter(recovery_codes::code_hash.eq_any(&hashes))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now()))
        .execute(conn)?;
        Ok(used == 1)
    }
}

/// How many unused codes the user has left.
pub fn remaining(conn: &mut DbConnection, user_id: i32) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

/// Deletes every code of the user.
pub fn delete_all(conn: &mut DbConnection, user_id: i32) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)
}

/// Ten random letters from [`ALPHABET`] (5 bits each), as `xxxxx-xxxxx`.
fn new_code() -> String {
    let mut bytes = [0u8; 10];
    rand::fill(&mut bytes);
    let letters: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    format!("{}-{}", &letters[..5], &letters[5..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_found_however_it_is_typed() {
        assert_eq!(normalize(" ABCDE-fghjk "), "abcdefghjk");
        assert!(looks_like_recovery_code("abcde fghjk"));
        assert!(!looks_like_recovery_code("123456"));
    }
}
