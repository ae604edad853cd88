//! The command line: Porter's `manage.py`.
//!
//! ```text
//! porter [serve]                      run the server (the default)
//! porter migrate                      apply database migrations
//! porter createuser NAME [--superuser] [--staff] [--email ADDR] [--password-stdin]
//! porter changepassword NAME [--password-stdin]
//! porter deactivate NAME | activate NAME
//! porter users list
//! porter perms list [--user NAME] | grant USER PERM | revoke USER PERM
//! porter groups list | create NAME | add USER GROUP | remove USER GROUP
//! porter groups grant GROUP PERM | revoke GROUP PERM
//! porter events [--user NAME] [--limit N]  the security log, newest first
//! porter clearsessions                delete expired sessions and old security events
//! porter session show KEY             a session's data, as Django's get_decoded()
//! porter session list [--user NAME]
//! porter sendtestemail ADDRESS       send a mail now, to check EMAIL_URL
//! porter check [--deploy]            settings unsafe in production
//! porter secret generate              a new SECRET_KEY
//! ```

use std::io::{BufRead, IsTerminal};

use actix_session::storage::{SessionKey, SessionStore};
use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::{
    auth::{
        self, AlsoInTransaction, PasswordHasher,
        audit::{self, EventFilter, EventKind},
        email_address, grants,
        models::{self, User},
        permissions::UserPermissions,
        user_fields::UserFields,
        user_manager,
    },
    checks, db,
    mail::{Mail, Mailer},
    sessions::{
        RedisSettings, SessionBackend, by_user,
        db_store::{decode_state, state_as_json},
        models as session_models, open_session_cookie,
    },
    settings::{SecretKey, SessionEngine, Settings},
    startup::{Application, cookie_key, login_marks},
    views::display_time,
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
        /// The user's own fields (`auth::user_fields`): NAME, --email, …
        #[command(flatten)]
        fields: UserFields,
        /// Make the user a superuser (and staff).
        #[arg(long)]
        superuser: bool,
        /// Make the user staff: they may enter the staff area, and do there
        /// what their permissions allow.
        #[arg(long)]
        staff: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; their sessions end.
    Changepassword {
        /// The user's username.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in; every session of theirs ends.
    Deactivate {
        /// The user's username.
        name: String,
    },
    /// Let a deactivated user sign in again.
    Activate {
        /// The user's username.
        name: String,
    },
    /// Inspect users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Permissions: list them, grant one to a user, take one back.
    Perms {
        /// What to do with permissions.
        #[command(subcommand)]
        action: PermsCommand,
    },
    /// Groups: create them, put users in and out, give them permissions.
    Groups {
        /// What to do with groups.
        #[command(subcommand)]
        action: GroupsCommand,
    },
    /// The security log, newest first.
    Events {
        /// Only events about this user, by them, or naming them at a
        /// failed sign-in.
        #[arg(long)]
        user: Option<String>,
        /// How many events to print.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Delete expired sessions, and security log events older than
    /// AUTH_EVENTS_TTL, and print how many.
    Clearsessions,
    /// Send a test mail to ADDRESS now, through EMAIL_URL (not the
    /// outbox), and say whether the server took it.
    Sendtestemail {
        /// Where to send it.
        address: String,
    },
    /// Inspect sessions.
    Session {
        /// What to do with sessions.
        #[command(subcommand)]
        action: SessionCommand,
    },
    /// Check the configuration; with --deploy, list every setting unsafe in
    /// production and exit non-zero if there is one.
    Check {
        /// Run the deployment checks.
        #[arg(long)]
        deploy: bool,
    },
    /// Secret keys.
    Secret {
        /// What to do.
        #[command(subcommand)]
        action: SecretCommand,
    },
    /// Two-factor sign-in.
    Twofactor {
        /// What to do.
        #[command(subcommand)]
        action: TwofactorCommand,
    },
}

/// `porter twofactor ...`
#[derive(Debug, Subcommand)]
pub enum TwofactorCommand {
    /// Take every factor off a user who lost them all (TOTP, recovery
    /// codes, passkeys): their password alone signs in again. Make sure,
    /// out of band, that whoever asks owns the account.
    Reset {
        /// The user's username.
        name: String,
    },
}

/// `porter secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a new random SECRET_KEY (64 random bytes, hex-encoded).
    Generate,
}

/// `porter users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user.
    List,
}

/// `porter perms ...`
#[derive(Debug, Subcommand)]
pub enum PermsCommand {
    /// List every permission, or the ones a user holds.
    List {
        /// Only this user's, directly or through groups.
        #[arg(long)]
        user: Option<String>,
    },
    /// Give USER the permission PERM (a codename such as sessions.view_any).
    Grant {
        /// The user's username.
        user: String,
        /// The permission's codename.
        perm: String,
    },
    /// Take the directly held permission PERM from USER.
    Revoke {
        /// The user's username.
        user: String,
        /// The permission's codename.
        perm: String,
    },
}

/// `porter groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List every group.
    List,
    /// Create a group.
    Create {
        /// The group's name.
        name: String,
    },
    /// Put USER in GROUP.
    Add {
        /// The user's username.
        user: String,
        /// The group's name.
        group: String,
    },
    /// Take USER out of GROUP.
    Remove {
        /// The user's username.
        user: String,
        /// The group's name.
        group: String,
    },
    /// Give every member of GROUP the permission PERM.
    Grant {
        /// The group's name.
        group: String,
        /// The permission's codename.
        perm: String,
    },
    /// Take the permission PERM from GROUP.
    Revoke {
        /// The group's name.
        group: String,
        /// The permission's codename.
        perm: String,
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
    /// List live sessions (`db` engine), or one user's (`db`, `redis`).
    List {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
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
            fields,
            superuser,
            staff,
            password_stdin,
        } => createuser(
            &settings,
            fields,
            Roles { superuser, staff },
            password_stdin,
        ),
        Command::Perms { action } => perms(&settings, action),
        Command::Groups { action } => groups(&settings, action),
        Command::Events { user, limit } => events(&settings, user.as_deref(), limit),
        Command::Sendtestemail { address } => sendtestemail(&settings, &address),
        Command::Changepassword {
            name,
            password_stdin,
        } => changepassword(&settings, &name, password_stdin),
        Command::Deactivate { name } => set_active(&settings, &name, false),
        Command::Activate { name } => set_active(&settings, &name, true),
        Command::Users {
            action: UsersCommand::List,
        } => users_list(&settings),
        Command::Clearsessions => {
            let pool = connect(&settings)?;
            let cleared = session_models::delete_expired(&mut *pool.get()?)?;
            println!("{cleared} expired session(s) deleted.");
            let pruned = audit::prune_older_than(&mut *pool.get()?, settings.auth_events_ttl)?;
            println!("{pruned} security log event(s) older than AUTH_EVENTS_TTL deleted.");
            Ok(())
        }
        Command::Session {
            action: SessionCommand::Show { key },
        } => session_show(&settings, &key),
        Command::Session {
            action: SessionCommand::List { user },
        } => session_list(&settings, user.as_deref()),
        Command::Check { deploy } => run_checks(&settings, deploy),
        Command::Twofactor {
            action: TwofactorCommand::Reset { name },
        } => twofactor_reset(&settings, &name),
        Command::Secret {
            action: SecretCommand::Generate,
        } => {
            println!(
                "{}",
                String::from_utf8_lossy(SecretKey::generate().expose())
            );
            Ok(())
        }
    }
}

/// `porter secret …`: needs no settings.
pub fn secret(action: &SecretCommand) {
    match action {
        SecretCommand::Generate => {
            println!(
                "{}",
                String::from_utf8_lossy(SecretKey::generate().expose())
            );
        }
    }
}

fn run_checks(settings: &Settings, deploy: bool) -> anyhow::Result<()> {
    connect(settings)?;
    let findings = if deploy {
        checks::deploy_checks(settings)
    } else {
        Vec::new()
    };
    if findings.is_empty() {
        println!("System check identified no issues.");
        return Ok(());
    }
    for finding in &findings {
        println!("{finding}");
    }
    bail!(
        "system check identified {} issue(s) unsafe for deployment",
        findings.len()
    )
}

fn connect(settings: &Settings) -> anyhow::Result<db::DbPool> {
    let pool = db::connect(&settings.database_url).with_context(|| {
        format!(
            "DATABASE_URL: cannot open {}",
            db::DatabaseUrl::describe(&settings.database_url)
        )
    })?;
    // Commands find users by name: their lookup keys must be complete.
    models::refresh_username_keys(&mut *pool.get()?)?;
    Ok(pool)
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone()).await?;
        let host = match settings.bind.rsplit_once(':') {
            // Browsers treat `localhost` as a secure context, so even with
            // COOKIE_SECURE on, cookies survive plain http in development.
            Some(("127.0.0.1", _)) | None => "localhost",
            Some((host, _)) => host,
        };
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

fn find_user(conn: &mut db::DbConnection, name: &str) -> anyhow::Result<User> {
    models::find_by_username(conn, name.trim())?.ok_or_else(|| anyhow!("no user named {name:?}"))
}

/// What a new user is, besides a user.
struct Roles {
    superuser: bool,
    staff: bool,
}

fn createuser(
    settings: &Settings,
    mut fields: UserFields,
    Roles { superuser, staff }: Roles,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let errors = fields.clean();
    if !errors.is_empty() {
        bail!("{errors}");
    }
    let password = read_new_password(password_stdin)?;
    let pool = connect(settings)?;
    let mut conn = pool.get()?;
    let account = user_manager::prepare_user(
        &PasswordHasher::new(settings.argon2.clone())?,
        fields,
        &password,
        superuser,
    )?;
    let user = db::transaction(&mut conn, |conn| {
        let mut user = user_manager::insert_user(conn, &account)?;
        if staff && !user.is_staff {
            models::set_staff(conn, user.id, true)?;
            user.is_staff = true;
        }
        if let Some(email) = account.fields().email() {
            email_address::confirm(conn, user.id, email)?
                .map_err(|err| anyhow!("--email: {err}"))?;
        }
        anyhow::Ok(user)
    })?;
    let kind = match (user.is_superuser, user.is_staff) {
        (true, _) => "Superuser",
        (false, true) => "Staff user",
        (false, false) => "User",
    };
    println!("{kind} {:?} created (id {}).", user.username, user.id);
    Ok(())
}

fn sendtestemail(settings: &Settings, address: &str) -> anyhow::Result<()> {
    let address = email_address::normalize_email(address);
    email_address::validate_email(&address).map_err(|err| anyhow!("{address:?}: {err}"))?;
    let mailer = Mailer::new(&settings.email_url, settings.email_from.clone())?;
    let mail = Mail {
        to: address.clone(),
        subject: "Test email from Porter".into(),
        text: format!(
            "If you can read this, Porter's mail settings work.\n\nEMAIL_URL: {}\nEMAIL_FROM: {}\n",
            settings.email_url.describe(),
            settings.email_from
        ),
        html: "<p>If you can read this, Porter's mail settings work.</p>".into(),
    };
    let mut id = [0u8; 8];
    rand::fill(&mut id);
    actix_web::rt::System::new()
        .block_on(mailer.send(&mail, &format!("test.{}", hex::encode(id))))?;
    println!(
        "Test mail to {address} handed to {}.",
        settings.email_url.describe()
    );
    Ok(())
}

fn changepassword(settings: &Settings, name: &str, password_stdin: bool) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let user = find_user(&mut *pool.get()?, name)?;
    let password = read_new_password(password_stdin)?;
    user_manager::set_password(
        &mut *pool.get()?,
        &PasswordHasher::new(settings.argon2.clone())?,
        &user,
        &password,
    )?;
    println!(
        "Password changed for {:?}; their other sessions are signed out.",
        user.username
    );
    Ok(())
}

fn set_active(settings: &Settings, name: &str, is_active: bool) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let user = find_user(&mut *pool.get()?, name)?;
    let by = grants::ChangedBy::command_line();
    if is_active {
        db::transaction(&mut *pool.get()?, |conn| {
            models::set_active(conn, user.id, true)?;
            audit::record(conn, &by.event(EventKind::UserActivated).about(user.id))
        })?;
        println!("{:?} can sign in again.", user.username);
        return Ok(());
    }
    let user_id = user.id;
    let deactivate: AlsoInTransaction = Box::new(move |conn| {
        models::set_active(conn, user_id, false)?;
        audit::record(conn, &by.event(EventKind::UserDeactivated).about(user_id))
    });
    let ended = actix_web::rt::System::new().block_on(async {
        let backend = session_backend(settings, &pool).await?;
        anyhow::Ok(auth::end_every_session(&pool, &backend, user_id, deactivate).await?)
    })?;
    match ended {
        Some(ended) => println!(
            "{:?} is deactivated; {ended} session(s) ended.",
            user.username
        ),
        None => println!(
            "{:?} is deactivated; their sessions end on their next request.",
            user.username
        ),
    }
    Ok(())
}

fn perms(settings: &Settings, action: PermsCommand) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let mut conn = pool.get()?;
    let by = grants::ChangedBy::command_line();
    match action {
        PermsCommand::List { user: None } => {
            let all = grants::all_permissions(&mut conn)?;
            println!("{:<28} NAME", "PERMISSION");
            for permission in &all {
                println!("{:<28} {}", permission.codename, permission.name);
            }
            println!("{} permission(s).", all.len());
        }
        PermsCommand::List { user: Some(name) } => {
            let user = find_user(&mut conn, &name)?;
            if user.is_superuser {
                println!("{:?} is a superuser: every permission.", user.username);
            }
            let held = UserPermissions::load(&mut conn, &user)?;
            for codename in held.codenames() {
                println!("{codename}");
            }
            let groups: Vec<_> = held.groups().collect();
            println!(
                "groups: {}",
                if groups.is_empty() {
                    "none".to_owned()
                } else {
                    groups.join(", ")
                }
            );
        }
        PermsCommand::Grant { user, perm } => {
            let user = find_user(&mut conn, &user)?;
            if grants::grant_permission(&mut conn, user.id, perm.trim(), &by)? {
                println!("{:?} now holds {perm}.", user.username);
            } else {
                println!("{:?} already held {perm}.", user.username);
            }
        }
        PermsCommand::Revoke { user, perm } => {
            let user = find_user(&mut conn, &user)?;
            if grants::revoke_permission(&mut conn, user.id, perm.trim(), &by)? {
                println!("{:?} no longer holds {perm} directly.", user.username);
            } else {
                println!("{:?} did not hold {perm} directly.", user.username);
            }
        }
    }
    Ok(())
}

fn groups(settings: &Settings, action: GroupsCommand) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let mut conn = pool.get()?;
    let by = grants::ChangedBy::command_line();
    let said =
        |changed: bool, yes: String, no: String| println!("{}", if changed { yes } else { no });
    match action {
        GroupsCommand::List => {
            let all = grants::all_groups(&mut conn)?;
            for group in &all {
                println!("{}", group.name);
            }
            println!("{} group(s).", all.len());
        }
        GroupsCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("a group needs a name");
            }
            let group = grants::new_group(&mut conn, name, &by)?;
            println!("Group {:?} created (id {}).", group.name, group.id);
        }
        GroupsCommand::Add { user, group } => {
            let user = find_user(&mut conn, &user)?;
            said(
                grants::join_group(&mut conn, user.id, &group, &by)?,
                format!("{:?} is now in {group:?}.", user.username),
                format!("{:?} was already in {group:?}.", user.username),
            );
        }
        GroupsCommand::Remove { user, group } => {
            let user = find_user(&mut conn, &user)?;
            said(
                grants::leave_group(&mut conn, user.id, &group, &by)?,
                format!("{:?} is no longer in {group:?}.", user.username),
                format!("{:?} was not in {group:?}.", user.username),
            );
        }
        GroupsCommand::Grant { group, perm } => said(
            grants::grant_group_permission(&mut conn, &group, perm.trim(), &by)?,
            format!("Group {group:?} now holds {perm}."),
            format!("Group {group:?} already held {perm}."),
        ),
        GroupsCommand::Revoke { group, perm } => said(
            grants::revoke_group_permission(&mut conn, &group, perm.trim(), &by)?,
            format!("Group {group:?} no longer holds {perm}."),
            format!("Group {group:?} did not hold {perm}."),
        ),
    }
    Ok(())
}

fn events(settings: &Settings, user: Option<&str>, limit: i64) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let mut conn = pool.get()?;
    let filter = match user {
        Some(name) => {
            let user = find_user(&mut conn, name)?;
            // The same key as the server's: from the same SECRET_KEY.
            let key = audit::username_digest_key(&settings.secret_key);
            let digest = audit::username_digest(&key, &user.username);
            EventFilter {
                user: Some((user.id, digest)),
                ..EventFilter::default()
            }
        }
        None => EventFilter::default(),
    };
    let found = audit::search(&mut conn, &filter, 0, limit.max(1))?;
    println!(
        "{:<22} {:<26} {:<7} {:<7} {:<16} DETAIL",
        "WHEN", "EVENT", "USER", "ACTOR", "ADDRESS"
    );
    let id = |id: Option<i32>| id.map_or_else(|| "-".to_owned(), |id| id.to_string());
    for event in &found {
        println!(
            "{:<22} {:<26} {:<7} {:<7} {:<16} {}",
            display_time(&event.created_at),
            event.kind,
            id(event.user_id),
            id(event.actor_id),
            if event.ip.is_empty() { "-" } else { &event.ip },
            event.detail,
        );
    }
    println!("{} event(s).", found.len());
    Ok(())
}

/// The session engine's store, as the server would build it.
async fn session_backend(settings: &Settings, pool: &db::DbPool) -> anyhow::Result<SessionBackend> {
    let redis = RedisSettings {
        url: settings.redis_url.clone(),
        key_prefix: settings.redis_key_prefix.clone(),
    };
    Ok(SessionBackend::new(settings.session_engine, pool, &redis, login_marks(settings)).await?)
}

fn twofactor_reset(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let mut conn = pool.get()?;
    let user = find_user(&mut conn, name)?;
    let event = grants::ChangedBy::command_line()
        .event(EventKind::TwoFactorReset)
        .about(user.id);
    let outcome = db::transaction(&mut conn, |conn| {
        let outcome = crate::auth::two_factor::reset(conn, user.id)?;
        audit::record(conn, &event)?;
        diesel::QueryResult::Ok(outcome)
    })?;
    // In the security log, and for whoever watches the server's log too.
    tracing::warn!(
        user.id = user.id,
        ?outcome,
        "two-factor sign-in reset from the command line"
    );
    println!(
        "Two-factor sign-in reset for {:?}: TOTP {}, {} recovery codes and {} passkeys removed; \
         their password alone signs in.",
        user.username,
        if outcome.totp_removed {
            "removed"
        } else {
            "was off"
        },
        outcome.recovery_codes_removed,
        outcome.passkeys_removed,
    );
    Ok(())
}

fn users_list(settings: &Settings) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let users = models::all(&mut *pool.get()?)?;
    println!(
        "{:<6} {:<24} {:<8} {:<10} LAST LOGIN",
        "ID", "USERNAME", "ACTIVE", "SUPERUSER"
    );
    for user in &users {
        println!(
            "{:<6} {:<24} {:<8} {:<10} {}",
            user.id,
            user.username,
            if user.is_active { "yes" } else { "no" },
            if user.is_superuser { "yes" } else { "no" },
            user.last_login
                .as_ref()
                .map_or_else(|| "never".to_owned(), display_time),
        );
    }
    println!("{} user(s).", users.len());
    Ok(())
}

/// The new password: from stdin's first line, or asked twice at the terminal.
fn read_new_password(password_stdin: bool) -> anyhow::Result<String> {
    if password_stdin {
        read_password_line()
    } else {
        prompt_password_twice()
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

fn session_list(settings: &Settings, user: Option<&str>) -> anyhow::Result<()> {
    let pool = connect(settings)?;
    let user = user
        .map(|name| find_user(&mut *pool.get()?, name))
        .transpose()?;
    match (settings.session_engine, user) {
        (SessionEngine::Db | SessionEngine::CachedDb, user) => {
            let rows = session_models::live(&mut *pool.get()?, user.map(|user| user.id))?;
            println!(
                "{:<6} {:<8} {:<22} {:<22} KEY HASH",
                "ID", "USER", "CREATED", "EXPIRES"
            );
            for row in &rows {
                println!(
                    "{:<6} {:<8} {:<22} {:<22} {}…",
                    row.id,
                    row.user_id
                        .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                    display_time(&row.created_at),
                    display_time(&row.expires_at),
                    &row.key_hash[..12],
                );
            }
            println!("{} live session(s).", rows.len());
        }
        (SessionEngine::Cookie, _) => bail!(
            "SESSION_ENGINE is cookie: sessions live in browsers, and the server has none to list"
        ),
        (_, None) => bail!(
            "SESSION_ENGINE is {}: sessions are found by user; pass --user NAME",
            settings.session_engine.as_str()
        ),
        (_, Some(user)) => {
            let sessions = actix_web::rt::System::new().block_on(async {
                let backend = session_backend(settings, &pool).await?;
                anyhow::Ok(by_user::list(&backend, user.id, None).await?)
            })?;
            let sessions = sessions.unwrap_or_default();
            let or_dash = |at: Option<time::PrimitiveDateTime>| {
                at.as_ref().map_or_else(|| "-".into(), display_time)
            };
            println!(
                "{:<18} {:<8} {:<22} {:<22} BROWSER",
                "ID", "USER", "SIGNED IN", "EXPIRES"
            );
            for session in &sessions {
                println!(
                    "{:<18} {:<8} {:<22} {:<22} {}",
                    session.id,
                    user.id,
                    or_dash(session.signed_in_at),
                    or_dash(session.expires_at),
                    session.user_agent,
                );
            }
            println!("{} live session(s).", sessions.len());
        }
    }
    Ok(())
}

fn session_show(settings: &Settings, key: &str) -> anyhow::Result<()> {
    // A cookie copied from a browser or a cookie file may be percent-encoded.
    let key = percent_encoding::percent_decode_str(key.trim()).decode_utf8_lossy();
    let key = key.as_ref();
    let state = match settings.session_engine {
        SessionEngine::Cookie => {
            let data = open_session_cookie(&cookie_key(settings), key, true)
                .ok_or_else(|| anyhow!("this is not a session cookie made with this SECRET_KEY"))?;
            serde_json::from_str(&data).context("the cookie does not hold session data")?
        }
        SessionEngine::Redis => {
            let key = bare_session_key(settings, key)?;
            let pool = connect(settings)?;
            actix_web::rt::System::new().block_on(async {
                let store = session_backend(settings, &pool).await?;
                let key = SessionKey::try_from(key).map_err(|err| anyhow!("{err}"))?;
                store
                    .load(&key)
                    .await
                    .map_err(|err| anyhow!("{err}"))?
                    .ok_or_else(|| anyhow!("no session has that key"))
            })?
        }
        SessionEngine::Db | SessionEngine::CachedDb => {
            let key = bare_session_key(settings, key)?;
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
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(state_as_json(&state)))?
    );
    Ok(())
}

/// The session key from a bare key or the signed cookie value a browser shows.
fn bare_session_key(settings: &Settings, key: &str) -> anyhow::Result<String> {
    if key.len() > 64 {
        open_session_cookie(&cookie_key(settings), key, false)
            .ok_or_else(|| anyhow!("the cookie's signature is not valid for this SECRET_KEY"))
    } else {
        Ok(key.to_owned())
    }
}
