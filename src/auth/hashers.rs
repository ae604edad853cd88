//! Password hashing: Django's `django.contrib.auth.hashers`, with argon2id.
//!
//! Passwords are stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`),
//! which carry their own parameters and salt. Hashing is slow on purpose, so
//! every call here must run on the blocking pool, never on an async worker.

use std::fmt;

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _,
    PasswordVerifier as _, Version,
};
use thiserror::Error;

/// A password could not be hashed.
#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and checks passwords with argon2id.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, made at start-up with the current
    /// parameters. Checking a password against it costs what checking a real
    /// user's password costs, so an unknown username takes as long to reject
    /// as a wrong password.
    dummy_hash: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    /// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes).
    fn default() -> Self {
        Self::new(Params::default()).expect("the default argon2 parameters are valid")
    }
}

impl PasswordHasher {
    /// A hasher for `params`. Hashes the dummy password once, so it is slow.
    pub fn new(params: Params) -> Result<Self, HashError> {
        let mut hasher = Self {
            params,
            dummy_hash: String::new(),
        };
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        hasher.dummy_hash = hasher.hash(&hex::encode(random))?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh salt into a PHC string.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| HashError(err.to_string()))
    }

    /// Whether `password` matches the PHC string `encoded`. A malformed
    /// stored hash never matches.
    pub fn verify(&self, password: &str, encoded: &str) -> bool {
        // The hash's own parameters are used, whatever `self.params` says.
        self.argon2()
            .verify_password(password.as_bytes(), encoded)
            .is_ok()
    }

    /// Whether a stored hash was made with other settings than the current
    /// ones (another algorithm or version, other costs), and should be
    /// replaced at the next successful login.
    pub fn needs_rehash(&self, encoded: &str) -> bool {
        let Ok(hash) = PasswordHash::new(encoded) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        hash.algorithm != ARGON2ID_IDENT
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }

    /// Spends the time of one verification and returns `false`: for
    /// usernames that do not exist.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.dummy_hash);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(Params::new(1024, 1, 1, None).expect("valid")).expect("hasher")
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hasher = fast();
        let hash = hasher.hash("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(hasher.verify("correct horse", &hash));
        assert!(!hasher.verify("Correct horse", &hash));
    }

    #[test]
    fn hashes_made_with_other_costs_need_rehashing() {
        let old =
            PasswordHasher::new(Params::new(512, 1, 1, None).expect("valid")).expect("hasher");
        let hash = old.hash("secret words").expect("hash");
        assert!(!old.needs_rehash(&hash));
        assert!(fast().needs_rehash(&hash));
        assert!(fast().needs_rehash("not a hash"));
    }

    #[test]
    fn a_malformed_hash_never_matches() {
        assert!(!fast().verify("", "not a hash"));
    }

    #[test]
    fn the_dummy_never_matches() {
        assert!(!fast().verify_dummy("anything"));
    }
}
