//! Login throttling: what django-axes adds to Django.
//!
//! Failed logins are counted in the database (so throttling holds on any
//! database and across instances), in two scopes:
//!
//! * per (username, client address): tight, it stops guessing one account;
//! * per client address: generous, so an office behind one address is not
//!   locked out by a few people mistyping, but a spray over many usernames is.
//!
//! Past a scope's threshold, each further failure doubles the wait before
//! the next attempt is accepted (up to a cap); meanwhile attempts get `429`
//! without their password being checked. A counter starts again after a
//! quiet hour. A successful login clears its (username, address) counter and
//! is never counted. Unknown usernames are counted exactly as real ones, so
//! the throttle does not reveal which accounts exist.

use std::time::Duration;

use diesel::{
    dsl::case_when,
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use time::PrimitiveDateTime;

use crate::{
    db::{DbConnection, DbError, DbPool, with_conn},
    schema::login_attempts,
    sessions::models::now,
};

/// How much failure a scope tolerates.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures allowed before attempts must wait.
    pub threshold: i32,
    /// The first wait; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Limit {
    /// How long attempts must wait after `failures` failures.
    pub fn delay(&self, failures: i32) -> Option<Duration> {
        let over = failures
            .checked_sub(self.threshold)
            .filter(|over| *over >= 0)?;
        let factor = 2u32.saturating_pow(u32::try_from(over.min(20)).unwrap_or(20));
        Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
    }
}

/// The throttle's limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Per (username, client address).
    pub per_username: Limit,
    /// Per client address.
    pub per_address: Limit,
    /// A counter with no failure for this long starts again from zero.
    pub quiet_period: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_username: Limit {
                threshold: 5,
                base_delay: Duration::from_secs(30),
                max_delay: Duration::from_secs(15 * 60),
            },
            per_address: Limit {
                threshold: 50,
                base_delay: Duration::from_secs(30),
                max_delay: Duration::from_secs(15 * 60),
            },
            quiet_period: Duration::from_secs(60 * 60),
        }
    }
}

fn username_scope(username: &str, address: &str) -> String {
    format!("user:{address}:{}", username.trim().to_lowercase())
}

fn address_scope(address: &str) -> String {
    format!("ip:{address}")
}

fn wait_left(last_failure_at: PrimitiveDateTime, delay: Duration) -> Option<Duration> {
    let until = last_failure_at.saturating_add(time::Duration::try_from(delay).ok()?);
    let left = until - now();
    left.is_positive()
        .then(|| Duration::try_from(left).ok())
        .flatten()
}

impl ThrottlePolicy {
    /// How long this attempt must wait, if it must: `None` lets it through.
    pub async fn check(
        &self,
        pool: &DbPool,
        username: &str,
        address: &str,
    ) -> Result<Option<Duration>, DbError> {
        let policy = *self;
        let scopes = [username_scope(username, address), address_scope(address)];
        with_conn(pool, move |conn| {
            let rows: Vec<(String, i32, PrimitiveDateTime)> = login_attempts::table
                .filter(
                    login_attempts::scope
                        .eq(&scopes[0])
                        .or(login_attempts::scope.eq(&scopes[1])),
                )
                .select((
                    login_attempts::scope,
                    login_attempts::failures,
                    login_attempts::last_failure_at,
                ))
                .load(conn)?;
            let wait = rows
                .into_iter()
                .filter_map(|(scope, failures, last_failure_at)| {
                    let limit = if scope == scopes[0] {
                        policy.per_username
                    } else {
                        policy.per_address
                    };
                    wait_left(last_failure_at, limit.delay(failures)?)
                })
                .max();
            Ok(wait)
        })
        .await
    }

    /// Counts a failed attempt in both scopes.
    pub async fn record_failure(
        &self,
        pool: &DbPool,
        username: &str,
        address: &str,
    ) -> Result<(), DbError> {
        let quiet_period =
            time::Duration::try_from(self.quiet_period).unwrap_or(time::Duration::HOUR);
        let scopes = [username_scope(username, address), address_scope(address)];
        with_conn(pool, move |conn| {
            for scope in &scopes {
                count_failure(conn, scope, quiet_period)?;
            }
            Ok(())
        })
        .await
    }

    /// Clears the (username, address) counter after a successful login.
    pub async fn record_success(
        &self,
        pool: &DbPool,
        username: &str,
        address: &str,
    ) -> Result<(), DbError> {
        let scope = username_scope(username, address);
        with_conn(pool, move |conn| {
            diesel::delete(login_attempts::table.find(scope)).execute(conn)?;
            Ok(())
        })
        .await
    }
}

/// Counts one failure with statements that are each atomic, so concurrent
/// failures are all counted: increment the row if there is one (starting
/// again after a quiet period), else insert it; if a concurrent request
/// inserted it first, increment that.
fn count_failure(
    conn: &mut DbConnection,
    scope: &str,
    quiet_period: time::Duration,
) -> QueryResult<()> {
    let now = now();
    let quiet_since = now - quiet_period;
    let increment = |conn: &mut DbConnection| {
        diesel::update(login_attempts::table.find(scope))
            .set((
                login_attempts::failures.eq(case_when::<_, _, diesel::sql_types::Integer>(
                    login_attempts::last_failure_at.lt(quiet_since),
                    1,
                )
                .otherwise(login_attempts::failures + 1)),
                login_attempts::last_failure_at.eq(now),
            ))
            .execute(conn)
    };
    if increment(conn)? > 0 {
        return Ok(());
    }
    let inserted = diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::scope.eq(scope),
            login_attempts::failures.eq(1),
            login_attempts::last_failure_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            increment(conn).map(drop)
        }
        other => other.map(drop),
    }
}

/// Deletes counters quiet for longer than the quiet period; returns how many.
pub fn delete_stale(conn: &mut DbConnection, quiet_period: Duration) -> QueryResult<usize> {
    let cutoff = now() - time::Duration::try_from(quiet_period).unwrap_or(time::Duration::HOUR);
    diesel::delete(login_attempts::table.filter(login_attempts::last_failure_at.lt(cutoff)))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_past_the_threshold_up_to_the_cap() {
        let limit = ThrottlePolicy::default().per_username;
        assert_eq!(limit.delay(4), None);
        assert_eq!(limit.delay(5), Some(Duration::from_secs(30)));
        assert_eq!(limit.delay(6), Some(Duration::from_secs(60)));
        assert_eq!(limit.delay(7), Some(Duration::from_secs(120)));
        assert_eq!(limit.delay(500), Some(Duration::from_secs(900)));
    }
}
