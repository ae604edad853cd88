//! "Last seen", cheaply: a session records when it was last used, at most
//! once a minute, so that "your sessions" can show it without a database
//! write on every request.

use std::time::Duration;

use actix_session::Session;
use actix_web::{HttpRequest, http::header};

use super::unix_now;
use crate::client_ip::client_ip_text;

/// The session key holding the last activity, in Unix seconds.
pub const LAST_SEEN_KEY: &str = "_last_seen";

/// The session key holding the browser's `User-Agent`, noted once.
pub const USER_AGENT_KEY: &str = "_user_agent";
/// The session key holding the client's address, noted once (see
/// [`client_ip`](crate::client_ip)).
pub const IP_KEY: &str = "_ip";
const MAX_USER_AGENT_LEN: usize = 256;

/// How stale "last seen" may get before it is written again.
pub const LAST_SEEN_GRANULARITY: Duration = Duration::from_secs(60);

/// Refreshes `_last_seen` on a session with data when it is more than a
/// minute old, and notes the browser and address the first time. A session
/// without data is left alone: this never creates one. Called by the
/// session layer just before the session is saved.
pub fn note_activity(session: &Session, request: &HttpRequest) {
    if session.entries().is_empty() {
        return;
    }
    let now = unix_now();
    let last_seen = session.get::<i64>(LAST_SEEN_KEY).ok().flatten();
    let stale = last_seen.is_none_or(|seen| {
        Duration::from_secs(u64::try_from(now - seen).unwrap_or(0)) >= LAST_SEEN_GRANULARITY
    });
    if !stale {
        return;
    }
    // Also moves the expiry forward: an idle timeout, a minute coarse.
    let _ = session.insert(LAST_SEEN_KEY, now);
    if !session.contains_key(USER_AGENT_KEY) {
        let user_agent = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("unknown");
        let user_agent: String = user_agent.chars().take(MAX_USER_AGENT_LEN).collect();
        let _ = session.insert(USER_AGENT_KEY, user_agent);
        let _ = session.insert(IP_KEY, client_ip_text(request));
    }
}
