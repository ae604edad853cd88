//! The `mail_outbox` table: mail waiting to be sent. Connection first,
//! blocking; [`enqueue`] is meant to run inside the transaction of the
//! change the mail is about.
//!
//! A row is *claimed* by a worker for a lease before it is sent (a
//! compare-and-set, so two instances never send the same row at once),
//! deleted once the server took the mail, or given a later
//! `next_attempt_at` when it did not.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::Mail;
use crate::{
    db::{DbConnection, now},
    schema::mail_outbox,
};

/// A mail in the outbox.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct QueuedMail {
    /// Row id.
    pub id: i32,
    /// The unique part of its `Message-ID`, the same on every attempt.
    pub message_id: String,
    /// The address; empty for a decoy (see [`enqueue_decoy`]).
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: String,
    /// Attempts so far.
    pub attempts: i32,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("recipient", &self.recipient)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl QueuedMail {
    /// The mail itself.
    pub fn mail(&self) -> Mail {
        Mail {
            to: self.recipient.clone(),
            subject: self.subject.clone(),
            text: self.body_text.clone(),
            html: self.body_html.clone(),
        }
    }

    /// Whether this is a decoy, to be dropped unsent.
    pub fn is_decoy(&self) -> bool {
        self.recipient.is_empty()
    }
}

#[derive(Insertable)]
#[diesel(table_name = mail_outbox)]
struct NewQueuedMail<'a> {
    message_id: String,
    recipient: &'a str,
    subject: &'a str,
    body_text: &'a str,
    body_html: &'a str,
    created_at: PrimitiveDateTime,
    next_attempt_at: PrimitiveDateTime,
}

fn new_message_id() -> String {
    let mut random = [0u8; 16];
    rand::fill(&mut random);
    format!("porter.{}", hex::encode(random))
}

/// Queues `mail`, due at once.
pub fn enqueue(conn: &mut DbConnection, mail: &Mail) -> QueryResult<()> {
    insert(conn, &mail.to, mail)
}

/// Writes a row exactly as [`enqueue`] would, with no recipient: the worker
/// deletes it unsent. A reset request for an address no account has writes
/// one, so that it does the same database work as a request that sends a
/// mail, and takes the same time.
pub fn enqueue_decoy(conn: &mut DbConnection, mail: &Mail) -> QueryResult<()> {
    insert(conn, "", mail)
}

fn insert(conn: &mut DbConnection, recipient: &str, mail: &Mail) -> QueryResult<()> {
    let at = now();
    diesel::insert_into(mail_outbox::table)
        .values(NewQueuedMail {
            message_id: new_message_id(),
            recipient,
            subject: &mail.subject,
            body_text: &mail.text,
            body_html: &mail.html,
            created_at: at,
            next_attempt_at: at,
        })
        .execute(conn)
        .map(drop)
}

/// Claims up to `limit` due mails for `lease`: no other worker takes them
/// before it ends. Oldest first.
pub fn claim_due(
    conn: &mut DbConnection,
    lease: time::Duration,
    limit: i64,
) -> QueryResult<Vec<QueuedMail>> {
    let at = now();
    let free = mail_outbox::claimed_until
        .is_null()
        .or(mail_outbox::claimed_until.lt(at));
    let candidates: Vec<QueuedMail> = mail_outbox::table
        .filter(mail_outbox::failed_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(at))
        .filter(free)
        .order(mail_outbox::id)
        .limit(limit)
        .select(QueuedMail::as_select())
        .load(conn)?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for mail in candidates {
        let won = diesel::update(
            mail_outbox::table
                .find(mail.id)
                .filter(mail_outbox::failed_at.is_null())
                .filter(
                    mail_outbox::claimed_until
                        .is_null()
                        .or(mail_outbox::claimed_until.lt(at)),
                ),
        )
        .set(mail_outbox::claimed_until.eq(at.saturating_add(lease)))
        .execute(conn)?;
        if won == 1 {
            claimed.push(mail);
        }
    }
    Ok(claimed)
}

/// Removes a mail that was sent (or a decoy).
pub fn delete(conn: &mut DbConnection, id: i32) -> QueryResult<()> {
    diesel::delete(mail_outbox::table.find(id))
        .execute(conn)
        .map(drop)
}

/// Records a failed attempt: tried again at `next_attempt_at`.
pub fn retry_later(
    conn: &mut DbConnection,
    id: i32,
    attempts: i32,
    next_attempt_at: PrimitiveDateTime,
    error: &str,
) -> QueryResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::attempts.eq(attempts),
            mail_outbox::next_attempt_at.eq(next_attempt_at),
            mail_outbox::claimed_until.eq(None::<PrimitiveDateTime>),
            mail_outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .map(drop)
}

/// Records that Porter gave up on a mail; the row stays for the operator.
pub fn give_up(conn: &mut DbConnection, id: i32, attempts: i32, error: &str) -> QueryResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::attempts.eq(attempts),
            mail_outbox::failed_at.eq(Some(now())),
            mail_outbox::claimed_until.eq(None::<PrimitiveDateTime>),
            mail_outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .map(drop)
}

/// How many mails wait to be sent (decoys and given-up mails aside).
pub fn waiting(conn: &mut DbConnection) -> QueryResult<i64> {
    mail_outbox::table
        .filter(mail_outbox::failed_at.is_null())
        .filter(mail_outbox::recipient.ne(""))
        .count()
        .get_result(conn)
}
