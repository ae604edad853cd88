//! Start-up: the wiring of the whole dance, shared by `main` and the tests.
//!
//! [`AppState`] is built once (database pool, password hasher, backends);
//! [`build_app`] turns it into an actix `App` with the middleware in the
//! order a request meets them; [`Application`] binds and serves it.

use std::{net::TcpListener, sync::Arc};

use actix_identity::IdentityMiddleware;
use actix_web::{
    App, HttpServer,
    body::MessageBody,
    cookie::Key,
    dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse},
    middleware::from_fn,
    web,
};
use actix_web_flash_messages::FlashMessagesFramework;
use anyhow::Context;

use crate::{
    auth::{
        self, AuthBackend, AuthContext, PasswordHasher, SessionKeys,
        device_cookies::DeviceCookies,
        hashers::HashingPool,
        middleware::UserPrefetch,
        signals::AuthListener,
        throttle::{self, Throttle, ThrottlePolicy},
        tokens::{Clock, TokenGenerator},
    },
    client_ip::ClientIpConfig,
    csrf::{self, CsrfConfig},
    db::{self, DbPool},
    errors,
    flash::FlashCookieStore,
    mail::{Letters, Mailer, Outbox, RetryPolicy},
    security_headers::{self, SecurityHeadersConfig},
    sessions::{
        self, LoginMarks, RedisSettings, SessionBackend, SessionCookieSettings,
        prefetch::SessionPrefetch,
    },
    settings::Settings,
    telemetry, urls,
};

/// How often the server deletes expired sessions and stale login counters.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Deletes expired sessions (Django's `clearsessions`), login counters
/// that have gone quiet and security log events older than
/// `AUTH_EVENTS_TTL`, every hour, for as long as the server runs.
async fn housekeeping(pool: DbPool, auth_events_ttl: std::time::Duration) {
    let quiet_period = ThrottlePolicy::default().quiet_period;
    let mut ticks = actix_web::rt::time::interval(HOUSEKEEPING_EVERY);
    loop {
        ticks.tick().await;
        match sessions::clear_expired(&pool).await {
            Ok(0) => {}
            Ok(cleared) => tracing::info!(cleared, "expired sessions cleared"),
            Err(err) => tracing::warn!(error = %err, "clearing expired sessions failed"),
        }
        let stale = db::with_conn(&pool, move |conn| {
            throttle::delete_stale(conn, quiet_period).map_err(db::DbError::from)
        })
        .await;
        if let Err(err) = stale {
            tracing::warn!(error = %err, "clearing login counters failed");
        }
        let pruned = db::with_conn(&pool, move |conn| {
            auth::audit::prune_older_than(conn, auth_events_ttl).map_err(db::DbError::from)
        })
        .await;
        if let Err(err) = pruned {
            tracing::warn!(error = %err, "pruning the security log failed");
        }
    }
}

/// The largest form body accepted; larger ones get `413`.
pub const FORM_LIMIT: usize = 64 * 1024;

/// Everything the app needs, built once and shared by every worker.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The settings the app was built from.
    pub settings: Settings,
    /// The database pool.
    pub pool: DbPool,
    /// Backends and keys for the dance.
    pub auth: web::Data<AuthContext>,
    /// The password hasher (also used by the CLI).
    pub hasher: Arc<PasswordHasher>,
    /// The session engine's store.
    pub session_backend: SessionBackend,
    /// The login throttle, with its device cookies.
    pub throttle: web::Data<Throttle>,
    /// Password reset and address confirmation tokens, and their clock.
    pub tokens: web::Data<TokenGenerator>,
    /// The mail outbox and its sender. Replace its retry policy before the
    /// server starts to retry sooner (tests) or later.
    pub outbox: web::Data<Outbox>,
    /// What Porter's mails say, with links to `SITE_URL`.
    pub letters: web::Data<Letters>,
    /// TOTP, recovery codes and passkeys.
    pub factors: web::Data<auth::two_factor::Factors>,
    session_cookie: SessionCookieSettings,
}

impl AppState {
    /// Connects to the database (applying migrations) and, for the `redis`
    /// engine, to Redis, and prepares the dance. Start-up work: it blocks
    /// while the database is opened.
    pub async fn new(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::connect(&settings.database_url).with_context(|| {
            format!(
                "DATABASE_URL: cannot open {}",
                db::DatabaseUrl::describe(&settings.database_url)
            )
        })?;
        // Legacy usernames get their Unicode lookup keys (see
        // `auth::models`) before anyone signs in.
        let refreshed = auth::models::refresh_username_keys(&mut *pool.get()?)?;
        if refreshed > 0 {
            tracing::info!(refreshed, "username lookup keys recomputed");
        }
        // The permissions the code declares, in the table staff grant from.
        let synced = auth::permissions::sync(&mut *pool.get()?)?;
        if synced > 0 {
            tracing::info!(synced, "declared permissions written to the database");
        }
        // The dummy hash is made on a hashing thread, as every later hash
        // is: the memory it needs goes back when it is done.
        let hashing = HashingPool::for_this_machine(settings.hashing_queue);
        let params = settings.argon2.clone();
        let hasher = Arc::new(hashing.run(move || PasswordHasher::new(params)).await??);
        let factors = auth::two_factor::Factors::new(&settings);
        let backends = auth::backends::configured(&hasher, &factors.passkeys);
        let auth = web::Data::new(
            AuthContext::new(
                pool.clone(),
                (hashing, Arc::clone(&hasher)),
                &settings.secret_key,
                &settings.secret_key_fallbacks,
                backends,
            )
            .with_session_max_age(settings.session_max_age),
        );
        let redis = RedisSettings {
            url: settings.redis_url.clone(),
            key_prefix: settings.redis_key_prefix.clone(),
        };
        let session_backend = SessionBackend::new(
            settings.session_engine,
            &pool,
            &redis,
            login_marks(&settings),
        )
        .await?;
        let session_cookie = SessionCookieSettings {
            key: cookie_key(&settings),
            secure: settings.cookie_secure,
            ttl: settings.session_ttl,
            engine: settings.session_engine,
            fallback_keys: settings
                .secret_key_fallbacks
                .iter()
                .map(|secret| Key::derive_from(secret.expose()))
                .collect(),
            debug: settings.debug,
        };
        let throttle = web::Data::new(Throttle::new(
            pool.clone(),
            &settings.secret_key,
            ThrottlePolicy::default(),
            DeviceCookies::new(
                &settings.secret_key,
                &settings.secret_key_fallbacks,
                settings.cookie_secure,
            ),
        ));
        let tokens = web::Data::new(TokenGenerator::new(
            &settings.secret_key,
            &settings.secret_key_fallbacks,
            settings.password_reset_ttl,
            Clock::system(),
        ));
        let mailer = Mailer::new(&settings.email_url, settings.email_from.clone())
            .with_context(|| format!("EMAIL_URL: cannot use {}", settings.email_url.describe()))?;
        let outbox = web::Data::new(Outbox::new(
            pool.clone(),
            Arc::new(mailer),
            RetryPolicy::default(),
        ));
        let letters = web::Data::new(Letters::new(&settings.public_url()));
        Ok(Self {
            settings,
            pool,
            auth,
            hasher,
            session_backend,
            throttle,
            tokens,
            outbox,
            letters,
            factors: web::Data::new(factors),
            session_cookie,
        })
    }
}

impl AppState {
    /// Adds an authentication backend after those of
    /// [`auth::backends::configured`], for tests (and forks that build the
    /// list at run time). Call it before the app is built.
    pub fn with_auth_backend(mut self, backend: Arc<dyn AuthBackend>) -> Self {
        let mut auth = self.auth.into_inner();
        Arc::get_mut(&mut auth)
            .expect("backends are added at start-up, before the app shares the context")
            .add_backend(backend);
        self.auth = web::Data::from(auth);
        self
    }

    /// Adds a listener for login events (see `auth::signals`). Call it
    /// before the app is built.
    pub fn with_auth_listener(mut self, listener: Arc<dyn AuthListener>) -> Self {
        let mut auth = self.auth.into_inner();
        Arc::get_mut(&mut auth)
            .expect("listeners are added at start-up, before the app shares the context")
            .add_listener(listener);
        self.auth = web::Data::from(auth);
        self
    }
}

/// What `login` leaves in a session that the stores care about (the user's
/// id, the login time) and `SESSION_MAX_AGE`: the session framework knows
/// nothing of users, so start-up tells it.
pub fn login_marks(settings: &Settings) -> LoginMarks {
    LoginMarks {
        user_id_key: SessionKeys::USER_ID,
        login_time_key: SessionKeys::LOGIN_TIME,
        max_age: settings.session_max_age,
    }
}

/// The key that signs and encrypts cookies, derived from `SECRET_KEY`.
pub fn cookie_key(settings: &Settings) -> Key {
    Key::derive_from(settings.secret_key.expose())
}

/// The app: routes, their shared data, and the middleware around them.
pub fn build_app(
    state: &AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    let routes = [urls::table(), urls::debug_table(state.settings.debug)].concat();
    let public_routes = web::Data::new(urls::public_routes(&routes));
    // On the database engines a non-public page's user rides on the
    // session's load (`sessions::prefetch`); other engines load the session
    // without the blocking pool, and the user as usual.
    let user_prefetch = state.session_backend.database().is_some().then(|| {
        let prefetch = UserPrefetch::new(state.auth.clone(), public_routes.clone());
        web::Data::from(Arc::new(prefetch) as Arc<dyn SessionPrefetch>)
    });
    let flash_store = FlashCookieStore::new(
        state.session_cookie.key.clone(),
        state.settings.cookie_secure,
    );
    App::new()
        .app_data(web::Data::new(state.settings.clone()))
        .app_data(web::Data::new(state.pool.clone()))
        .app_data(web::Data::new(state.session_backend.clone()))
        .app_data(web::Data::new(state.session_cookie.clone()))
        .app_data(state.throttle.clone())
        .app_data(state.tokens.clone())
        .app_data(state.outbox.clone())
        .app_data(state.letters.clone())
        .app_data(state.factors.clone())
        .app_data(web::Data::new(ClientIpConfig {
            trusted_proxies: state.settings.trusted_proxies,
        }))
        .app_data(web::Data::new(SecurityHeadersConfig {
            // HSTS promises the browser HTTPS for a year: only when the
            // site is served over HTTPS, which COOKIE_SECURE says it is.
            strict_transport_security: state.settings.cookie_secure,
        }))
        .app_data(state.auth.clone())
        .configure(|cfg| {
            if let Some(prefetch) = user_prefetch {
                cfg.app_data(prefetch);
            }
        })
        .app_data(web::Data::new(CsrfConfig {
            cookie_secure: state.settings.cookie_secure,
            site_url: state.settings.site_url.clone(),
            trusted_origins: state.settings.trusted_origins.clone(),
        }))
        .app_data(web::PayloadConfig::new(FORM_LIMIT))
        .app_data(
            web::FormConfig::default()
                .limit(FORM_LIMIT)
                .error_handler(|err, _| errors::form_error(err).into()),
        )
        .app_data(
            web::QueryConfig::default().error_handler(|err, _| errors::query_error(err).into()),
        )
        .app_data(public_routes.clone())
        .configure(|cfg| urls::register(cfg, &routes))
        .default_service(urls::not_found())
        // The request's journey, in the order it meets the layers (actix
        // runs the layer added last first, so they are listed inside out):
        //
        //   telemetry         a span, the request's metrics, Server-Timing
        //   security headers  CSP and friends on every answer
        //   session (1, 6)    around_session: the cookie opened once, before
        //                     anything parses cookies (actix caches the
        //                     parse), and on the way out what the store
        //                     reported (gone: no cookie; unreachable: 503)
        //   CSRF              every unsafe request carries the page's token
        //   flash messages    messages shown once, from a signed cookie
        //   session (1, 6)    actix-session: load, and save when changed
        //   session           before_save: last seen, remember me
        //   identity          which user id the session claims
        //   lazy user (2)     the user, loaded when first asked for (on a
        //                     page that is not public, with the session:
        //                     sessions::prefetch, chosen by around_session)
        //   login required (5) every route not marked public needs a user
        //   the view          authenticate (3), login (4); staff and
        //                     permission guards around their routes
        .wrap(from_fn(auth::guards::login_required_by_default))
        .wrap(from_fn(auth::middleware::authentication))
        .wrap(
            IdentityMiddleware::builder()
                .id_key(SessionKeys::USER_ID)
                .build(),
        )
        .wrap(from_fn(sessions::layers::before_save))
        .wrap(sessions::session_middleware(
            state.session_backend.clone(),
            &state.session_cookie,
        ))
        .wrap(FlashMessagesFramework::builder(flash_store).build())
        .wrap(from_fn(csrf::protect))
        .wrap(from_fn(sessions::layers::around_session))
        .wrap(from_fn(security_headers::add))
        .wrap(from_fn(telemetry::observe))
}

/// A running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Builds the state and binds `settings.bind` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState::new(settings).await?;
        Self::serve(state)
    }

    /// Binds `BIND` and starts serving an already built state.
    pub fn serve(state: AppState) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&state.settings.bind)
            .with_context(|| format!("BIND: cannot listen on {}", state.settings.bind))?;
        Self::serve_on(state, listener)
    }

    /// Starts serving an already built state on a bound listener (a test
    /// binds port 0 first, so that its `SITE_URL` can name the real port).
    /// Expired sessions and old security log events are cleared every
    /// hour while it runs, and queued
    /// mail is sent (see [`Outbox::run`]).
    pub fn serve_on(state: AppState, listener: TcpListener) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        actix_web::rt::spawn(housekeeping(
            state.pool.clone(),
            state.settings.auth_events_ttl,
        ));
        actix_web::rt::spawn(state.outbox.get_ref().clone().run());
        // Database work needs few threads; actix's default (hundreds) only
        // adds contention and memory (see `db::blocking_threads_per_worker`).
        let blocking_threads = db::blocking_threads_per_worker(&state.settings.database_url);
        let server = HttpServer::new(move || build_app(&state))
            .worker_max_blocking_threads(blocking_threads)
            .listen(listener)?
            .run();
        Ok(Self { port, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (Ctrl-C, SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
