//! Settings: Django's `settings.py`, read from the environment.
//!
//! Every value comes from an environment variable (a `.env` file, when
//! present, is loaded into the environment first). Each setting is declared
//! once, in the `settings!` block below: its field, its variable, its
//! default, its parser and its documentation. From that one declaration
//! come the typed field the rest of Porter reads, the parsing (a bad value
//! stops Porter with one line that names the setting and says what is wrong
//! with it), the `Debug` output (secrets redacted) and [`SETTINGS`], which a
//! test holds the README's settings table and `.env.example` to.
//!
//! To add a setting, add one declaration (a `///` line, a field, its
//! variable, `default:` and `parse:`), then run
//! `cargo test --test api settings_documented`: it prints the README row
//! and `.env.example` lines to paste.

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{db::DatabaseUrl, mail::EmailUrl, origin::Origin};

/// The absolute lifetime of a session from its login when `SESSION_MAX_AGE`
/// is unset: thirty days, whatever its activity or "remember me".
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

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

/// A setting as the README and `.env.example` document it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDoc {
    /// The environment variable.
    pub name: &'static str,
    /// What Porter uses when the variable is unset or empty.
    pub default: SettingDefault,
    /// What the setting does: its `///` lines, joined (Markdown).
    pub doc: &'static str,
}

/// A setting's default, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingDefault {
    /// A value, read exactly as if the variable held it.
    Value(&'static str),
    /// Worked out at start-up (from the build, `DEBUG`, …); the words say how.
    Described(&'static str),
}

/// Declares [`Settings`]: each setting once, as
///
/// ```text
/// /// What it does (the README's "meaning" column).
/// field: Type = "VARIABLE" {
///     default: "value",                       // read as if VARIABLE=value
///  or default: "words" => expression,          // Result<Type, String>
///     parse: function,                         // fn(&str) -> Result<Type, String>
///     debug: function,                         // optional: fn(&Type) -> impl Debug
/// }
/// ```
///
/// Settings are read in the order they are declared, so a default's
/// expression can use any setting above it by its field name (`debug`), and
/// the state directory by the name given after `in`. A parser's `Err` is
/// the problem; the error names the variable.
macro_rules! settings {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $settings:ident in $state_dir:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $ty:ty = $name:literal {
                    default: $default:literal $(=> $unset:expr)?,
                    parse: $parse:expr
                    $(, debug: $show:expr)? $(,)?
                }
            )*
        }
        derived {
            $(
                $(#[doc = $derived_doc:literal])*
                $derived:ident: $derived_ty:ty = $derive:expr
            ),* $(,)?
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Clone)]
        pub struct $settings {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("The variable `", $name, "`.")]
                pub $field: $ty,
            )*
            $(
                $(#[doc = $derived_doc])*
                pub $derived: $derived_ty,
            )*
        }

        /// Every setting Porter reads, in the order it reads them.
        pub const SETTINGS: &[SettingDoc] = &[$(
            SettingDoc {
                name: $name,
                default: settings!(@documented $default $(=> $unset)?),
                doc: concat!($($doc),*),
            }
        ),*];

        impl $settings {
            /// Reads the settings through `lookup`, which returns the value
            /// of a variable if set (an empty value counts as unset). Tests
            /// pass a map here instead of touching the process environment.
            #[doc = concat!("`", stringify!($state_dir), "` is where a debug server may keep its")]
            /// generated secret key.
            pub fn from_lookup(
                lookup: impl Fn(&str) -> Option<String>,
                $state_dir: &Path,
            ) -> Result<Self, SettingsError> {
                let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
                $(
                    let $field: $ty = match get($name) {
                        Some(value) => ($parse)(value.as_str()),
                        None => settings!(@unset $parse, $default $(=> $unset)?),
                    }
                    .map_err(|problem| SettingsError::new($name, problem))?;
                )*
                $(let $derived: $derived_ty = $derive?;)*
                Ok(Self { $($field,)* $($derived,)* })
            }
        }

        impl fmt::Debug for $settings {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = f.debug_struct(stringify!($settings));
                $(settings!(@show out, $field, &self.$field $(, $show)?);)*
                $(out.field(stringify!($derived), &self.$derived);)*
                out.finish_non_exhaustive()
            }
        }
    };
    (@documented $default:literal) => { SettingDefault::Value($default) };
    (@documented $default:literal => $unset:expr) => { SettingDefault::Described($default) };
    (@unset $parse:expr, $default:literal) => { ($parse)($default) };
    (@unset $parse:expr, $default:literal => $unset:expr) => { $unset };
    (@show $out:ident, $field:ident, $value:expr) => { $out.field(stringify!($field), $value) };
    (@show $out:ident, $field:ident, $value:expr, $show:expr) => {
        $out.field(stringify!($field), &($show)($value))
    };
}

settings! {
    /// Porter's typed settings. `Debug` hides the secret keys and any
    /// password in `DATABASE_URL` or `REDIS_URL`.
    pub struct Settings in state_dir {
        /// development mode: a generated `SECRET_KEY`, cookies over plain http
        debug: bool = "DEBUG" {
            default: "on in debug builds (`cargo run`), off in release builds"
                => Ok(cfg!(debug_assertions)),
            parse: parse_bool,
        }
        /// the database: `sqlite://PATH` (the file is created on first run)
        /// or `postgres://user:password@host/db`, with libpq's settings in
        /// the query (`?sslmode=require`); Porter adds `connect_timeout=2`
        /// unless the URL sets one. For a server on the same machine, use
        /// its Unix socket (`postgres:///db?host=/var/run/postgresql`) or
        /// `?sslmode=disable`: libpq's default (`prefer`) speaks TLS where
        /// the server offers it, which within one machine protects nothing
        /// and costs each Porter process about 2.8 MiB
        database_url: String = "DATABASE_URL" {
            default: "sqlite://porter.db",
            parse: parse_database_url,
            debug: show_database_url,
        }
        /// where sessions live: `db` (a row per session), `cached_db` (a row
        /// per session, read through a Redis cache), `redis` (a Redis key per
        /// session) or `cookie` (signed and encrypted cookie)
        session_engine: SessionEngine = "SESSION_ENGINE" {
            default: "db",
            parse: SessionEngine::parse,
        }
        /// the Redis server of the `redis` and `cached_db` engines
        redis_url: String = "REDIS_URL" {
            default: "redis://127.0.0.1:6379",
            parse: parse_redis_url,
            debug: show_redis_url,
        }
        /// prepended to every Redis key, so that several sites can share one
        /// Redis
        redis_key_prefix: String = "REDIS_KEY_PREFIX" {
            default: "porter:session:",
            parse: parse_text,
        }
        /// signs cookies and session auth hashes; at least 64 bytes; required
        /// when `DEBUG` is off (`porter secret generate`)
        secret_key: SecretKey = "SECRET_KEY" {
            default: "generated into `.porter-secret-key` when `DEBUG` is on" => if debug {
                debug_secret_key(&state_dir.join(DEBUG_SECRET_KEY_FILE))
            } else {
                Err("is required when DEBUG is off; generate one with `openssl rand -hex 64`".into())
            },
            parse: SecretKey::parse,
        }
        /// earlier secret keys, comma-separated: still accepted, never used
        /// to sign (see Security)
        secret_key_fallbacks: Vec<SecretKey> = "SECRET_KEY_FALLBACKS" {
            default: "none" => Ok(Vec::new()),
            parse: |value: &str| parse_list(value, SecretKey::parse),
            debug: <[SecretKey]>::len,
        }
        /// the `host:port` to listen on; port `0` picks a free one
        bind: String = "BIND" {
            default: "127.0.0.1:8080",
            parse: parse_bind,
        }
        /// send the session, CSRF and flash-message cookies over HTTPS only,
        /// and send `Strict-Transport-Security` (a year, subdomains included)
        /// on every response
        cookie_secure: bool = "COOKIE_SECURE" {
            default: "the opposite of `DEBUG`" => Ok(!debug),
            parse: parse_bool,
        }
        /// idle timeout: how long a session lives without activity; seconds,
        /// or a duration such as `90s`, `60m`, `12h`, `14d` or `1h 30m`
        session_ttl: Duration = "SESSION_TTL" {
            default: "1d",
            parse: parse_duration,
        }
        /// how long a session lives when "remember me" was ticked at login
        session_remember_ttl: Duration = "SESSION_REMEMBER_TTL" {
            default: "14d",
            parse: parse_duration,
        }
        /// absolute lifetime: no session lives longer than this from its
        /// login, whatever its activity or "remember me"; then the user signs
        /// in again
        session_max_age: Duration = "SESSION_MAX_AGE" {
            default: "30d",
            parse: parse_duration,
        }
        /// how many reverse proxies append to `X-Forwarded-For`: `false`,
        /// `true` (one) or a number; the client address is the entry the
        /// outermost one appended (the last, with one proxy). Only behind
        /// reverse proxies
        trusted_proxies: usize = "TRUST_X_FORWARDED_FOR" {
            default: "false",
            parse: parse_proxy_count,
        }
        /// the site's public origin, such as `https://example.com`; an unsafe
        /// request's `Origin` (or `Referer`) must match its scheme, host and
        /// port, and links in mail start with it. In debug without it, the
        /// CSRF check uses the request's own `Host`, and mail links the `BIND`
        /// address (`http://localhost:8080`), never a request's `Host`
        site_url: Option<Origin> = "SITE_URL" {
            default: "none; required when `DEBUG` is off" => if debug {
                Ok(None)
            } else {
                Err("is required when DEBUG is off: the public address of the site, \
                     for example https://example.com".into())
            },
            parse: |value: &str| parse_origin(value).map(Some),
        }
        /// further origins, comma-separated, allowed to send unsafe requests
        /// (Django's `CSRF_TRUSTED_ORIGINS`), such as
        /// `https://admin.example.com`
        trusted_origins: Vec<Origin> = "TRUSTED_ORIGINS" {
            default: "none" => Ok(Vec::new()),
            parse: |value: &str| parse_list(value, parse_origin),
        }
        /// the memory cost of new password hashes, in KiB (OWASP's argon2id
        /// advice)
        argon2_memory_kib: u32 = "ARGON2_MEMORY_KIB" {
            default: "19456",
            parse: parse_number,
        }
        /// the number of passes of new password hashes
        argon2_iterations: u32 = "ARGON2_ITERATIONS" {
            default: "2",
            parse: parse_number,
        }
        /// the lanes of new password hashes
        argon2_parallelism: u32 = "ARGON2_PARALLELISM" {
            default: "1",
            parse: parse_number,
        }
        /// how many logins, sign-ups and password changes may wait for a
        /// hashing thread; past it they get `503` with `Retry-After` at once
        hashing_queue: Option<usize> = "HASHING_QUEUE" {
            default: "16 per hashing thread" => Ok(None),
            parse: |value: &str| parse_count_above_zero(value).map(Some),
        }
        /// send the `Server-Timing` header (see "Watching it"); never on
        /// `POST /login`
        server_timing: bool = "SERVER_TIMING" {
            default: "the value of `DEBUG`" => Ok(debug),
            parse: parse_bool,
        }
        /// where mail goes: `console:` (printed on standard output),
        /// `file:///dir` (one `.eml` file per mail), `smtp://user:pass@host:port`
        /// (STARTTLS when offered; port 25), `smtp+starttls://…` (STARTTLS
        /// required; port 587), `smtps://…` (TLS from the start; port 465);
        /// user and password percent-encoded. `porter check --deploy` warns
        /// about `console:` and `file:`
        email_url: EmailUrl = "EMAIL_URL" {
            default: "console:",
            parse: EmailUrl::parse,
        }
        /// the sender of Porter's mail, with or without a name
        email_from: lettre::message::Mailbox = "EMAIL_FROM" {
            default: "Porter <webmaster@localhost>",
            parse: crate::mail::backend::parse_from,
            debug: ToString::to_string,
        }
        /// how long a password reset link works
        password_reset_ttl: Duration = "PASSWORD_RESET_TTL" {
            default: "1h",
            parse: parse_duration,
        }
        /// how long after signing in (or answering `/sudo`) sensitive
        /// actions (password, e-mail, passkeys, two-factor, signing out
        /// everywhere, staff actions) go through without asking again
        sudo_ttl: Duration = "SUDO_TTL" {
            default: "10m",
            parse: parse_duration,
        }
        /// how long the security log (`auth_events`) keeps an event;
        /// `porter clearsessions` and the server (hourly) delete older ones
        auth_events_ttl: Duration = "AUTH_EVENTS_TTL" {
            default: "90d",
            parse: parse_duration,
        }
        // actix-session logs every bad cookie itself; Porter reports them as
        // rate-limited security events instead (see `sessions::cookies`).
        /// the log filter, in `tracing_subscriber`'s `EnvFilter` syntax;
        /// Porter reports bad cookies itself, rate-limited
        rust_log: String = "RUST_LOG" {
            default: "info,actix_session=error",
            parse: parse_text,
        }
    }
    derived {
        /// The cost of new password hashes, from the three `ARGON2_` settings.
        argon2: argon2::Params =
            argon2_params(argon2_memory_kib, argon2_iterations, argon2_parallelism),
    }
}

/// Which store keeps session data: Django's `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEngine {
    /// A row per session in the database (the default).
    Db,
    /// The database's rows, read through a Redis cache (Django's
    /// `cached_db`).
    CachedDb,
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
            Self::CachedDb => "cached_db",
            Self::Redis => "redis",
            Self::Cookie => "cookie",
        }
    }

    /// Reads a `SESSION_ENGINE`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "db" => Ok(Self::Db),
            "cached_db" => Ok(Self::CachedDb),
            "redis" => Ok(Self::Redis),
            "cookie" => Ok(Self::Cookie),
            other => Err(format!(
                "unknown engine {other:?}; expected db, cached_db, redis or cookie"
            )),
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
        Self::parse(&value).map_err(|problem| SettingsError::new("SECRET_KEY", problem))
    }

    /// Reads a secret key, checking its length; the error says what is wrong.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.len() < MIN_SECRET_KEY_LEN {
            return Err(format!(
                "must be at least {MIN_SECRET_KEY_LEN} bytes long (it is {}); \
                 generate one with `openssl rand -hex 64`",
                value.len()
            ));
        }
        Ok(Self(value.to_owned()))
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

// The parsers of the declarations above: each reads one value and says in
// words what is wrong with it; `settings!` adds the setting's name.

fn parse_text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean; use true or false")),
    }
}

fn parse_number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))
}

fn parse_count_above_zero(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{value:?} is not a whole number above zero")),
    }
}

/// A comma-separated list, each item read by `parse`; empty items skipped.
fn parse_list<T>(value: &str, parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse)
        .collect()
}

/// `TRUST_X_FORWARDED_FOR`: a boolean (`true` is one proxy) or a count.
fn parse_proxy_count(value: &str) -> Result<usize, String> {
    if let Ok(count) = value.trim().parse::<usize>() {
        return Ok(count);
    }
    parse_bool(value).map(usize::from).map_err(|_| {
        format!(
            "{value:?} is neither true, false nor a number of proxies \
             (how many reverse proxies append to X-Forwarded-For)"
        )
    })
}

fn parse_origin(value: &str) -> Result<Origin, String> {
    Origin::parse(value.trim()).ok_or_else(|| {
        format!(
            "{value:?} is not an absolute http or https URL with a host \
             (for example https://example.com)"
        )
    })
}

/// Parses a duration with `humantime` (`90s`, `60m`, `12h`, `14d`,
/// `1h 30m`), or a bare number of seconds (`3600`).
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let parsed = match value.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(value),
    };
    let duration = parsed.map_err(|_| {
        format!(
            "{value:?} is not a duration; use seconds (3600) or a number with a unit (90s, 60m, 12h, 14d)"
        )
    })?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    // Cookie and database expiry times must stay representable.
    if duration > Duration::from_secs(10 * 365 * 24 * 60 * 60) {
        return Err("must be at most ten years".into());
    }
    Ok(duration)
}

fn parse_database_url(url: &str) -> Result<String, String> {
    DatabaseUrl::parse(url).map(|_| url.to_owned())
}

/// `DATABASE_URL` as `DatabaseUrl` shows it: without its password.
fn show_database_url(url: &str) -> Option<DatabaseUrl> {
    DatabaseUrl::parse(url).ok()
}

fn parse_redis_url(url: &str) -> Result<String, String> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(url.to_owned())
    } else {
        Err("must start with redis:// (or rediss:// for TLS)".into())
    }
}

/// `REDIS_URL`, unless it holds credentials.
fn show_redis_url(url: &str) -> &str {
    if url.contains('@') { "[redacted]" } else { url }
}

fn parse_bind(bind: &str) -> Result<String, String> {
    let port_ok = bind
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if port_ok {
        Ok(bind.to_owned())
    } else {
        Err(format!(
            "{bind:?} is not host:port (for example 127.0.0.1:8080)"
        ))
    }
}

/// The argon2 cost from its three settings; argon2 says which is out of
/// range.
fn argon2_params(
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
) -> Result<argon2::Params, SettingsError> {
    argon2::Params::new(memory_kib, iterations, parallelism, None).map_err(|err| {
        let setting = match err {
            argon2::Error::TimeTooSmall => "ARGON2_ITERATIONS",
            argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => "ARGON2_PARALLELISM",
            _ => "ARGON2_MEMORY_KIB",
        };
        SettingsError::new(setting, format!("is out of range for argon2 ({err})"))
    })
}

/// In debug mode a missing `SECRET_KEY` is generated once and kept in a
/// local file, so that sessions survive a restart of the development server.
fn debug_secret_key(path: &PathBuf) -> Result<SecretKey, String> {
    let problem =
        |err: std::io::Error| format!("is unset and {} could not be used: {err}", path.display());
    match std::fs::read_to_string(path) {
        Ok(existing) => SecretKey::parse(existing.trim()),
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
        assert_eq!(s.session_ttl, Duration::from_secs(24 * 60 * 60));
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
            ("SESSION_MAX_AGE", "a month"),
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
        assert_eq!(debug.password_reset_ttl, Duration::from_secs(60 * 60));
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
    fn the_argon2_defaults_are_the_argon2_crates_defaults() {
        let s = settings(&[("SECRET_KEY", KEY)]).expect("valid");
        assert_eq!(s.argon2.m_cost(), argon2::Params::DEFAULT_M_COST);
        assert_eq!(s.argon2.t_cost(), argon2::Params::DEFAULT_T_COST);
        assert_eq!(s.argon2.p_cost(), argon2::Params::DEFAULT_P_COST);
    }

    #[test]
    fn passwords_in_urls_never_show_in_debug_output() {
        let s = settings(&[
            ("SECRET_KEY", KEY),
            ("DATABASE_URL", "postgres://porter:db-password@db/porter"),
            ("REDIS_URL", "redis://:redis-password@cache:6379"),
            ("SECRET_KEY_FALLBACKS", &KEY.repeat(2)),
        ])
        .expect("valid");
        let shown = format!("{s:?}");
        assert!(!shown.contains("db-password"), "{shown}");
        assert!(!shown.contains("redis-password"), "{shown}");
        assert!(!shown.contains(KEY), "{shown}");
    }

    #[test]
    fn the_secret_key_never_shows_in_debug_output() {
        let s = settings(&[("SECRET_KEY", KEY)]).expect("valid");
        assert!(!format!("{s:?}").contains(KEY));
    }
}
