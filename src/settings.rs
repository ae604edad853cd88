//! Settings: Django's `settings.py`, read from the environment.
//!
//! Every value comes from an environment variable (a `.env` file, when
//! present, is loaded into the environment first). Each one is parsed into a
//! typed field here, once, at start-up; a bad value stops Porter with one line
//! that names the setting and says what is wrong with it.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{db::DatabaseUrl, mail::EmailUrl, origin::Origin};

/// How long a session lives without activity: a day.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a "remember me" session lives: two weeks, as Django's
/// `SESSION_COOKIE_AGE`.
pub const DEFAULT_SESSION_REMEMBER_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// How long a password reset link works: an hour.
pub const DEFAULT_PASSWORD_RESET_TTL: Duration = Duration::from_secs(60 * 60);

/// How long a sign-in counts as recent for sensitive actions: ten minutes.
pub const DEFAULT_SUDO_TTL: Duration = Duration::from_secs(10 * 60);

/// The sender of Porter's mail when `EMAIL_FROM` is unset: Django's
/// `DEFAULT_FROM_EMAIL`.
pub const DEFAULT_EMAIL_FROM: &str = "Porter <webmaster@localhost>";

/// Where a debug server keeps the secret key it generated for itself.
pub const DEBUG_SECRET_KEY_FILE: &str = ".porter-secret-key";

/// The minimum length of `SECRET_KEY`, in bytes. Cookie signing and
/// encryption keys are derived from it.
pub const MIN_SECRET_KEY_LEN: usize = 64;

/// A setting that could not be read.
#[derive(Debug, Error)]
#[error("{setting}: {problem}")]
pub struct SettingsError {
    /// The environment variable at fault.
    pub setting: &'static str,
    /// What is wrong with it, in words an operator can act on.
    pub problem: String,
}

impl SettingsError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

/// Which store keeps session data: Django's `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEngine {
    /// A row per session in the database (the default).
    Db,
    /// A key per session in Redis, for many instances.
    Redis,
    /// All session data in a signed, encrypted cookie; nothing server-side.
    Cookie,
}

impl SessionEngine {
    /// The value of `SESSION_ENGINE` that selects this engine.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Db => "db",
            Self::Redis => "redis",
            Self::Cookie => "cookie",
        }
    }
}

/// The secret that signs cookies and session auth hashes.
///
/// Its `Debug` output is redacted so that it can never reach a log line.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret, checking its length.
    pub fn new(value: String) -> Result<Self, SettingsError> {
        if value.len() < MIN_SECRET_KEY_LEN {
            return Err(SettingsError::new(
                "SECRET_KEY",
                format!(
                    "must be at least {MIN_SECRET_KEY_LEN} bytes long (it is {}); \
                     generate one with `openssl rand -hex 64`",
                    value.len()
                ),
            ));
        }
        Ok(Self(value))
    }

    /// A fresh random key, hex-encoded.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 64];
        rand::fill(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// A key for one purpose (`b"porter.auth.device_cookie"`, …) derived
    /// from this secret: SHA-256 of the purpose, then the secret. What one
    /// part of Porter signs can then never pass for another's signature.
    /// (Changing a purpose's bytes invalidates what was signed with it.)
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(purpose);
        digest.update(&self.0);
        digest.finalize().into()
    }

    /// `purpose`'s key under `current`, then under each of `fallbacks`: the
    /// first signs, all are accepted (`SECRET_KEY_FALLBACKS`).
    pub fn derive_all(current: &Self, fallbacks: &[Self], purpose: &[u8]) -> Vec<[u8; 32]> {
        std::iter::once(current)
            .chain(fallbacks)
            .map(|secret| secret.derive(purpose))
            .collect()
    }

    /// The raw secret, for deriving keys from it.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Porter's typed settings. `Debug` hides the secret keys and any password
/// in `DATABASE_URL` or `REDIS_URL`.
#[derive(Clone)]
pub struct Settings {
    /// `DEBUG`: development conveniences (a generated secret key, cookies
    /// over plain http). Defaults to on in debug builds, off in release ones.
    pub debug: bool,
    /// `DATABASE_URL`: where users and sessions live.
    pub database_url: String,
    /// `SESSION_ENGINE`: `db`, `redis` or `cookie`.
    pub session_engine: SessionEngine,
    /// `REDIS_URL`: the Redis server of the `redis` engine.
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX`: prepended to every Redis key Porter writes.
    pub redis_key_prefix: String,
    /// `SECRET_KEY`: signs cookies and session auth hashes.
    pub secret_key: SecretKey,
    /// `SECRET_KEY_FALLBACKS`: earlier keys, comma-separated, still accepted
    /// (never used to sign) so that rotating `SECRET_KEY` signs nobody out.
    pub secret_key_fallbacks: Vec<SecretKey>,
    /// `BIND`: the `host:port` the server listens on.
    pub bind: String,
    /// `COOKIE_SECURE`: send cookies over HTTPS only. Defaults to `!debug`.
    pub cookie_secure: bool,
    /// `SESSION_TTL`: how long a session lives without activity.
    pub session_ttl: Duration,
    /// `SESSION_REMEMBER_TTL`: how long a "remember me" session lives.
    pub session_remember_ttl: Duration,
    /// `TRUST_X_FORWARDED_FOR`: how many reverse proxies in front of Porter
    /// append to `X-Forwarded-For` (`false` is 0, `true` is 1); the client
    /// address is the entry the outermost one wrote. `0` uses the peer.
    pub trusted_proxies: usize,
    /// `SITE_URL`: the public origin (`https://example.com`), what a POST's
    /// `Origin` must name. Required when `DEBUG` is off; without it, debug
    /// takes the request's own `Host`.
    pub site_url: Option<Origin>,
    /// `TRUSTED_ORIGINS`: further origins, comma-separated, whose POSTs are
    /// accepted (Django's `CSRF_TRUSTED_ORIGINS`).
    pub trusted_origins: Vec<Origin>,
    /// `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM`: the
    /// cost of new password hashes (defaults: OWASP's argon2id advice).
    pub argon2: argon2::Params,
    /// `HASHING_QUEUE`: how many password checks and hashes may wait for a
    /// hashing thread; past it, requests get `503` at once. `None`: 16 per
    /// hashing thread.
    pub hashing_queue: Option<usize>,
    /// `SERVER_TIMING`: report per-request timings in a `Server-Timing`
    /// header. Defaults to `debug`: timings can leak what a page did.
    pub server_timing: bool,
    /// `EMAIL_URL`: where mail goes (`console:`, the default, prints it).
    pub email_url: EmailUrl,
    /// `EMAIL_FROM`: the sender of Porter's mail.
    pub email_from: lettre::message::Mailbox,
    /// `PASSWORD_RESET_TTL`: how long a password reset link works.
    pub password_reset_ttl: Duration,
    /// `SUDO_TTL`: how long after signing in (or confirming it at `/sudo`)
    /// sensitive actions go through without asking again.
    pub sudo_ttl: Duration,
    /// `RUST_LOG`: the tracing filter.
    pub rust_log: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("debug", &self.debug)
            .field("database_url", &DatabaseUrl::parse(&self.database_url).ok())
            .field("session_engine", &self.session_engine)
            .field(
                "redis_url",
                &if self.redis_url.contains('@') {
                    "[redacted]"
                } else {
                    self.redis_url.as_str()
                },
            )
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("secret_key", &self.secret_key)
            .field("secret_key_fallbacks", &self.secret_key_fallbacks.len())
            .field("bind", &self.bind)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_ttl", &self.session_ttl)
            .field("session_remember_ttl", &self.session_remember_ttl)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("site_url", &self.site_url)
            .field("trusted_origins", &self.trusted_origins)
            .field("argon2", &self.argon2)
            .field("hashing_queue", &self.hashing_queue)
            .field("server_timing", &self.server_timing)
            .field("email_url", &self.email_url)
            .field("email_from", &self.email_from.to_string())
            .field("password_reset_ttl", &self.password_reset_ttl)
            .field("sudo_ttl", &self.sudo_ttl)
            .field("rust_log", &self.rust_log)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the settings from the process environment, after loading `.env`
    /// when there is one.
    pub fn from_env() -> Result<Self, SettingsError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(SettingsError::new(".env", err.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok(), Path::new("."))
    }

    /// Reads the settings through `lookup`, which returns the value of a
    /// variable if set. Tests pass a map here instead of touching the
    /// process environment. `state_dir` is where a debug server may keep its
    /// generated secret key.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        state_dir: &Path,
    ) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let debug = match get("DEBUG") {
            Some(value) => parse_bool("DEBUG", &value)?,
            None => cfg!(debug_assertions),
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://porter.db".into());
        check_database_url(&database_url)?;

        let session_engine = match get("SESSION_ENGINE").as_deref().map(str::trim) {
            None | Some("db") => SessionEngine::Db,
            Some("redis") => SessionEngine::Redis,
            Some("cookie") => SessionEngine::Cookie,
            Some(other) => {
                return Err(SettingsError::new(
                    "SESSION_ENGINE",
                    format!("unknown engine {other:?}; expected db, redis or cookie"),
                ));
            }
        };

        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(SettingsError::new(
                "REDIS_URL",
                "must start with redis:// (or rediss:// for TLS)",
            ));
        }
        let redis_key_prefix = get("REDIS_KEY_PREFIX").unwrap_or_else(|| "porter:session:".into());

        let secret_key = match get("SECRET_KEY") {
            Some(value) => SecretKey::new(value)?,
            None if debug => debug_secret_key(&state_dir.join(DEBUG_SECRET_KEY_FILE))?,
            None => {
                return Err(SettingsError::new(
                    "SECRET_KEY",
                    "is required when DEBUG is off; generate one with `openssl rand -hex 64`",
                ));
            }
        };

        let secret_key_fallbacks = get("SECRET_KEY_FALLBACKS")
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(|key| {
                        SecretKey::new(key.to_owned()).map_err(|err| SettingsError {
                            setting: "SECRET_KEY_FALLBACKS",
                            ..err
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let bind = get("BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        check_bind(&bind)?;

        let cookie_secure = match get("COOKIE_SECURE") {
            Some(value) => parse_bool("COOKIE_SECURE", &value)?,
            None => !debug,
        };
        let session_ttl = match get("SESSION_TTL") {
            Some(value) => parse_duration("SESSION_TTL", &value)?,
            None => DEFAULT_SESSION_TTL,
        };
        let session_remember_ttl = match get("SESSION_REMEMBER_TTL") {
            Some(value) => parse_duration("SESSION_REMEMBER_TTL", &value)?,
            None => DEFAULT_SESSION_REMEMBER_TTL,
        };
        let trusted_proxies = match get("TRUST_X_FORWARDED_FOR") {
            Some(value) => parse_proxy_count(&value)?,
            None => 0,
        };
        let site_url = match get("SITE_URL") {
            Some(value) => Some(parse_origin("SITE_URL", &value)?),
            None if debug => None,
            None => {
                return Err(SettingsError::new(
                    "SITE_URL",
                    "is required when DEBUG is off: the public address of the site, \
                     for example https://example.com",
                ));
            }
        };
        let trusted_origins = get("TRUSTED_ORIGINS")
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|origin| !origin.is_empty())
                    .map(|origin| parse_origin("TRUSTED_ORIGINS", origin))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let number = |name: &'static str, default: u32| -> Result<u32, SettingsError> {
            get(name).map_or(Ok(default), |value| {
                value.trim().parse().map_err(|_| {
                    SettingsError::new(name, format!("{value:?} is not a whole number"))
                })
            })
        };
        let memory = number("ARGON2_MEMORY_KIB", argon2::Params::DEFAULT_M_COST)?;
        let iterations = number("ARGON2_ITERATIONS", argon2::Params::DEFAULT_T_COST)?;
        let parallelism = number("ARGON2_PARALLELISM", argon2::Params::DEFAULT_P_COST)?;
        let argon2 = argon2::Params::new(memory, iterations, parallelism, None).map_err(|err| {
            let setting = match err {
                argon2::Error::TimeTooSmall => "ARGON2_ITERATIONS",
                argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => {
                    "ARGON2_PARALLELISM"
                }
                _ => "ARGON2_MEMORY_KIB",
            };
            SettingsError::new(setting, format!("is out of range for argon2 ({err})"))
        })?;
        let hashing_queue = get("HASHING_QUEUE")
            .map(|value| match value.trim().parse::<usize>() {
                Ok(length) if length > 0 => Ok(length),
                _ => Err(SettingsError::new(
                    "HASHING_QUEUE",
                    format!("{value:?} is not a whole number above zero"),
                )),
            })
            .transpose()?;
        let server_timing = match get("SERVER_TIMING") {
            Some(value) => parse_bool("SERVER_TIMING", &value)?,
            None => debug,
        };
        let email_url = match get("EMAIL_URL") {
            Some(value) => EmailUrl::parse(&value)
                .map_err(|problem| SettingsError::new("EMAIL_URL", problem))?,
            None => EmailUrl::Console,
        };
        let email_from = crate::mail::backend::parse_from(
            &get("EMAIL_FROM").unwrap_or_else(|| DEFAULT_EMAIL_FROM.into()),
        )
        .map_err(|problem| SettingsError::new("EMAIL_FROM", problem))?;
        let password_reset_ttl = match get("PASSWORD_RESET_TTL") {
            Some(value) => parse_duration("PASSWORD_RESET_TTL", &value)?,
            None => DEFAULT_PASSWORD_RESET_TTL,
        };
        let sudo_ttl = match get("SUDO_TTL") {
            Some(value) => parse_duration("SUDO_TTL", &value)?,
            None => DEFAULT_SUDO_TTL,
        };
        // actix-session logs every bad cookie itself; Porter reports them as
        // rate-limited security events instead (see `sessions::cookies`).
        let rust_log = get("RUST_LOG").unwrap_or_else(|| "info,actix_session=error".into());

        Ok(Self {
            debug,
            database_url,
            session_engine,
            redis_url,
            redis_key_prefix,
            secret_key,
            secret_key_fallbacks,
            bind,
            cookie_secure,
            session_ttl,
            session_remember_ttl,
            trusted_proxies,
            site_url,
            trusted_origins,
            argon2,
            hashing_queue,
            server_timing,
            email_url,
            email_from,
            password_reset_ttl,
            sudo_ttl,
            rust_log,
        })
    }

    /// The site's public address, for links in mail: `SITE_URL`, or in
    /// debug without it the address the server listens on (`localhost`
    /// for 127.0.0.1, as `porter serve` prints it). Never the `Host` of a
    /// request, which the client chooses.
    pub fn public_url(&self) -> String {
        if let Some(site) = &self.site_url {
            return site.to_string();
        }
        match self.bind.rsplit_once(':') {
            Some(("127.0.0.1" | "0.0.0.0" | "[::]" | "[::1]", port)) | Some(("", port)) => {
                format!("http://localhost:{port}")
            }
            Some((host, port)) => format!("http://{host}:{port}"),
            None => format!("http://{}", self.bind),
        }
    }
}

fn parse_bool(setting: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::new(
            setting,
            format!("{value:?} is not a boolean; use true or false"),
        )),
    }
}

/// `TRUST_X_FORWARDED_FOR`: a boolean (`true` is one proxy) or a count.
fn parse_proxy_count(value: &str) -> Result<usize, SettingsError> {
    if let Ok(count) = value.trim().parse::<usize>() {
        return Ok(count);
    }
    parse_bool("TRUST_X_FORWARDED_FOR", value)
        .map(usize::from)
        .map_err(|_| {
            SettingsError::new(
                "TRUST_X_FORWARDED_FOR",
                format!(
                    "{value:?} is neither true, false nor a number of proxies \
                     (how many reverse proxies append to X-Forwarded-For)"
                ),
            )
        })
}

fn parse_origin(setting: &'static str, value: &str) -> Result<Origin, SettingsError> {
    Origin::parse(value.trim()).ok_or_else(|| {
        SettingsError::new(
            setting,
            format!(
                "{value:?} is not an absolute http or https URL with a host \
                 (for example https://example.com)"
            ),
        )
    })
}

/// Parses a duration with `humantime` (`90s`, `60m`, `12h`, `14d`,
/// `1h 30m`), or a bare number of seconds (`3600`).
fn parse_duration(setting: &'static str, value: &str) -> Result<Duration, SettingsError> {
    let value = value.trim();
    let parsed = match value.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(value),
    };
    let duration = parsed.map_err(|_| {
        SettingsError::new(
            setting,
            format!(
                "{value:?} is not a duration; use seconds (3600) or a number with a unit (90s, 60m, 12h, 14d)"
            ),
        )
    })?;
    if duration.is_zero() {
        return Err(SettingsError::new(setting, "must be longer than zero"));
    }
    // Cookie and database expiry times must stay representable.
    if duration > Duration::from_secs(10 * 365 * 24 * 60 * 60) {
        return Err(SettingsError::new(setting, "must be at most ten years"));
    }
    Ok(duration)
}

fn check_database_url(url: &str) -> Result<(), SettingsError> {
    DatabaseUrl::parse(url)
        .map(drop)
        .map_err(|problem| SettingsError::new("DATABASE_URL", problem))
}

fn check_bind(bind: &str) -> Result<(), SettingsError> {
    let port_ok = bind
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if port_ok {
        Ok(())
    } else {
        Err(SettingsError::new(
            "BIND",
            format!("{bind:?} is not host:port (for example 127.0.0.1:8080)"),
        ))
    }
}

/// In debug mode a missing `SECRET_KEY` is generated once and kept in a
/// local file, so that sessions survive a restart of the development server.
fn debug_secret_key(path: &PathBuf) -> Result<SecretKey, SettingsError> {
    let problem = |err: std::io::Error| {
        SettingsError::new(
            "SECRET_KEY",
            format!("is unset and {} could not be used: {err}", path.display()),
        )
    };
    match std::fs::read_to_string(path) {
        Ok(existing) => SecretKey::new(existing.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            std::fs::write(path, &key.0).map_err(problem)?;
            Ok(key)
        }
        Err(err) => Err(problem(err)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().expect("a temporary directory");
        Settings::from_lookup(|name| vars.get(name).cloned(), dir.path())
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_are_sensible() {
        let s = settings(&[
            ("DEBUG", "false"),
            ("SECRET_KEY", KEY),
            ("SITE_URL", "https://example.com"),
        ])
        .expect("valid");
        assert_eq!(s.database_url, "sqlite://porter.db");
        assert_eq!(s.session_engine, SessionEngine::Db);
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(s.cookie_secure, "cookies are Secure outside debug");
        assert_eq!(s.session_ttl, DEFAULT_SESSION_TTL);
        assert!(!s.server_timing, "no timings outside debug");
        assert_eq!(s.trusted_proxies, 0, "X-Forwarded-For is not trusted");
        assert!(s.trusted_origins.is_empty());
    }

    #[test]
    fn a_missing_site_url_outside_debug_names_the_setting() {
        let err = settings(&[("DEBUG", "false"), ("SECRET_KEY", KEY)]).expect_err("must fail");
        assert_eq!(err.setting, "SITE_URL");
        let debug = settings(&[("DEBUG", "true"), ("SECRET_KEY", KEY)]).expect("valid");
        assert_eq!(debug.site_url, None, "debug uses the request's own host");
    }

    #[test]
    fn site_url_and_trusted_origins_are_origins() {
        let s = settings(&[
            ("SECRET_KEY", KEY),
            ("SITE_URL", "https://Example.com:443/"),
            (
                "TRUSTED_ORIGINS",
                "https://admin.example.com, http://localhost:3000",
            ),
        ])
        .expect("valid");
        assert_eq!(s.site_url, Origin::parse("https://example.com"));
        let trusted: Vec<String> = s.trusted_origins.iter().map(ToString::to_string).collect();
        assert_eq!(
            trusted,
            ["https://admin.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn trust_x_forwarded_for_takes_a_boolean_or_a_number_of_proxies() {
        for (value, proxies) in [
            ("false", 0),
            ("true", 1),
            ("off", 0),
            ("0", 0),
            ("1", 1),
            ("2", 2),
            (" 3 ", 3),
        ] {
            let s =
                settings(&[("SECRET_KEY", KEY), ("TRUST_X_FORWARDED_FOR", value)]).expect(value);
            assert_eq!(s.trusted_proxies, proxies, "{value}");
        }
    }

    #[test]
    fn a_missing_secret_key_outside_debug_names_the_setting() {
        let err = settings(&[("DEBUG", "0")]).expect_err("must fail");
        assert_eq!(err.setting, "SECRET_KEY");
    }

    #[test]
    fn a_short_secret_key_is_refused() {
        let err = settings(&[("SECRET_KEY", "short")]).expect_err("must fail");
        assert!(
            err.to_string()
                .starts_with("SECRET_KEY: must be at least 64 bytes")
        );
    }

    #[test]
    fn debug_generates_a_secret_key_and_keeps_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let lookup = |name: &str| (name == "DEBUG").then(|| "true".to_string());
        let first = Settings::from_lookup(lookup, dir.path()).expect("valid");
        let second = Settings::from_lookup(lookup, dir.path()).expect("valid");
        assert_eq!(first.secret_key.expose(), second.secret_key.expose());
        assert!(!first.cookie_secure, "debug serves cookies over plain http");
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("SESSION_ENGINE", "memcached"),
            ("COOKIE_SECURE", "maybe"),
            ("SESSION_TTL", "forever"),
            ("SESSION_TTL", "0"),
            ("SESSION_REMEMBER_TTL", "a fortnight"),
            ("BIND", "8080"),
            ("DATABASE_URL", "mysql://localhost/porter"),
            ("REDIS_URL", "localhost:6379"),
            ("DEBUG", "2"),
            ("SERVER_TIMING", "sometimes"),
            ("HASHING_QUEUE", "0"),
            ("ARGON2_ITERATIONS", "0"),
            ("ARGON2_MEMORY_KIB", "lots"),
            ("SECRET_KEY_FALLBACKS", "too-short"),
            ("TRUST_X_FORWARDED_FOR", "maybe"),
            ("TRUST_X_FORWARDED_FOR", "-1"),
            ("TRUST_X_FORWARDED_FOR", "1.5"),
            ("SITE_URL", "example.com"),
            ("SITE_URL", "ftp://example.com"),
            ("SITE_URL", "https://"),
            ("TRUSTED_ORIGINS", "https://ok.example, not-a-url"),
            ("EMAIL_URL", "imap://mail.example.com"),
            ("EMAIL_URL", "file://relative/dir"),
            ("EMAIL_FROM", "not an address"),
            ("PASSWORD_RESET_TTL", "soon"),
            ("SUDO_TTL", "a while"),
        ] {
            let err = settings(&[("SECRET_KEY", KEY), (name, value)]).expect_err(value);
            assert_eq!(err.setting, name, "{value}");
        }
    }

    #[test]
    fn mail_links_use_site_url_or_in_debug_the_bound_address() {
        let s =
            settings(&[("SECRET_KEY", KEY), ("SITE_URL", "https://example.com")]).expect("valid");
        assert_eq!(s.public_url(), "https://example.com");
        let debug = settings(&[
            ("SECRET_KEY", KEY),
            ("DEBUG", "true"),
            ("BIND", "127.0.0.1:9000"),
        ])
        .expect("valid");
        assert_eq!(debug.public_url(), "http://localhost:9000");
        assert_eq!(debug.email_url, EmailUrl::Console, "console is the default");
        assert_eq!(debug.password_reset_ttl, DEFAULT_PASSWORD_RESET_TTL);
        assert_eq!(debug.sudo_ttl, DEFAULT_SUDO_TTL);
    }

    #[test]
    fn durations_take_units() {
        let s = settings(&[("SECRET_KEY", KEY), ("SESSION_TTL", "2h")]).expect("valid");
        assert_eq!(s.session_ttl, Duration::from_secs(7200));
        let s = settings(&[("SECRET_KEY", KEY), ("SESSION_TTL", "1h 30m")]).expect("valid");
        assert_eq!(s.session_ttl, Duration::from_secs(5400));
        let s = settings(&[("SECRET_KEY", KEY), ("SESSION_TTL", "3600")]).expect("valid");
        assert_eq!(s.session_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn the_secret_key_never_shows_in_debug_output() {
        let s = settings(&[("SECRET_KEY", KEY)]).expect("valid");
        assert!(!format!("{s:?}").contains(KEY));
    }
}
