//! The time-based one-time password (TOTP, RFC 6238) a user's authenticator
//! app shows: the second factor after the password, at `/login/verify`.
//! Django has none built in; this is what `django-otp`'s `TOTPDevice` does.
//!
//! * the shared secret is 160 random bits, shown once as a QR code and as
//!   base32 text, and stored **encrypted** (AES-256-GCM under a key derived
//!   from `SECRET_KEY`), so that a copy of the table alone mints no codes;
//! * the device counts only once confirmed by a valid code;
//! * a code is accepted for the current 30-second step or one step either
//!   side (clock drift), and **once**: the last accepted step is stored and
//!   moved forward with a compare-and-set, so a code seen over a shoulder or
//!   sent twice at once is refused the second time.

use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, aead::Aead};
use diesel::prelude::*;
use time::PrimitiveDateTime;
use totp_rs::{Builder, Secret, Totp};

use crate::{
    db::{DbConnection, now},
    schema::totp_devices,
    settings::SecretKey,
};

/// What the issuer of codes is called in authenticator apps.
pub const ISSUER: &str = "Porter";

/// How many bytes of secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// The AES-GCM nonce length.
const NONCE_LEN: usize = 12;

/// Errors of the TOTP machinery: all of them faults, never a wrong code.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// A stored secret could not be decrypted (`SECRET_KEY` changed without
    /// keeping the old one in `SECRET_KEY_FALLBACKS`) or is malformed.
    #[error("the stored TOTP secret cannot be read with the configured keys")]
    Undecryptable,
    /// totp-rs refused the parameters.
    #[error("TOTP set-up failed: {0}")]
    Setup(String),
    /// A query failed.
    #[error("a TOTP query failed")]
    Query(#[from] diesel::result::Error),
}

/// A user's TOTP device, as stored.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = totp_devices)]
pub struct TotpDevice {
    /// Whose device it is.
    pub user_id: i32,
    /// The encrypted secret: `hex(nonce || ciphertext)`.
    secret: String,
    /// When a valid code confirmed it; before that it does not count.
    pub confirmed_at: Option<PrimitiveDateTime>,
    /// The last time step a code was accepted for.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpDevice")
            .field("user_id", &self.user_id)
            .field("secret", &"[redacted]")
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// Encrypts and decrypts TOTP secrets, and checks codes.
#[derive(Clone)]
pub struct TotpKeys {
    /// The current key first, then those of `SECRET_KEY_FALLBACKS`.
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for TotpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKeys([redacted])")
    }
}

/// A freshly made secret, before it is stored: what the set-up page shows.
pub struct NewSecret {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret([redacted])")
    }
}

impl NewSecret {
    /// 160 fresh random bits.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        rand::fill(&mut bytes[..]);
        Self { bytes }
    }
}

/// The current Unix time, in seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The totp-rs generator for `secret` and the account `username`: SHA-1,
/// six digits, 30-second steps, one step of drift either side (what every
/// authenticator app expects).
fn generator(secret: &[u8], username: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_secret(Secret::from(secret))
        .with_issuer(Some(ISSUER))
        // otpauth labels are `issuer:account`: no colon in the account.
        .with_account_name(username.replace(':', "_"))
        .build()
        .map_err(|err| TotpError::Setup(err.to_string()))
}

impl TotpKeys {
    /// Keys derived from `secret_key` (which encrypts) and `fallbacks`
    /// (which still decrypt).
    pub fn new(secret_key: &SecretKey, fallbacks: &[SecretKey]) -> Self {
        Self {
            keys: SecretKey::derive_all(secret_key, fallbacks, b"porter.auth.totp_secret"),
        }
    }

    fn encrypt(&self, secret: &[u8]) -> Result<String, TotpError> {
        let cipher = Aes256Gcm::new_from_slice(&self.keys[0])
            .map_err(|_| TotpError::Setup("AES key length".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), secret)
            .map_err(|_| TotpError::Setup("encryption failed".into()))?;
        Ok(hex::encode([&nonce[..], &sealed].concat()))
    }

    fn decrypt(&self, stored: &str) -> Result<Vec<u8>, TotpError> {
        let bytes = hex::decode(stored).map_err(|_| TotpError::Undecryptable)?;
        let (nonce, sealed) = bytes
            .split_at_checked(NONCE_LEN)
            .ok_or(TotpError::Undecryptable)?;
        self.keys
            .iter()
            .find_map(|key| {
                Aes256Gcm::new_from_slice(key)
                    .ok()?
                    .decrypt(Nonce::from_slice(nonce), sealed)
                    .ok()
            })
            .ok_or(TotpError::Undecryptable)
    }

    /// The `otpauth://` URI an authenticator app scans, and the secret as
    /// base32 text for typing in by hand.
    pub fn provisioning(
        &self,
        secret: &NewSecret,
        username: &str,
    ) -> Result<(String, String), TotpError> {
        let totp = generator(&secret.bytes, username)?;
        let uri = totp
            .to_url()
            .map_err(|err| TotpError::Setup(err.to_string()))?;
        Ok((uri, Secret::from(&secret.bytes[..]).to_base32()))
    }

    /// Stores `secret` as the user's unconfirmed device, replacing any
    /// unconfirmed one. Refused (`Ok(false)`) when a confirmed device exists:
    /// it must be turned off first, with a recent sign-in.
    pub fn store_unconfirmed(
        &self,
        conn: &mut DbConnection,
        user_id: i32,
        secret: &NewSecret,
    ) -> Result<bool, TotpError> {
        let sealed = self.encrypt(&secret.bytes)?;
        // One statement, no check before it: an insert, or an update of an
        // unconfirmed device; a confirmed one fails the `WHERE` and nothing
        // changes. A delete then an insert would break the key on
        // PostgreSQL when two set-ups run at once (a 500). Both databases
        // have `ON CONFLICT ... DO UPDATE ... WHERE`; the type standing for
        // either does not, hence `on_each_database!`.
        let stored = crate::on_each_database!(conn, |conn| {
            let upsert = diesel::insert_into(totp_devices::table)
                .values((
                    totp_devices::user_id.eq(user_id),
                    totp_devices::secret.eq(&sealed),
                    totp_devices::last_step.eq(0_i64),
                ))
                .on_conflict(totp_devices::user_id)
                .do_update()
                .set((
                    totp_devices::secret.eq(&sealed),
                    totp_devices::last_step.eq(0_i64),
                ));
            // An upsert's `WHERE` is `FilterDsl`'s; `QueryDsl::filter`, in
            // the prelude, is for queries.
            diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                totp_devices::confirmed_at.is_null(),
            )
            .execute(conn)
        })?;
        Ok(stored == 1)
    }

    /// The set-up page's QR code and text, for a stored unconfirmed device.
    pub fn provisioning_for(
        &self,
        device: &TotpDevice,
        username: &str,
    ) -> Result<(String, String), TotpError> {
        let secret = NewSecret {
            bytes: self.decrypt(&device.secret)?,
        };
        self.provisioning(&secret, username)
    }

    /// Whether `code` is valid now for `device`, and not used before; if so
    /// it is used up. Blocking.
    pub fn verify_and_use(
        &self,
        conn: &mut DbConnection,
        device: &TotpDevice,
        username: &str,
        code: &str,
    ) -> Result<bool, TotpError> {
        self.verify_and_use_at(conn, device, username, code, unix_now())
    }

    /// [`Self::verify_and_use`] at the Unix time `at`.
    pub fn verify_and_use_at(
        &self,
        conn: &mut DbConnection,
        device: &TotpDevice,
        username: &str,
        code: &str,
        at: u64,
    ) -> Result<bool, TotpError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let secret = self.decrypt(&device.secret)?;
        let Some(step) = generator(&secret, username)?.check(&code, at) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        // Compare-and-set: of two requests with the same code, one moves
        // the step forward, the other finds it moved.
        let moved = diesel::update(
            totp_devices::table
                .find(device.user_id)
                .filter(totp_devices::last_step.lt(step)),
        )
        .set(totp_devices::last_step.eq(step))
        .execute(conn)?;
        Ok(moved == 1)
    }
}

/// The user's device, confirmed or not.
pub fn find(conn: &mut DbConnection, user_id: i32) -> QueryResult<Option<TotpDevice>> {
    totp_devices::table
        .find(user_id)
        .select(TotpDevice::as_select())
        .get_result(conn)
        .optional()
}

/// The user's confirmed device: set when two-factor sign-in is on.
pub fn find_confirmed(conn: &mut DbConnection, user_id: i32) -> QueryResult<Option<TotpDevice>> {
    Ok(find(conn, user_id)?.filter(|device| device.confirmed_at.is_some()))
}

/// Marks `device` confirmed: from now on, the password alone does not
/// sign in. Only if it is still the unconfirmed device with that secret
/// (`Ok(false)` otherwise).
pub fn confirm(conn: &mut DbConnection, device: &TotpDevice) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_devices::table
            .find(device.user_id)
            .filter(totp_devices::confirmed_at.is_null())
            // The secret the code was checked against: setup begun again in
            // another tab replaced it, and that one was never proven.
            .filter(totp_devices::secret.eq(&device.secret)),
    )
    .set(totp_devices::confirmed_at.eq(now()))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Deletes the user's device, confirmed or not.
pub fn delete(conn: &mut DbConnection, user_id: i32) -> QueryResult<usize> {
    diesel::delete(totp_devices::table.find(user_id)).execute(conn)
}
