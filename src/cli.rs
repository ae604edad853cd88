//! The command line: Porter's `manage.py`.
//!
//! ```text
//! porter [serve]                      run the server (the default)
//! porter migrate                      apply database migrations
//! porter createuser NAME [--superuser] [--password-stdin]
//! porter session show KEY             a session's data, as Django's get_decoded()
//! ```

use std::io::{BufRead, IsTerminal};

use actix_web::cookie::{Cookie, CookieJar};
use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::Value;

use crate::{
    auth::{
        PasswordHasher,
        models::{self, NewUser},
        validators::{validate_password, validate_username},
    },
    db,
    sessions::{SESSION_COOKIE_NAME, db_store::decode_state, models as session_models},
    settings::{SessionEngine, Settings},
    startup::{Application, cookie_key},
};

/// Porter: Django's session and authentication machinery on Actix Web.
#[derive(Debug, Parser)]
#[command(name = "porter", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Create a user; the password is asked for twice, or read from stdin.
    Createuser {
        /// The new user's username.
        name: String,
        /// Make the user a superuser.
        #[arg(long)]
        superuser: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Inspect sessions.
    Session {
        /// What to do with sessions.
        #[command(subcommand)]
        action: SessionCommand,
    },
}

/// `porter session ...`
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Print a session's data as JSON. KEY is the session key or the whole
    /// value of the `sessionid` cookie.
    Show {
        /// The session key, or the `sessionid` cookie's value.
        key: String,
    },
}

/// Runs `command` with `settings`.
pub fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let pool = connect(&settings)?;
            let applied = db::migrate(&mut *pool.get()?)?;
            println!("{applied} migration(s) applied; the database is up to date.");
            Ok(())
        }
        Command::Createuser {
            name,
            superuser,
            password_stdin,
        } => createuser(&settings, &name, superuser, password_stdin),
        Command::Session {
            action: SessionCommand::Show { key },
        } => session_show(&settings, &key),
    }
}

fn connect(settings: &Settings) -> anyhow::Result<db::DbPool> {
    db::connect(&settings.database_url)
        .with_context(|| format!("DATABASE_URL: cannot open {}", settings.database_url))
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone())?;
        let host = settings
            .bind
            .rsplit_once(':')
            .map_or("127.0.0.1", |(host, _)| host);
        tracing::info!(
            engine = settings.session_engine.as_str(),
            debug = settings.debug,
            "Porter is listening on http://{host}:{}/",
            app.port()
        );
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn createuser(
    settings: &Settings,
    name: &str,
    superuser: bool,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let username = name.trim();
    validate_username(username)?;
    let password = if password_stdin {
        read_password_line()?
    } else {
        prompt_password_twice()?
    };
    validate_password(&password)?;

    let pool = connect(settings)?;
    let hash = PasswordHasher::default().hash(&password)?;
    let new_user = NewUser::new(username, &hash, superuser);
    match models::create(&mut *pool.get()?, &new_user) {
        Ok(user) => {
            let kind = if superuser { "Superuser" } else { "User" };
            println!("{kind} {:?} created (id {}).", user.username, user.id);
            Ok(())
        }
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            bail!("a user named {username:?} already exists")
        }
        Err(err) => Err(err).context("could not create the user"),
    }
}

fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn prompt_password_twice() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a password; pass --password-stdin and pipe it in");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    if first != second {
        bail!("the two passwords do not match");
    }
    Ok(first)
}

fn session_show(settings: &Settings, key: &str) -> anyhow::Result<()> {
    // A cookie copied from a browser or a cookie file may be percent-encoded.
    let key = percent_encoding::percent_decode_str(key.trim()).decode_utf8_lossy();
    let key = key.as_ref();
    let state = match settings.session_engine {
        SessionEngine::Cookie => {
            let data = open_cookie(settings, key, CookieSecurity::Private)
                .ok_or_else(|| anyhow!("this is not a session cookie made with this SECRET_KEY"))?;
            serde_json::from_str(&data).context("the cookie does not hold session data")?
        }
        SessionEngine::Db => {
            // Accept the bare key, or the signed cookie value a browser shows.
            let key = if key.len() > 64 {
                open_cookie(settings, key, CookieSecurity::Signed).ok_or_else(|| {
                    anyhow!("the cookie's signature is not valid for this SECRET_KEY")
                })?
            } else {
                key.to_owned()
            };
            let pool = connect(settings)?;
            let row = session_models::find_by_key_hash(
                &mut *pool.get()?,
                &session_models::hash_key(&key),
            )?
            .ok_or_else(|| anyhow!("no session has that key"))?;
            if row.expires_at <= session_models::now() {
                eprintln!("note: this session expired at {} UTC", row.expires_at);
            }
            decode_state(&row.data).context("the stored session data is not a JSON object")?
        }
    };
    println!("{}", serde_json::to_string_pretty(&decoded(state))?);
    Ok(())
}

/// actix-session keeps each value as JSON text; show them as JSON values.
fn decoded(state: std::collections::HashMap<String, String>) -> Value {
    state
        .into_iter()
        .map(|(key, json)| {
            let value = serde_json::from_str(&json).unwrap_or(Value::String(json));
            (key, value)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

enum CookieSecurity {
    Signed,
    Private,
}

/// The plain value of a `sessionid` cookie, if it was made with our key.
fn open_cookie(settings: &Settings, value: &str, security: CookieSecurity) -> Option<String> {
    let key = cookie_key(settings);
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(SESSION_COOKIE_NAME, value.to_owned()));
    let cookie = match security {
        CookieSecurity::Signed => jar.signed(&key).get(SESSION_COOKIE_NAME),
        CookieSecurity::Private => jar.private(&key).get(SESSION_COOKIE_NAME),
    };
    cookie.map(|cookie| cookie.value().to_owned())
}
