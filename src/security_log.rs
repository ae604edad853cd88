//! Security events: what an attacker does (tampered cookies, forged POSTs),
//! logged on `porter::security`, rate-limited so that the log cannot be
//! flooded. A leaf: any layer may report an event.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// At most one security event of each text is logged per this period; the
/// next one says how many were suppressed meanwhile.
const SECURITY_EVENT_PERIOD: Duration = Duration::from_secs(10);

/// Logs a security event (`target: "porter::security"`, level `warn`),
/// rate-limited so that an attacker cannot flood the log.
pub fn security_event(what: &'static str) {
    security_event_because(what, None);
}

/// [`security_event`] with the reason it happened (logged as `reason`);
/// each (event, reason) pair is rate-limited on its own.
pub fn security_event_because(what: &'static str, reason: Option<&'static str>) {
    type Seen = HashMap<(&'static str, Option<&'static str>), (Instant, u64)>;
    static LIMITER: Mutex<Option<Seen>> = Mutex::new(None);
    let Ok(mut guard) = LIMITER.lock() else {
        return;
    };
    let seen = guard.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match seen.get_mut(&(what, reason)) {
        Some((last, suppressed)) if now.duration_since(*last) < SECURITY_EVENT_PERIOD => {
            *suppressed += 1;
        }
        entry => {
            let suppressed = entry.map_or(0, |(_, suppressed)| *suppressed);
            seen.insert((what, reason), (now, 0));
            match reason {
                Some(reason) => tracing::warn!(
                    target: "porter::security",
                    suppressed,
                    reason,
                    "security event: {what}"
                ),
                None => {
                    tracing::warn!(target: "porter::security", suppressed, "security event: {what}")
                }
            }
        }
    }
}
