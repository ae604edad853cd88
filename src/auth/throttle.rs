//! Throttling password guessing: what django-axes adds to Django.
//!
//! Attempts are counted in the database (so throttling holds on any
//! database and across instances), per *scope*:
//!
//! | scope | limit | stops |
//! | ----- | ----- | ----- |
//! | username at one address | 5 | guessing one account from one place |
//! | one address | 50 | a spray over many usernames |
//! | one username, any address | 20 | guessing one account from many places |
//! | one device cookie | 5 | a browser the user signed in from before ([`device_cookies`](super::device_cookies)) |
//! | one user's old-password check | 5 | `/password` as an oracle |
//! | one user's second-factor codes | 5 | guessing a TOTP or recovery code |
//! | second-factor codes from one address | 50 | guessing codes for many users |
//! | sign-ups from one address | 10 | mass account creation |
//! | password reset requests from one address | 20 | mail bombing many addresses |
//! | password reset requests for one e-mail address | 5 | mail bombing one inbox |
//!
//! An attempt is **reserved before its password is checked**: one atomic
//! compare-and-set per scope counts it, and refuses it when the scope is
//! locked. However many requests arrive at once, no more than the limit are
//! verified. Past a scope's limit, each further attempt locks the scope for
//! twice as long as the last (30 s doubling up to 15 min for logins); locked
//! attempts get `429` without their password being checked. A success gives
//! its reservation back (and clears the per-username-and-address and device
//! counters); a failure keeps it. A counter starts again after a quiet hour.
//! Unknown usernames count exactly as real ones, so the throttle does not
//! reveal which accounts exist.
//!
//! Scopes are stored as keyed hashes (HMAC under `SECRET_KEY`): the table
//! never holds a typed username (sometimes a password typed into the wrong
//! box) or an address in clear.

use std::time::Duration;

use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::PrimitiveDateTime;

use super::{device_cookies::DeviceCookies, email_address::email_key, models::username_key};
use crate::{
    db::{DbConnection, DbError, DbPool, now, with_conn},
    schema::login_attempts,
    settings::SecretKey,
};

/// How many attempts a scope tolerates, and how long it then locks.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Attempts counted before the scope locks.
    pub threshold: i32,
    /// The first lock; each further attempt doubles it.
    pub base_delay: Duration,
    /// The longest lock.
    pub max_delay: Duration,
}

impl Limit {
    /// How long the scope locks once `attempts` are counted, if it does.
    pub fn delay(&self, attempts: i32) -> Option<Duration> {
        let over = attempts
            .checked_sub(self.threshold)
            .filter(|over| *over >= 0)?;
        let factor = 2u32.saturating_pow(u32::try_from(over.min(20)).unwrap_or(20));
        Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
    }

    const fn login(threshold: i32) -> Self {
        Self {
            threshold,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

/// The throttle's limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Per (username, client address).
    pub per_username_and_address: Limit,
    /// Per client address.
    pub per_address: Limit,
    /// Per username, whatever the address: distributed guessing.
    pub per_account: Limit,
    /// Per device cookie, for a browser trusted for the username.
    pub per_device: Limit,
    /// Per user, for the old-password check of the password change form.
    pub password_check: Limit,
    /// Per user, for second-factor codes (TOTP and recovery).
    pub code_per_user: Limit,
    /// Per client address, for second-factor codes.
    pub code_per_address: Limit,
    /// Per client address, for sign-ups.
    pub signup: Limit,
    /// Per client address, for password reset requests.
    pub reset_per_address: Limit,
    /// Per e-mail address, for password reset requests.
    pub reset_per_email: Limit,
    /// A counter with no attempt for this long starts again from zero.
    pub quiet_period: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_username_and_address: Limit::login(5),
            per_address: Limit::login(50),
            per_account: Limit::login(20),
            per_device: Limit::login(5),
            password_check: Limit::login(5),
            code_per_user: Limit::login(5),
            code_per_address: Limit::login(50),
            signup: Limit {
                threshold: 10,
                base_delay: Duration::from_secs(60),
                max_delay: Duration::from_secs(60 * 60),
            },
            reset_per_address: Limit {
                threshold: 20,
                base_delay: Duration::from_secs(60),
                max_delay: Duration::from_secs(60 * 60),
            },
            reset_per_email: Limit {
                threshold: 5,
                base_delay: Duration::from_secs(5 * 60),
                max_delay: Duration::from_secs(60 * 60),
            },
            quiet_period: Duration::from_secs(60 * 60),
        }
    }
}

/// What an attempt is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A username typed at one client address.
    UsernameAtAddress {
        /// The username as typed.
        username: &'a str,
        /// The client address.
        address: &'a str,
    },
    /// Every attempt from one client address.
    Address(&'a str),
    /// Every attempt at one username.
    Account(&'a str),
    /// A browser with a valid device cookie for the username (its nonce).
    Device(&'a str),
    /// The old-password check of one user.
    PasswordCheck(i32),
    /// Second-factor codes typed for one user.
    CodeForUser(i32),
    /// Second-factor codes typed from one client address.
    CodeFromAddress(&'a str),
    /// Sign-ups from one client address.
    Signup(&'a str),
    /// Password reset requests from one client address.
    ResetFromAddress(&'a str),
    /// Password reset requests for one e-mail address, as typed.
    ResetForEmail(&'a str),
}

/// What a success does to a scope's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSuccess {
    /// Start it again: this client has proved itself.
    Clear,
    /// Give the reservation back: others' failures stay counted.
    GiveBack,
    /// Keep it counted: every success counts (sign-ups).
    Keep,
}

impl Scope<'_> {
    fn on_success(self) -> OnSuccess {
        match self {
            Self::UsernameAtAddress { .. }
            | Self::Device(_)
            | Self::PasswordCheck(_)
            | Self::CodeForUser(_) => OnSuccess::Clear,
            Self::Address(_) | Self::Account(_) | Self::CodeFromAddress(_) => OnSuccess::GiveBack,
            Self::Signup(_) | Self::ResetFromAddress(_) | Self::ResetForEmail(_) => OnSuccess::Keep,
        }
    }

    fn limit(self, policy: &ThrottlePolicy) -> Limit {
        match self {
            Self::UsernameAtAddress { .. } => policy.per_username_and_address,
            Self::Address(_) => policy.per_address,
            Self::Account(_) => policy.per_account,
            Self::Device(_) => policy.per_device,
            Self::PasswordCheck(_) => policy.password_check,
            Self::CodeForUser(_) => policy.code_per_user,
            Self::CodeFromAddress(_) => policy.code_per_address,
            Self::Signup(_) => policy.signup,
            Self::ResetFromAddress(_) => policy.reset_per_address,
            Self::ResetForEmail(_) => policy.reset_per_email,
        }
    }

    /// The scope in words, before it is hashed.
    fn plain(self) -> String {
        match self {
            Self::UsernameAtAddress { username, address } => {
                format!("user-at-address:{address}:{}", username_key(username))
            }
            Self::Address(address) => format!("address:{address}"),
            Self::Account(username) => format!("account:{}", username_key(username)),
            Self::Device(nonce) => format!("device:{nonce}"),
            Self::PasswordCheck(user_id) => format!("password-check:{user_id}"),
            Self::CodeForUser(user_id) => format!("code-user:{user_id}"),
            Self::CodeFromAddress(address) => format!("code-address:{address}"),
            Self::Signup(address) => format!("signup:{address}"),
            Self::ResetFromAddress(address) => format!("reset-address:{address}"),
            Self::ResetForEmail(email) => format!("reset-email:{}", email_key(email)),
        }
    }
}

/// Why an attempt was not let through.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// A scope is locked: try again after this long.
    #[error("too many attempts; retry after {0:?}")]
    Locked(Duration),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<DieselError> for ThrottleError {
    fn from(err: DieselError) -> Self {
        Self::Db(err.into())
    }
}

/// The throttle: its limits, its key and the database holding its counters.
#[derive(Clone)]
pub struct Throttle {
    policy: ThrottlePolicy,
    key: [u8; 32],
    pool: DbPool,
    devices: std::sync::Arc<DeviceCookies>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A counted attempt, per scope: the stored (hashed) scope, its limit and
/// what a success does to it.
#[derive(Debug, Clone)]
struct Counted {
    scope: String,
    limit: Limit,
    on_success: OnSuccess,
}

/// Attempts reserved by [`Throttle::reserve`]. Dropping it keeps them
/// counted (a failure); [`Reservation::succeeded`] and
/// [`Reservation::give_back`] release them.
#[must_use = "a reservation is released by succeeded() or give_back(), or kept by dropping it"]
#[derive(Debug)]
pub struct Reservation {
    pool: DbPool,
    counted: Vec<Counted>,
}

/// How often one reservation retries a compare-and-set that lost a race.
const RESERVE_TRIES: usize = 64;

impl Throttle {
    /// A throttle with `policy`, hashing scopes under `secret_key`, trusting
    /// browsers with a valid one of `devices`.
    pub fn new(
        pool: DbPool,
        secret_key: &SecretKey,
        policy: ThrottlePolicy,
        devices: DeviceCookies,
    ) -> Self {
        Self {
            policy,
            key: secret_key.derive(b"porter.auth.throttle"),
            pool,
            devices: std::sync::Arc::new(devices),
        }
    }

    /// The device cookies that exempt a known browser from others' lockouts.
    pub fn devices(&self) -> &DeviceCookies {
        &self.devices
    }

    /// The limits.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// The scope as stored: a keyed hash.
    fn stored(&self, scope: Scope<'_>) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(scope.plain().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Counts an attempt against every scope, or refuses it when one is
    /// locked (then nothing stays counted).
    pub async fn reserve(&self, scopes: &[Scope<'_>]) -> Result<Reservation, ThrottleError> {
        let counted: Vec<Counted> = scopes
            .iter()
            .map(|scope| Counted {
                scope: self.stored(*scope),
                limit: scope.limit(&self.policy),
                on_success: scope.on_success(),
            })
            .collect();
        let quiet_period = to_time(self.policy.quiet_period);
        let pool = self.pool.clone();
        with_conn(&self.pool, move |conn| {
            for (done, entry) in counted.iter().enumerate() {
                if let Err(wait) = reserve_one(conn, entry, quiet_period)? {
                    for reserved in &counted[..done] {
                        give_back(conn, reserved)?;
                    }
                    return Err(ThrottleError::Locked(wait));
                }
            }
            Ok(Reservation { pool, counted })
        })
        .await
    }
}

impl Throttle {
    /// Starts the counters of `scopes` again from zero: after a password
    /// reset, the owner proved themselves by mail, so failures counted
    /// against their account no longer hold them back.
    pub async fn clear(&self, scopes: &[Scope<'_>]) -> Result<(), DbError> {
        let stored: Vec<String> = scopes.iter().map(|scope| self.stored(*scope)).collect();
        with_conn(&self.pool, move |conn| {
            diesel::delete(login_attempts::table.filter(login_attempts::scope.eq_any(&stored)))
                .execute(conn)
                .map(drop)
                .map_err(DbError::from)
        })
        .await
    }
}

impl Reservation {
    /// The attempt succeeded: clear or give back each scope, as it wants.
    pub async fn succeeded(self) -> Result<(), DbError> {
        self.release(false).await
    }

    /// The attempt was never checked (the server was too busy): give every
    /// scope its reservation back.
    pub async fn give_back(self) -> Result<(), DbError> {
        self.release(true).await
    }

    async fn release(self, all: bool) -> Result<(), DbError> {
        let Self { pool, counted } = self;
        with_conn(&pool, move |conn| {
            for entry in &counted {
                match (all, entry.on_success) {
                    (true, _) | (false, OnSuccess::GiveBack) => give_back(conn, entry)?,
                    (false, OnSuccess::Clear) => {
                        diesel::delete(login_attempts::table.find(&entry.scope)).execute(conn)?;
                    }
                    (false, OnSuccess::Keep) => {}
                }
            }
            Ok(())
        })
        .await
    }
}

fn to_time(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::HOUR)
}

/// Counts one attempt against one scope with a compare-and-set, or says how
/// long the scope is locked for.
fn reserve_one(
    conn: &mut DbConnection,
    entry: &Counted,
    quiet_period: time::Duration,
) -> QueryResult<Result<(), Duration>> {
    let lock_after = |attempts: i32, now: PrimitiveDateTime| {
        entry
            .limit
            .delay(attempts)
            .map(|delay| now.saturating_add(to_time(delay)))
    };
    for _ in 0..RESERVE_TRIES {
        let now = now();
        let row: Option<(i32, PrimitiveDateTime, Option<PrimitiveDateTime>)> =
            login_attempts::table
                .find(&entry.scope)
                .select((
                    login_attempts::failures,
                    login_attempts::last_failure_at,
                    login_attempts::locked_until,
                ))
                .get_result(conn)
                .optional()?;
        let Some((seen, last_at, locked_until)) = row else {
            let inserted = diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::scope.eq(&entry.scope),
                    login_attempts::failures.eq(1),
                    login_attempts::last_failure_at.eq(now),
                    login_attempts::locked_until.eq(lock_after(1, now)),
                ))
                .execute(conn);
            match inserted {
                Ok(_) => return Ok(Ok(())),
                // Another request counted first: compare and set again.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
                Err(err) => return Err(err),
            }
        };
        if let Some(until) = locked_until.filter(|until| *until > now) {
            let left = Duration::try_from(until - now).unwrap_or(Duration::from_secs(1));
            return Ok(Err(left));
        }
        let attempts = if last_at < now - quiet_period {
            1
        } else {
            seen.saturating_add(1)
        };
        let swapped = diesel::update(
            login_attempts::table
                .find(&entry.scope)
                .filter(login_attempts::failures.eq(seen))
                .filter(login_attempts::last_failure_at.eq(last_at)),
        )
        .set((
            login_attempts::failures.eq(attempts),
            login_attempts::last_failure_at.eq(now),
            login_attempts::locked_until.eq(lock_after(attempts, now)),
        ))
        .execute(conn)?;
        if swapped == 1 {
            return Ok(Ok(()));
        }
    }
    // Lost the race every time: the scope is under a burst. Refuse rather
    // than let an uncounted attempt through.
    Ok(Err(Duration::from_secs(1)))
}

/// Gives one reservation back: one attempt fewer, and no lock once under
/// the threshold. Each statement is atomic on its own; a lock only ever
/// exists at or over the threshold, so clearing it under is always right.
fn give_back(conn: &mut DbConnection, entry: &Counted) -> QueryResult<()> {
    diesel::update(
        login_attempts::table
            .find(&entry.scope)
            .filter(login_attempts::failures.gt(0)),
    )
    .set(login_attempts::failures.eq(login_attempts::failures - 1))
    .execute(conn)?;
    diesel::update(
        login_attempts::table
            .find(&entry.scope)
            .filter(login_attempts::failures.lt(entry.limit.threshold)),
    )
    .set(login_attempts::locked_until.eq(None::<PrimitiveDateTime>))
    .execute(conn)?;
    Ok(())
}

/// Deletes counters quiet for longer than the quiet period; returns how many.
pub fn delete_stale(conn: &mut DbConnection, quiet_period: Duration) -> QueryResult<usize> {
    let cutoff = now() - to_time(quiet_period);
    diesel::delete(
        login_attempts::table
            .filter(login_attempts::last_failure_at.lt(cutoff))
            .filter(
                login_attempts::locked_until
                    .is_null()
                    .or(login_attempts::locked_until.lt(now())),
            ),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_past_the_threshold_up_to_the_cap() {
        let limit = ThrottlePolicy::default().per_username_and_address;
        assert_eq!(limit.delay(4), None);
        assert_eq!(limit.delay(5), Some(Duration::from_secs(30)));
        assert_eq!(limit.delay(6), Some(Duration::from_secs(60)));
        assert_eq!(limit.delay(7), Some(Duration::from_secs(120)));
        assert_eq!(limit.delay(500), Some(Duration::from_secs(900)));
    }
}
