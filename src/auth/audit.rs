//! The security log users can read: the `auth_events` table. Django keeps
//! no such table itself (django-axes' `AccessLog` and the admin's
//! `LogEntry` are its nearest kin); [`signals`](super::signals) is the
//! hook, this is the record.
//!
//! Each event is written by the code that makes the change it describes,
//! in the same transaction ([`record`] takes the transaction's connection),
//! so the log never claims a change that did not happen nor misses one
//! that did. A sign-in costs one insert. Nothing secret goes in: no
//! password, key or token, and a username typed at a failed sign-in only as
//! an HMAC under `SECRET_KEY` ([`AuthContext::username_digest`]), which
//! staff can match against a name they type but nobody can read back.
//!
//! Users read their own recent events on `/security`; staff read everyone's
//! in the staff area. `clearsessions` deletes events older than
//! `AUTH_EVENTS_TTL` ([`prune`]).
//!
//! [`AuthContext::username_digest`]: super::AuthContext::username_digest

use actix_web::{HttpRequest, http::header};
use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use time::PrimitiveDateTime;

use super::models::username_key;
use crate::{
    client_ip::client_ip_text,
    db::{DbConnection, now},
    schema::auth_events,
    settings::SecretKey,
};

/// The longest user agent kept: enough to tell browsers apart.
const MAX_USER_AGENT_LEN: usize = 200;

macro_rules! event_kinds {
    ($($variant:ident => $name:literal, $words:literal;)*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventKind {
            $(
                #[doc = $words]
                $variant,
            )*
        }

        impl EventKind {
            /// Every kind, for the staff area's filter.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The name stored in the `kind` column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            /// What a person reads.
            pub fn describe(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $words,)*
                }
            }

            /// The kind stored as `name`.
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
            }
        }
    };
}

event_kinds! {
    Login => "login", "Signed in";
    LoginFailed => "login_failed", "Failed sign-in";
    Throttled => "throttled", "Sign-in refused: too many attempts";
    Logout => "logout", "Signed out";
    PasswordChanged => "password_changed", "Password changed";
    PasswordReset => "password_reset", "Password reset through a mailed link";
    PasswordResetSent => "password_reset_sent", "Password reset link sent by staff";
    TwoFactorReset => "two_factor_reset", "Two-factor sign-in reset by staff";
    EmailChangeRequested => "email_change_requested", "Change of e-mail address asked for";
    EmailConfirmed => "email_confirmed", "E-mail address confirmed";
    SessionRevoked => "session_revoked", "A session signed out";
    OtherSessionsRevoked => "other_sessions_revoked", "Every other session signed out";
    SignedOutEverywhere => "signed_out_everywhere", "Signed out everywhere by staff";
    UserActivated => "user_activated", "Account activated";
    UserDeactivated => "user_deactivated", "Account deactivated";
    PermissionGranted => "permission_granted", "Permission granted";
    PermissionRevoked => "permission_revoked", "Permission removed";
    GroupJoined => "group_joined", "Added to a group";
    GroupLeft => "group_left", "Removed from a group";
    GroupCreated => "group_created", "Group created";
    GroupPermissionGranted => "group_permission_granted", "Permission granted to a group";
    GroupPermissionRevoked => "group_permission_revoked", "Permission removed from a group";
    StaffGranted => "staff_granted", "Made staff";
    StaffRevoked => "staff_revoked", "No longer staff";
    SuperuserGranted => "superuser_granted", "Made superuser";
    SuperuserRevoked => "superuser_revoked", "No longer superuser";
}

/// Where a change came from: a request's client address and browser, or
/// the command line.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    ip: String,
    user_agent: String,
}

impl Origin {
    /// The client of `req` (its address as [`client_ip_text`] finds it).
    pub fn of(req: &HttpRequest) -> Self {
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(MAX_USER_AGENT_LEN)
            .collect();
        Self {
            ip: client_ip_text(req),
            user_agent,
        }
    }

    /// `porter` on the command line: no address, no browser.
    pub fn command_line() -> Self {
        Self {
            ip: String::new(),
            user_agent: "porter (command line)".into(),
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    kind: EventKind,
    user_id: Option<i32>,
    actor_id: Option<i32>,
    origin: Origin,
    detail: Value,
}

impl NewEvent {
    /// `kind` happened, coming from `origin`; about no one yet.
    pub fn new(kind: EventKind, origin: Origin) -> Self {
        Self {
            kind,
            user_id: None,
            actor_id: None,
            origin,
            detail: Value::Object(Default::default()),
        }
    }

    /// It concerns `user_id`'s account, and they did it themselves.
    pub fn by_user(self, user_id: i32) -> Self {
        self.about(user_id).actor(user_id)
    }

    /// It concerns `user_id`'s account.
    pub fn about(self, user_id: i32) -> Self {
        Self {
            user_id: Some(user_id),
            ..self
        }
    }

    /// `actor_id` did it (a staff member, for someone else's account).
    pub fn actor(self, actor_id: i32) -> Self {
        Self {
            actor_id: Some(actor_id),
            ..self
        }
    }

    /// With this detail: a small JSON object, never a secret.
    pub fn detail(self, detail: Value) -> Self {
        Self { detail, ..self }
    }
}

#[derive(Insertable)]
#[diesel(table_name = auth_events)]
struct EventRow<'a> {
    kind: &'a str,
    user_id: Option<i32>,
    actor_id: Option<i32>,
    ip: &'a str,
    user_agent: &'a str,
    created_at: PrimitiveDateTime,
    detail: String,
}

/// Writes `event`: call it with the connection of the transaction that
/// makes the change.
pub fn record(conn: &mut DbConnection, event: &NewEvent) -> QueryResult<()> {
    diesel::insert_into(auth_events::table)
        .values(EventRow {
            kind: event.kind.as_str(),
            user_id: event.user_id,
            actor_id: event.actor_id,
            ip: &event.origin.ip,
            user_agent: &event.origin.user_agent,
            created_at: now(),
            detail: event.detail.to_string(),
        })
        .execute(conn)
        .map(drop)
}

/// A recorded event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = auth_events)]
pub struct Event {
    /// Primary key.
    pub id: i32,
    /// [`EventKind::as_str`].
    pub kind: String,
    /// Whose account.
    pub user_id: Option<i32>,
    /// Who did it.
    pub actor_id: Option<i32>,
    /// The client's address.
    pub ip: String,
    /// The client's browser.
    pub user_agent: String,
    /// When (UTC).
    pub created_at: PrimitiveDateTime,
    /// A JSON object.
    pub detail: String,
}

impl Event {
    /// What happened, in words.
    pub fn describe(&self) -> &str {
        match EventKind::parse(&self.kind) {
            Some(kind) => kind.describe(),
            None => &self.kind,
        }
    }

    /// Whether someone other than the account's owner did it.
    pub fn by_someone_else(&self) -> bool {
        self.actor_id.is_some() && self.actor_id != self.user_id
    }
}

/// `user_id`'s latest `limit` events, newest first.
pub fn recent_for_user(
    conn: &mut DbConnection,
    user_id: i32,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    auth_events::table
        .filter(auth_events::user_id.eq(user_id))
        .order((auth_events::created_at.desc(), auth_events::id.desc()))
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
}

/// Which events the staff area shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only about this user, or whose failed sign-ins typed their name
    /// (`username_digest`).
    pub user: Option<(i32, String)>,
    /// Only of this kind.
    pub kind: Option<EventKind>,
}

/// Events matching `filter`, newest first, `limit` from `offset`.
pub fn search(
    conn: &mut DbConnection,
    filter: &EventFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let mut query = auth_events::table.into_boxed();
    if let Some((user_id, digest)) = &filter.user {
        query = query.filter(
            auth_events::user_id
                .eq(*user_id)
                .or(auth_events::actor_id.eq(*user_id))
                .or(auth_events::detail.eq(username_detail(digest).to_string())),
        );
    }
    if let Some(kind) = filter.kind {
        query = query.filter(auth_events::kind.eq(kind.as_str()));
    }
    query
        .order((auth_events::created_at.desc(), auth_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
}

/// The key of [`username_digest`], derived from `SECRET_KEY`.
pub fn username_digest_key(secret_key: &SecretKey) -> [u8; 32] {
    secret_key.derive(b"porter.auth.audit.username")
}

/// A username as the security log keeps a name typed at a failed sign-in:
/// an HMAC under `key` ([`username_digest_key`]) of its lookup key, so
/// that staff can find the attempts on a name they type, but the log never
/// holds what was typed (a password, sometimes, in the wrong field).
pub fn username_digest(key: &[u8; 32], username: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(username_key(username).as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The detail of a failed or refused sign-in: the typed name's digest only.
pub fn username_detail(digest: &str) -> Value {
    serde_json::json!({ "username_hmac": digest })
}

/// Deletes events recorded before `before`; returns how many.
pub fn prune(conn: &mut DbConnection, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(auth_events::table.filter(auth_events::created_at.lt(before))).execute(conn)
}

/// Deletes events older than `ttl`; returns how many.
pub fn prune_older_than(conn: &mut DbConnection, ttl: std::time::Duration) -> QueryResult<usize> {
    let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX);
    let before = now().checked_sub(ttl).unwrap_or(PrimitiveDateTime::MIN);
    prune(conn, before)
}
