//! `porter check --deploy`: Django's deployment checklist.
//!
//! Each check looks at one setting that is fine for development and unsafe
//! in production, and says in one line what is wrong and how to fix it.

use std::path::Path;

use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection, sql_types::Text};

use crate::{
    db::DatabaseUrl,
    settings::{SessionEngine, Settings},
};

/// One unsafe setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable id, as Django's `security.W018`.
    pub id: &'static str,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} Fix: {}", self.id, self.problem, self.fix)
    }
}

#[derive(QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

/// The SQLite file's journal mode, read without changing it, or `None`
/// when the file does not exist yet (Porter creates it in WAL mode).
fn sqlite_journal_mode(database_url: &str) -> Option<String> {
    let Ok(DatabaseUrl::Sqlite(path)) = DatabaseUrl::parse(database_url) else {
        return None;
    };
    if !Path::new(&path).exists() {
        return None;
    }
    let mut conn = SqliteConnection::establish(&path).ok()?;
    diesel::sql_query("PRAGMA journal_mode")
        .get_result::<JournalMode>(&mut conn)
        .ok()
        .map(|mode| mode.journal_mode.to_lowercase())
}

/// A secret anyone could guess: few distinct characters, or a placeholder.
fn looks_weak(secret: &[u8]) -> bool {
    let distinct = secret
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let text = String::from_utf8_lossy(secret).to_lowercase();
    distinct < 10
        || ["change", "secret", "insecure", "example", "test"]
            .iter()
            .any(|w| text.contains(w))
}

/// Every deployment problem with `settings`.
pub fn deploy_checks(settings: &Settings) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |id, problem: String, fix| findings.push(Finding { id, problem, fix });

    if settings.debug {
        add(
            "porter.W001",
            "DEBUG is on: the secret key may be a generated development key and cookies may travel over plain http.".into(),
            "set DEBUG=false.",
        );
    }
    if !settings.cookie_secure {
        add(
            "porter.W002",
            "COOKIE_SECURE is off: session and CSRF cookies can be sent over plain http and stolen on the network.".into(),
            "set COOKIE_SECURE=true and serve the site over HTTPS.",
        );
    }
    if looks_weak(settings.secret_key.expose()) {
        add(
            "porter.W003",
            "SECRET_KEY looks guessable (few distinct characters, or a placeholder word).".into(),
            "generate one with `porter secret generate` and keep it out of version control.",
        );
    }
    if let Some(mode) = sqlite_journal_mode(&settings.database_url)
        && mode != "wal"
    {
        add(
            "porter.W004",
            format!(
                "the SQLite database is in {mode} journal mode, not WAL: concurrent logins will fail with 'database is locked'."
            ),
            "run `porter migrate` once (Porter switches the file to WAL), or use PostgreSQL.",
        );
    }
    if settings.session_engine == SessionEngine::Cookie {
        add(
            "porter.W005",
            "SESSION_ENGINE=cookie: sessions live only in browsers, so no instance can list them or end one alone, and a cookie copied before logout works until \"sign out everywhere\", a password change or SESSION_MAX_AGE ends it.".into(),
            "use SESSION_ENGINE=db (or cached_db, redis) when users must see their sessions and sign one out.",
        );
    }
    let host = settings.bind.rsplit_once(':').map_or("", |(host, _)| host);
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
    if !loopback {
        add(
            "porter.W006",
            format!(
                "BIND={} listens beyond this machine, but Porter speaks plain http: nothing encrypts the traffic.",
                settings.bind
            ),
            "bind to 127.0.0.1 and put an HTTPS reverse proxy in front (and set TRUST_X_FORWARDED_FOR=true).",
        );
    }
    if settings.argon2.m_cost() < argon2::Params::DEFAULT_M_COST
        || settings.argon2.t_cost() < argon2::Params::DEFAULT_T_COST
    {
        add(
            "porter.W007",
            "the argon2 cost (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS) is below OWASP's minimum for argon2id.".into(),
            "use at least ARGON2_MEMORY_KIB=19456 and ARGON2_ITERATIONS=2 (the defaults).",
        );
    }
    match &settings.site_url {
        None => add(
            "porter.W008",
            "SITE_URL is unset: the CSRF origin check trusts the Host header each request brings, and links in mail point at the BIND address."
                .into(),
            "set SITE_URL to the site's public https:// address.",
        ),
        Some(site) if !site.is_https() => add(
            "porter.W008",
            format!(
                "SITE_URL={site} is not https: the site is meant to be served over plain http."
            ),
            "set SITE_URL to the site's public https:// address.",
        ),
        Some(_) => {}
    }
    if !settings.debug && settings.email_url.stays_local() {
        add(
            "porter.W009",
            format!(
                "EMAIL_URL={} keeps mail on this machine: password reset links and notices reach nobody.",
                settings.email_url.describe()
            ),
            "set EMAIL_URL to your mail server (smtp+starttls://user:pass@host:587 or smtps://…) and check it with `porter sendtestemail ADDRESS`.",
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_spotted() {
        assert!(looks_weak(&[b'a'; 64]));
        assert!(looks_weak(
            b"please-change-me-please-change-me-please-change-me-please-change-me"
        ));
        assert!(!looks_weak(
            b"8d0f6c0b5a4e3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6"
        ));
    }
}
