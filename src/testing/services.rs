//! The external services some tests need: PostgreSQL and Redis.
//!
//! Their URLs come from `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`). A test whose service is absent
//! reports itself skipped, except under `CI=true`, where it fails.

use std::{io::Write, net::TcpStream, time::Duration};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// The maintenance URL of the PostgreSQL server tests create databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The `host:port` a service URL names, `default_port` when it names none:
/// what a [`TcpProxy`](super::proxy::TcpProxy) forwards to.
pub fn address_of(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    }
}

fn reachable(url: &str, default_port: u16) -> bool {
    use std::net::ToSocketAddrs;
    address_of(url, default_port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .is_some_and(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok())
}

/// Whether `service` can be used. Under `CI=true` an absent service fails
/// the test; elsewhere the test says it was skipped.
pub fn available(service: &str) -> bool {
    let up = match service {
        "postgres" => reachable(&postgres_admin_url(), 5432),
        "redis" => reachable(&redis_url(), 6379),
        other => panic!("unknown service {other}"),
    };
    if up {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{service} is required under CI=true but is not reachable");
    }
    skipped(&format!("{service} is not reachable"));
    false
}

/// Says that a test was skipped, and why, where `cargo test` shows it:
/// libtest captures `eprintln!` from passing tests, so the notice is
/// written to the process's standard error directly.
pub fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Whether the suite runs on PostgreSQL (`PORTER_TEST_DATABASE=postgres`).
pub fn suite_on_postgres() -> bool {
    std::env::var("PORTER_TEST_DATABASE").is_ok_and(|db| db == "postgres")
}

fn unique_name(prefix: &str) -> String {
    let mut random = [0u8; 6];
    rand::fill(&mut random);
    format!("{prefix}_{}", hex::encode(random))
}

/// A PostgreSQL database of the test's own, dropped when it goes.
pub struct PostgresDatabase {
    name: String,
    /// The URL the app connects to.
    pub url: String,
}

impl PostgresDatabase {
    /// Creates a uniquely named database.
    pub fn create() -> Self {
        let admin = postgres_admin_url();
        let name = unique_name("porter_test");
        crate::db::prepare_tls();
        let mut conn = PgConnection::establish(&admin).expect("connect to PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create a test database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        crate::db::prepare_tls();
        if let Ok(mut conn) = PgConnection::establish(&postgres_admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// A Redis key prefix of the test's own; its keys are deleted when it goes.
pub struct RedisNamespace {
    /// The prefix, for `REDIS_KEY_PREFIX`.
    pub prefix: String,
}

impl Default for RedisNamespace {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisNamespace {
    /// A fresh prefix.
    pub fn new() -> Self {
        Self {
            prefix: format!("{}:", unique_name("porter_test")),
        }
    }

    /// How many keys live under the prefix.
    pub fn key_count(&self) -> usize {
        self.keys().len()
    }

    /// The seconds until `key` expires: `-1` when it never does, `-2`
    /// when there is no such key (Redis's `TTL`).
    pub fn ttl(&self, key: &str) -> i64 {
        redis::Client::open(redis_url())
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| redis::cmd("TTL").arg(key).query(&mut conn))
            .unwrap_or(-2)
    }

    /// The keys of sessions under the prefix (not the per-user indexes).
    pub fn session_keys(&self) -> Vec<String> {
        let indexes = format!("{}user:", self.prefix);
        self.keys()
            .into_iter()
            .filter(|key| !key.starts_with(&indexes))
            .collect()
    }

    /// The members of user `user_id`'s session index: key hashes.
    pub fn index_members(&self, user_id: i32) -> Vec<String> {
        redis::Client::open(redis_url())
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| {
                redis::cmd("ZRANGE")
                    .arg(format!("{}user:{user_id}", self.prefix))
                    .arg(0)
                    .arg(-1)
                    .query(&mut conn)
            })
            .unwrap_or_default()
    }

    /// Deletes `key`, as an eviction or a restart of Redis would.
    pub fn delete(&self, key: &str) {
        if let Ok(mut conn) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(key).query(&mut conn);
        }
    }

    /// Every key under the prefix.
    pub fn keys(&self) -> Vec<String> {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return Vec::new();
        };
        let Ok(mut conn) = client.get_connection() else {
            return Vec::new();
        };
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default()
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        if let Ok(mut conn) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
