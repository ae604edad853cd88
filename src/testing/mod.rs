//! Test helpers for Porter and for forks of it: Django's test `Client` and
//! `force_login`, for actix-web. Enabled by the `testing` feature:
//!
//! ```toml
//! [dev-dependencies]
//! porter = { path = ".", features = ["testing"] }
//! ```
//!
//! * [`spawn_app`] builds the real app (the same [`build_app`] that `main`
//!   serves) on a fresh database: a SQLite file in a temporary directory, or
//!   with `PORTER_TEST_DATABASE=postgres` a PostgreSQL database made for the
//!   test and dropped after it;
//! * [`TestApp`] is a browser: it keeps cookies, submits forms with their CSRF
//!   token, and [`TestApp::force_login`] signs a user in without the form;
//! * [`TestResponse`] reads what a user would see, the queries the request
//!   ran ([`TestResponse::query_count`]), and
//!   [`TestResponse::assert_redirects_to_login`];
//! * [`proxy::TcpProxy`] stands between the app and PostgreSQL or Redis and
//!   plays an outage ([`proxy::TcpProxy::cut`]) for fault tests;
//! * mail goes to the `file:` backend in the test's folder:
//!   [`TestApp::deliver_mail`] runs the outbox's sender once and
//!   [`TestApp::mail_to`] reads what arrived; [`mail::SmtpServer`] is a
//!   real SMTP server on loopback for the tests that need one.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    net::SocketAddr,
    rc::Rc,
};

use crate::{
    auth::{
        SessionKeys,
        guards::login_url,
        models::{self, NewUser, User},
    },
    db::PooledConn,
    schema::sessions,
    sessions::{DbSessionStore, activity::LAST_SEEN_KEY, seal_session_cookie},
    settings::{SessionEngine, Settings},
    startup::{AppState, build_app, cookie_key},
};
/// The request the app under test takes: for helpers generic over
/// [`TestApp`]'s service, as `S: Service<Request, …>`.
pub use actix_http::Request;
use actix_session::storage::SessionStore;
use actix_web::{
    body::MessageBody,
    cookie::{Cookie, CookieJar},
    dev::{Service, ServiceResponse},
    http::{StatusCode, header},
    test,
};
use diesel::prelude::*;
use tempfile::TempDir;

pub mod mail;
pub mod proxy;
pub mod services;

use self::services::{PostgresDatabase, suite_on_postgres};

/// A secret key for tests only.
pub const TEST_SECRET_KEY: &str =
    "test-secret-key-test-secret-key-test-secret-key-test-secret-key-0123456789";

/// The public address test apps are given (`SITE_URL`): the host actix's
/// test requests are sent to.
pub const TEST_SITE_URL: &str = "http://localhost:8080";

/// Settings for a test: a database in `dir`, mail written to `dir/mail`
/// as `.eml` files, plus `overrides`.
pub fn test_settings(dir: &TempDir, overrides: &[(&str, &str)]) -> Settings {
    let database = dir.path().join("porter.db");
    let mut vars = BTreeMap::from([
        (
            "EMAIL_URL".to_owned(),
            format!("file://{}", dir.path().join("mail").display()),
        ),
        ("DEBUG".to_owned(), "false".to_owned()),
        ("SECRET_KEY".to_owned(), TEST_SECRET_KEY.to_owned()),
        // Tests read query counts from `Server-Timing`.
        ("SERVER_TIMING".to_owned(), "true".to_owned()),
        ("SITE_URL".to_owned(), TEST_SITE_URL.to_owned()),
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}", database.display()),
        ),
    ]);
    for (name, value) in overrides {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    Settings::from_lookup(|name| vars.get(name).cloned(), dir.path()).expect("valid test settings")
}

/// A listener on a free port of 127.0.0.1, for a test that serves on a
/// real socket ([`Application::serve_on`](crate::startup::Application::serve_on)),
/// and the base URL that reaches it as `host` (`127.0.0.1`, or `localhost`
/// for a browser), to use as `SITE_URL`: bound first, so the URL names the
/// port actually used.
pub fn local_listener(host: &str) -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free local port");
    let port = listener.local_addr().expect("a bound address").port();
    (listener, format!("http://{host}:{port}"))
}

/// The app under test and a client with its own cookie jar: one browser.
pub struct TestApp<S> {
    service: Rc<S>,
    /// The state the app was built from: the pool, the hasher, the settings.
    pub state: AppState,
    cookies: RefCell<BTreeMap<String, String>>,
    /// The address requests come from, when the test sets one.
    peer: Cell<Option<SocketAddr>>,
    /// Holds the test's database; deleted when the last browser is dropped.
    _dir: Rc<TempDir>,
    /// The test's PostgreSQL database, when the suite runs on PostgreSQL.
    _postgres: Rc<Option<PostgresDatabase>>,
}

/// Builds the app on a fresh database with the default settings.
pub async fn spawn_app() -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    spawn_app_with(&[]).await
}

/// Builds the app on a fresh database with some settings overridden.
pub async fn spawn_app_with(
    overrides: &[(&str, &str)],
) -> TestApp<
    impl Service<
        Request,
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
    > + use<>,
> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = test_settings(&dir, overrides);
    let explicit_database = overrides.iter().any(|(name, _)| *name == "DATABASE_URL");
    let postgres = (suite_on_postgres() && !explicit_database).then(PostgresDatabase::create);
    if let Some(postgres) = &postgres {
        settings.database_url = postgres.url.clone();
    }
    let state = AppState::new(settings).await.expect("the app state builds");
    let mut app = spawn_app_from(state, dir).await;
    app._postgres = Rc::new(postgres);
    app
}

/// Another instance of the app on the same database, with `overrides`
/// (another SECRET_KEY, say), and a browser of its own.
pub async fn spawn_sibling<S>(
    app: &TestApp<S>,
    overrides: &[(&str, &str)],
) -> TestApp<
    impl Service<
        Request,
        Response = ServiceResponse<impl MessageBody + use<S>>,
        Error = actix_web::Error,
    > + use<S>,
> {
    let mut settings = test_settings(&app._dir, overrides);
    settings.database_url = app.state.settings.database_url.clone();
    let state = AppState::new(settings).await.expect("the app state builds");
    let service = test::init_service(build_app(&state)).await;
    new_browser(
        service,
        state,
        Rc::clone(&app._dir),
        Rc::clone(&app._postgres),
    )
}

/// Builds the app from a state prepared by the test (in `dir`).
pub async fn spawn_app_from(
    state: AppState,
    dir: TempDir,
) -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    let service = test::init_service(build_app(&state)).await;
    new_browser(service, state, Rc::new(dir), Rc::new(None))
}

/// A browser with no cookies yet on `service`, holding the test's database
/// (`dir`, and `postgres` on PostgreSQL) for as long as it lives.
fn new_browser<S>(
    service: S,
    state: AppState,
    dir: Rc<TempDir>,
    postgres: Rc<Option<PostgresDatabase>>,
) -> TestApp<S> {
    TestApp {
        service: Rc::new(service),
        state,
        cookies: RefCell::default(),
        peer: Cell::default(),
        _dir: dir,
        _postgres: postgres,
    }
}

/// What a response showed: enough to assert what a user would see.
#[derive(Debug)]
pub struct TestResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: header::HeaderMap,
    /// The body as text.
    pub body: String,
}

impl TestResponse {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    /// The `Server-Timing` header.
    pub fn server_timing(&self) -> &str {
        self.headers
            .get("server-timing")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The `db` entry's description in `Server-Timing`: "2 queries, 1 hand-off".
    fn db_description(&self) -> String {
        let timing = self.server_timing();
        // The db entry is the last, and its description holds a ", ".
        timing
            .rsplit_once("db;")
            .and_then(|(_, entry)| entry.split("desc=\"").nth(1))
            .map(|desc| desc.trim_end_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no db entry in Server-Timing: {timing:?}"))
    }

    /// The number of queries the request ran, from `Server-Timing`.
    pub fn query_count(&self) -> u64 {
        self.db_description()
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a query count")
    }

    /// How many times the request handed work to another thread (the
    /// blocking pool, the hashing threads), from `Server-Timing`.
    pub fn hand_offs(&self) -> u64 {
        let desc = self.db_description();
        desc.split(", ")
            .nth(1)
            .and_then(|trips| trips.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no hand-off count in Server-Timing: {desc:?}"))
    }

    /// Whether the request loaded the user, from `Server-Timing`.
    pub fn loaded_user(&self) -> bool {
        self.server_timing()
            .split(", ")
            .any(|entry| entry.starts_with("user;"))
    }

    /// The `Set-Cookie` header for cookie `name`, parsed.
    pub fn set_cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .filter_map(|value| Cookie::parse_encoded(value.to_str().ok()?.to_owned()).ok())
            .find(|cookie| cookie.name() == name)
    }

    /// Asserts that the response sends an anonymous visitor to the login
    /// page, asking to come back to `next`.
    pub fn assert_redirects_to_login(&self, next: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "a redirect");
        assert_eq!(
            self.location(),
            Some(login_url(next).as_str()),
            "to the login page"
        );
    }

    /// The value of the first hidden `csrf_token` field on the page.
    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a csrf_token field") + marker.len();
        let len = self.body[start..].find('"').expect("a closing quote");
        self.body[start..start + len].to_owned()
    }
}

impl<S> TestApp<S> {
    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }

    /// Puts a cookie in the jar (or replaces it), as a tampering client would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Sends the next requests from `address` (`127.0.0.N:port`).
    pub fn set_peer(&self, address: &str) {
        self.peer
            .set(Some(address.parse().expect("a socket address")));
    }

    /// Signs `username` in without the login form (Django's
    /// `Client.force_login`): a signed-in session is written straight into
    /// the engine's store and its cookie put in the jar.
    pub async fn force_login(&self, username: &str) {
        let user = models::find_by_username(&mut self.db(), username)
            .expect("a user query")
            .expect("the user exists");
        let json = |value: &str| serde_json::to_string(value).expect("a JSON string");
        let state = [
            (SessionKeys::USER_ID, json(&user.id.to_string())),
            (
                SessionKeys::BACKEND,
                json(self.state.auth.vouch_for_new(user.clone()).backend),
            ),
            (
                SessionKeys::HASH,
                json(&self.state.auth.session_auth_hash(&user)),
            ),
            (
                SessionKeys::LOGIN_TIME,
                time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
            ),
            // As a login request would have noted, so the next page writes nothing.
            (
                LAST_SEEN_KEY,
                time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
            ),
            // As `login` stamps it: a fresh sign-in, sensitive pages open.
            (
                SessionKeys::VERIFIED_AT,
                time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let key = self
            .state
            .session_backend
            .save(state, &actix_web::cookie::time::Duration::hours(1))
            .await
            .expect("save the session");
        let private = self.state.settings.session_engine == SessionEngine::Cookie;
        let cookie = seal_session_cookie(&cookie_key(&self.state.settings), key.as_ref(), private);
        self.set_cookie("sessionid", &cookie);
    }

    /// Empties the jar: a new browser.
    pub fn clear_cookies(&self) {
        self.cookies.borrow_mut().clear();
    }

    /// A database connection, to look at what the app stored.
    pub fn db(&self) -> PooledConn {
        self.state.pool.get().expect("a database connection")
    }

    /// How many rows the sessions table holds.
    pub fn session_rows(&self) -> i64 {
        sessions::table
            .count()
            .get_result(&mut *self.db())
            .expect("count sessions")
    }

    /// Sends every queued mail now, as the server's worker would.
    pub async fn deliver_mail(&self) -> crate::mail::worker::Delivery {
        self.state
            .outbox
            .deliver_due()
            .await
            .expect("the outbox is readable")
    }

    /// Every mail delivered so far by the `file:` backend, oldest first.
    pub fn sent_mail(&self) -> Vec<mail::ReceivedMail> {
        match &self.state.settings.email_url {
            crate::mail::EmailUrl::File(dir) => mail::read_mail_dir(dir),
            other => panic!("the test app sends mail to {other:?}, not to files"),
        }
    }

    /// Delivers queued mail, then returns every mail sent to `address`.
    pub async fn mail_to(&self, address: &str) -> Vec<mail::ReceivedMail> {
        self.deliver_mail().await;
        self.sent_mail()
            .into_iter()
            .filter(|mail| mail.to.eq_ignore_ascii_case(address))
            .collect()
    }

    /// The database file's path, for the CLI.
    pub fn database_url(&self) -> String {
        self.state.settings.database_url.clone()
    }
}

impl<S, B> TestApp<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// A second browser on the same app: same server, empty cookie jar.
    pub fn new_browser(&self) -> Self {
        Self {
            service: Rc::clone(&self.service),
            state: self.state.clone(),
            cookies: RefCell::default(),
            peer: Cell::default(),
            _dir: Rc::clone(&self._dir),
            _postgres: Rc::clone(&self._postgres),
        }
    }

    /// Sends `req` with the jar's cookies, and keeps the cookies it sets.
    pub async fn send(&self, req: test::TestRequest) -> TestResponse {
        let mut req = req;
        if let Some(peer) = self.peer.get() {
            req = req.peer_addr(peer);
        }
        for (name, value) in self.cookies.borrow().iter() {
            req = req.cookie(Cookie::new(name.clone(), value.clone()));
        }
        let res = match test::try_call_service(&*self.service, req.to_request()).await {
            Ok(res) => res,
            // An error from middleware becomes a response, as the server makes it.
            Err(err) => {
                let res = err.error_response();
                let status = res.status();
                let headers = res.headers().clone();
                let body = actix_web::body::to_bytes(res.into_body())
                    .await
                    .unwrap_or_default();
                return TestResponse {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
            }
        };
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await;
        let response = TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        self.keep_cookies(&response);
        response
    }

    fn keep_cookies(&self, response: &TestResponse) {
        let mut jar = self.cookies.borrow_mut();
        for value in response.headers.get_all(header::SET_COOKIE) {
            let Ok(cookie) = Cookie::parse_encoded(value.to_str().unwrap_or_default().to_owned())
            else {
                continue;
            };
            let removed = cookie
                .max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative())
                || cookie.value().is_empty();
            if removed {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(test::TestRequest::get().uri(path)).await
    }

    /// `POST path` with an urlencoded form, exactly as given.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.send(test::TestRequest::post().uri(path).set_form(fields))
            .await
    }

    /// Loads `form_page`, then posts `fields` to `path` with the page's CSRF
    /// token, as a browser submitting the form would.
    pub async fn submit_form(
        &self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let token = self.get(form_page).await.csrf_token();
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &token));
        self.post_form(path, &fields).await
    }

    /// Signs out through the profile page's form.
    pub async fn logout(&self) -> TestResponse {
        self.submit_form("/profile", "/logout", &[]).await
    }

    /// Stores a session with `entries` (values are JSON texts) straight
    /// into the session store and puts its signed cookie in the jar, as an
    /// attacker planting a session would. Returns the cookie value.
    pub async fn plant_session(&self, entries: &[(&str, &str)]) -> String {
        let state = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let store = DbSessionStore::new(self.state.pool.clone());
        let key = store
            .save(state, &actix_web::cookie::time::Duration::hours(1))
            .await
            .expect("save a session");
        let mut jar = CookieJar::new();
        jar.signed_mut(&cookie_key(&self.state.settings))
            .add(Cookie::new("sessionid", String::from(key)));
        let value = jar
            .get("sessionid")
            .expect("the signed cookie")
            .value()
            .to_owned();
        self.set_cookie("sessionid", &value);
        value
    }
}

/// A user stored in the test database, with their plain password.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// The username.
    pub username: String,
    /// The plain password, to type into forms.
    pub password: String,
    /// The user's id.
    pub id: i32,
}

impl TestUser {
    /// Creates a user named `username` with a random password.
    pub fn create<S>(app: &TestApp<S>, username: &str) -> Self {
        let mut random = [0u8; 12];
        rand::fill(&mut random);
        let password = format!("pw-{}", hex::encode(random));
        let hash = app.state.hasher.hash(&password).expect("hash");
        let mut conn = app.state.pool.get().expect("connection");
        let user: User =
            models::create(&mut conn, &NewUser::new(username, &hash, false)).expect("create user");
        Self {
            username: user.username,
            password,
            id: user.id,
        }
    }

    /// Creates a user named `username` with the confirmed address `email`.
    pub fn create_with_email<S>(app: &TestApp<S>, username: &str, email: &str) -> Self {
        let mut random = [0u8; 12];
        rand::fill(&mut random);
        let password = format!("pw-{}", hex::encode(random));
        let hash = app.state.hasher.hash(&password).expect("hash");
        let mut conn = app.state.pool.get().expect("connection");
        let user: User = models::create(
            &mut conn,
            &NewUser::new(username, &hash, false).with_email(email, true),
        )
        .expect("create user");
        Self {
            username: user.username,
            password,
            id: user.id,
        }
    }

    /// Signs in through the login form; returns the response to the POST.
    pub async fn login<S, B>(&self, app: &TestApp<S>) -> TestResponse
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        self.login_with(app, &[]).await
    }

    /// Signs in through the login form, sending `extra` fields too (`next`,
    /// `remember_me`).
    pub async fn login_with<S, B>(&self, app: &TestApp<S>, extra: &[(&str, &str)]) -> TestResponse
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let mut fields = vec![
            ("username", self.username.as_str()),
            ("password", self.password.as_str()),
        ];
        fields.extend_from_slice(extra);
        app.submit_form("/login", "/login", &fields).await
    }
}
