//! The sender: takes due mail out of the outbox and sends it, off the
//! request path, retrying with backoff.
//!
//! Each mail is claimed (a lease no other worker, in this process or
//! another instance, can take), sent, then deleted. A transient failure
//! (server down, busy, unreachable) puts the mail back with a wait that
//! doubles each time; a permanent one (the server refused the address for
//! good) or too many attempts leaves the row marked failed, for the
//! operator. Only a crash between the server's "250 OK" and the delete can
//! send a mail twice, after the lease ends; the `Message-ID` is the same,
//! so the receiving side can tell.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::{Mailer, backend::SendError, outbox};
use crate::db::{DbError, DbPool, now, with_conn};

/// When to try a failed mail again, and when to stop.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait after the first failure; each further failure doubles it.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_wait: Duration,
    /// Attempts before giving up.
    pub max_attempts: i32,
    /// How often the worker looks for due mail when nobody woke it.
    pub poll_every: Duration,
    /// How long a claimed mail is reserved for the worker sending it:
    /// longer than an SMTP conversation may take.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    /// 10 s doubling up to an hour, 16 attempts: a mail outlives an SMTP
    /// outage of about eight hours.
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(10),
            max_wait: Duration::from_secs(60 * 60),
            max_attempts: 16,
            poll_every: Duration::from_secs(5),
            lease: Duration::from_secs(5 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts.
    pub fn wait_after(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.first_retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_wait)
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Mails the server took.
    pub sent: usize,
    /// Mails that failed and wait for another try.
    pub deferred: usize,
    /// Mails given up on.
    pub failed: usize,
    /// Decoys dropped.
    pub decoys: usize,
}

/// The outbox and its sender, shared by the views (which wake it) and the
/// worker task.
#[derive(Clone)]
pub struct Outbox {
    pool: DbPool,
    mailer: Arc<Mailer>,
    wake: Arc<Notify>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("mailer", &self.mailer)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox in `pool`, sent through `mailer`.
    pub fn new(pool: DbPool, mailer: Arc<Mailer>, policy: RetryPolicy) -> Self {
        Self {
            pool,
            mailer,
            wake: Arc::new(Notify::new()),
            policy,
        }
    }

    /// The same outbox with another retry policy.
    pub fn with_policy(self, policy: RetryPolicy) -> Self {
        Self { policy, ..self }
    }

    /// The mailer.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Tells the worker that mail was queued: call it after the
    /// transaction that queued it committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends every mail that is due, one at a time; returns what happened.
    pub async fn deliver_due(&self) -> Result<Delivery, DbError> {
        let mut delivery = Delivery::default();
        let lease = time::Duration::try_from(self.policy.lease).unwrap_or(time::Duration::MINUTE);
        loop {
            let claimed = with_conn(&self.pool, move |conn| {
                outbox::claim_due(conn, lease, 1).map_err(DbError::from)
            })
            .await?;
            let Some(queued) = claimed.into_iter().next() else {
                return Ok(delivery);
            };
            let id = queued.id;
            if queued.is_decoy() {
                with_conn(&self.pool, move |conn| {
                    outbox::delete(conn, id).map_err(DbError::from)
                })
                .await?;
                delivery.decoys += 1;
                continue;
            }
            let attempts = queued.attempts.saturating_add(1);
            let outcome = self.mailer.send(&queued.mail(), &queued.message_id).await;
            let policy = self.policy;
            let counted = with_conn(&self.pool, move |conn| {
                let counted: diesel::QueryResult<Counted> = match outcome {
                    Ok(()) => {
                        outbox::delete(conn, id)?;
                        Ok(Counted::Sent)
                    }
                    Err(SendError::Transient(error)) if attempts < policy.max_attempts => {
                        let wait = policy.wait_after(attempts);
                        let next = now().saturating_add(
                            time::Duration::try_from(wait).unwrap_or(time::Duration::HOUR),
                        );
                        tracing::warn!(
                            outbox.id = id,
                            attempts,
                            retry_in_secs = wait.as_secs(),
                            error = %error,
                            "a mail could not be sent; it will be tried again"
                        );
                        outbox::retry_later(conn, id, attempts, next, &error)?;
                        Ok(Counted::Deferred)
                    }
                    Err(err) => {
                        tracing::error!(
                            outbox.id = id,
                            attempts,
                            error = %err,
                            "a mail could not be sent; Porter gave up on it"
                        );
                        outbox::give_up(conn, id, attempts, &err.to_string())?;
                        Ok(Counted::Failed)
                    }
                };
                counted.map_err(DbError::from)
            })
            .await?;
            match counted {
                Counted::Sent => delivery.sent += 1,
                Counted::Deferred => delivery.deferred += 1,
                Counted::Failed => delivery.failed += 1,
            }
        }
    }

    /// The worker: delivers due mail whenever woken, and every
    /// `poll_every` in any case (for retries, and for mail queued by
    /// another instance or the command line), for as long as the server
    /// runs.
    pub async fn run(self) {
        loop {
            match self.deliver_due().await {
                Ok(Delivery {
                    sent: 0, failed: 0, ..
                }) => {}
                Ok(delivery) => tracing::info!(
                    sent = delivery.sent,
                    deferred = delivery.deferred,
                    failed = delivery.failed,
                    "mail delivered"
                ),
                Err(err) => tracing::warn!(error = %err, "the mail outbox could not be read"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = actix_web::rt::time::sleep(self.policy.poll_every) => {}
            }
        }
    }
}

enum Counted {
    Sent,
    Deferred,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.wait_after(1), Duration::from_secs(10));
        assert_eq!(policy.wait_after(2), Duration::from_secs(20));
        assert_eq!(policy.wait_after(4), Duration::from_secs(80));
        assert_eq!(policy.wait_after(40), Duration::from_secs(3600));
    }
}
