//! The factors beyond the password, together: the TOTP keys, the recovery
//! codes and the passkey relying party, built once at start-up and shared
//! as app data ([`Factors`]); and the one way to take them all off an
//! account ([`reset`]), for staff helping a user who lost every factor.

use super::{passkeys::Passkeys, recovery_codes::RecoveryCodes, totp::TotpKeys};
use crate::{
    db::{DbConnection, transaction},
    settings::{SecretKey, Settings},
};

/// What two-factor sign-in, recovery codes and passkeys need at run time.
#[derive(Debug, Clone)]
pub struct Factors {
    /// Encrypts TOTP secrets and checks codes.
    pub totp: TotpKeys,
    /// Makes and checks recovery codes.
    pub recovery: RecoveryCodes,
    /// The WebAuthn relying party (`SITE_URL`).
    pub passkeys: Passkeys,
}

impl Factors {
    /// The factors for these settings. Passkeys are off when `SITE_URL`
    /// (or, in debug without it, the address served) is not a domain.
    pub fn new(settings: &Settings) -> Self {
        let (key, fallbacks): (&SecretKey, &[SecretKey]) =
            (&settings.secret_key, &settings.secret_key_fallbacks);
        Self {
            totp: TotpKeys::new(key, fallbacks),
            recovery: RecoveryCodes::new(key, fallbacks),
            passkeys: Passkeys::new(&settings.public_url(), key),
        }
    }
}

/// What [`reset`] took off an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetOutcome {
    /// Whether a TOTP device (confirmed or not) was removed.
    pub totp_removed: bool,
    /// How many recovery codes were deleted.
    pub recovery_codes_removed: usize,
    /// How many passkeys were removed.
    pub passkeys_removed: usize,
}

/// Turns two-factor sign-in off for `user_id`: the TOTP device, the
/// recovery codes and the passkeys go, in one transaction, and the password
/// alone signs in again. For staff (or `porter twofactor reset`) once they
/// have made sure, out of band, that the person asking owns the account;
/// the caller records who did it. A password reset by mail does *not* do
/// this: a stolen mailbox must not undo the second factor.
pub fn reset(conn: &mut DbConnection, user_id: i32) -> diesel::QueryResult<ResetOutcome> {
    transaction(conn, |conn| {
        Ok(ResetOutcome {
            totp_removed: super::totp::delete(conn, user_id)? > 0,
            recovery_codes_removed: super::recovery_codes::delete_all(conn, user_id)?,
            passkeys_removed: super::passkeys::remove_all(conn, user_id)?,
        })
    })
}
