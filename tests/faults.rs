//! Faults: PostgreSQL or Redis going away under signed-in load and coming
//! back, and the Porter process killed mid-storm on SQLite.
//!
//! A separate test binary: each test serves Porter for real (on a port, or
//! as the `porter` binary it kills), plays an outage with a TCP proxy it
//! controls ([`TcpProxy`]) rather than touching the shared servers, and
//! measures seconds of wall-clock time, which must not be shared with the
//! api suite's hundreds of tests. PostgreSQL and Redis tests skip when the
//! service is absent, except under `CI=true`.

use std::{
    cell::RefCell,
    collections::BTreeMap,
    rc::Rc,
    time::{Duration, Instant},
};

use awc::{Client, http::StatusCode};
use porter::{
    auth::models::{self, NewUser},
    settings::Settings,
    startup::{AppState, Application},
    testing::{
        proxy::TcpProxy,
        services::{self, PostgresDatabase, RedisNamespace},
        test_settings,
    },
};

const PASSWORD: &str = "a fault-test passphrase";
/// Signed-in browsers putting load on the server.
const CLIENTS: usize = 4;
/// How long the load runs before the cut, during it, and after it.
const BEFORE_CUT: Duration = Duration::from_secs(1);
const CUT_FOR: Duration = Duration::from_secs(3);
const AFTER_RESTORE: Duration = Duration::from_secs(3);
/// What the brief promises: every request sent this long after the server
/// came back succeeds.
const RECOVERY: Duration = Duration::from_secs(2);
/// A bound on each browser's requests, whatever the timing.
const MAX_REQUESTS_PER_CLIENT: usize = 5_000;

/// A browser: a client that keeps cookies and does not follow redirects.
struct Browser {
    client: Client,
    cookies: RefCell<BTreeMap<String, String>>,
    /// The address a trusted proxy says the browser has, if any.
    forwarded_for: Option<String>,
}

/// What one request got, and when it was sent.
#[derive(Debug)]
struct Answer {
    path: &'static str,
    sent: Instant,
    took: Duration,
    /// `None` when the request got no HTTP answer at all.
    status: Option<StatusCode>,
    location: Option<String>,
    retry_after: Option<String>,
    /// The `Content-Security-Policy` header, to tell a dressed page.
    csp: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(20))
                .finish(),
            cookies: RefCell::default(),
            forwarded_for: None,
        }
    }

    /// A browser at `address`, as a reverse proxy in front reports it.
    fn at(address: String) -> Self {
        Self {
            forwarded_for: Some(address),
            ..Self::new()
        }
    }

    /// `request` with the browser's cookies and address.
    fn dress(&self, request: awc::ClientRequest) -> awc::ClientRequest {
        let request = request.insert_header(("cookie", self.cookie_header()));
        match &self.forwarded_for {
            Some(address) => request.insert_header(("x-forwarded-for", address.as_str())),
            None => request,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, headers: &awc::http::header::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let mut jar = self.cookies.borrow_mut();
                if value.is_empty() || text.contains("Max-Age=0") {
                    jar.remove(name);
                } else {
                    jar.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    async fn get(&self, base: &str, path: &'static str) -> Answer {
        let sent = Instant::now();
        let res = self
            .dress(self.client.get(format!("{base}{path}")))
            .send()
            .await;
        let Ok(mut res) = res else {
            return Answer {
                path,
                sent,
                took: sent.elapsed(),
                status: None,
                location: None,
                retry_after: None,
                csp: None,
                body: format!("{res:?}"),
            };
        };
        let body = res.body().limit(1 << 20).await.unwrap_or_default();
        self.keep_cookies(res.headers());
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Answer {
            path,
            sent,
            took: sent.elapsed(),
            status: Some(res.status()),
            location: header("location"),
            retry_after: header("retry-after"),
            csp: header("content-security-policy"),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Loads the form at `path` and posts `fields` to it with its CSRF
    /// token. `None` when the server did not answer.
    async fn submit(
        &self,
        base: &str,
        path: &'static str,
        fields: &[(&str, &str)],
    ) -> Option<Answer> {
        self.submit_to(base, path, path, fields).await
    }

    /// Loads the page at `form_path` and posts `fields` to `path` with the
    /// page's CSRF token. `None` when the server did not answer.
    async fn submit_to(
        &self,
        base: &str,
        form_path: &'static str,
        path: &'static str,
        fields: &[(&str, &str)],
    ) -> Option<Answer> {
        let form = self.get(base, form_path).await;
        form.status?;
        let marker = "name=\"csrf_token\" value=\"";
        let start = form.body.find(marker).expect("a CSRF token") + marker.len();
        let token = &form.body[start..start + form.body[start..].find('"').expect("a quote")];
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", token));
        let sent = Instant::now();
        let res = self
            .dress(self.client.post(format!("{base}{path}")))
            .send_form(&fields)
            .await
            .ok()?;
        self.keep_cookies(res.headers());
        let location = res
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Some(Answer {
            path,
            sent,
            took: sent.elapsed(),
            status: Some(res.status()),
            location,
            retry_after: None,
            csp: None,
            body: String::new(),
        })
    }

    /// Signs in through the login form; says whether it worked.
    async fn sign_in(&self, base: &str, username: &str) -> bool {
        let answer = self
            .submit(
                base,
                "/login",
                &[("username", username), ("password", PASSWORD)],
            )
            .await;
        answer.is_some_and(|answer| {
            answer.status == Some(StatusCode::SEE_OTHER)
                && answer.location.as_deref() == Some("/profile")
        })
    }

    /// The session cookie's value, if the browser holds one.
    fn session_cookie(&self) -> Option<String> {
        self.cookies.borrow().get("sessionid").cloned()
    }

    /// Puts a session cookie (copied from another browser) in the jar.
    fn set_session_cookie(&self, value: &str) {
        self.cookies
            .borrow_mut()
            .insert("sessionid".to_owned(), value.to_owned());
    }
}

/// Starts Porter on a free port with `settings`, with `users` made first.
/// Returns its base URL.
async fn serve(settings: Settings, users: &[String]) -> String {
    let state = AppState::new(settings).await.expect("the app state builds");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    let mut conn = state.pool.get().expect("a connection");
    for username in users {
        models::create(&mut conn, &NewUser::new(username, &hash, false)).expect("a user");
    }
    drop(conn);
    let app = Application::serve(state).expect("the server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    base
}

/// Requests `paths` in turn, over and over, until `until`.
async fn keep_asking(
    browser: Rc<Browser>,
    base: Rc<str>,
    paths: &'static [&'static str],
    until: Instant,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for path in paths.iter().cycle().take(MAX_REQUESTS_PER_CLIENT) {
        if Instant::now() >= until {
            break;
        }
        answers.push(browser.get(&base, path).await);
        // A breath between requests: load, not a flood of one client.
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    answers
}

/// When the outage began and ended.
struct Outage {
    cut_at: Instant,
    restored_at: Instant,
}

/// Signs in `CLIENTS` browsers, puts them to work on `paths` (plus one
/// anonymous browser on `/healthz`), cuts `proxy` for a while, restores
/// it, and returns every answer with the outage's times.
async fn load_through_outage(
    base: &str,
    users: &[String],
    paths: &'static [&'static str],
    proxy: &TcpProxy,
) -> (Vec<Answer>, Outage) {
    let base: Rc<str> = Rc::from(base);
    let mut browsers = Vec::new();
    for username in users {
        let browser = Rc::new(Browser::new());
        assert!(
            browser.sign_in(&base, username).await,
            "{username} signs in"
        );
        let profile = browser.get(&base, "/profile").await;
        assert_eq!(
            profile.status,
            Some(StatusCode::OK),
            "{username} is signed in"
        );
        browsers.push(browser);
    }
    let until = Instant::now() + BEFORE_CUT + CUT_FOR + AFTER_RESTORE;
    let mut workers = Vec::new();
    for browser in browsers {
        workers.push(actix_web::rt::spawn(keep_asking(
            browser,
            Rc::clone(&base),
            paths,
            until,
        )));
    }
    workers.push(actix_web::rt::spawn(keep_asking(
        Rc::new(Browser::new()),
        Rc::clone(&base),
        &["/healthz"],
        until,
    )));

    actix_web::rt::time::sleep(BEFORE_CUT).await;
    proxy.cut();
    let cut_at = Instant::now();
    actix_web::rt::time::sleep(CUT_FOR).await;
    proxy.restore();
    let restored_at = Instant::now();

    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("a load worker finishes"));
    }
    (
        answers,
        Outage {
            cut_at,
            restored_at,
        },
    )
}

/// Whether `answer` is the readable outage page.
fn is_outage_page(answer: &Answer) -> bool {
    if answer.path == "/healthz" {
        return answer.status == Some(StatusCode::SERVICE_UNAVAILABLE);
    }
    answer.status == Some(StatusCode::SERVICE_UNAVAILABLE)
        && answer.retry_after.is_some()
        // Dressed like every page: the security headers are there too.
        && answer.csp.is_some()
        && answer.body.contains("Service unavailable")
        && answer.body.contains("try again")
}

/// Whether `answer` is what a signed-in user sees when all is well.
fn is_success(answer: &Answer) -> bool {
    answer.status == Some(StatusCode::OK)
        && (answer.path == "/healthz" || answer.body.contains("Sign out"))
}

/// Checks the answers around an outage: before the cut everything
/// succeeded; while the server was away, every answer is one that
/// `acceptable_during_cut` allows (and never a 500); a request sent
/// [`RECOVERY`] after the restore succeeds, signed in.
fn assert_survived(
    answers: &[Answer],
    outage: &Outage,
    acceptable_during_cut: impl Fn(&Answer) -> bool,
) {
    let recovered_at = outage.restored_at + RECOVERY;
    let mut during = 0;
    let mut slowest_during = Duration::ZERO;
    let mut after = 0;
    for answer in answers {
        let answered = answer.sent + answer.took;
        assert_ne!(
            answer.status,
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            "never a 500: {answer:?}"
        );
        if answered < outage.cut_at {
            assert!(is_success(answer), "before the cut: {answer:?}");
        } else if answer.sent >= outage.cut_at && answered < outage.restored_at {
            during += 1;
            slowest_during = slowest_during.max(answer.took);
            assert!(
                acceptable_during_cut(answer),
                "during the cut, at {:?}: {answer:?}",
                answer.sent - outage.cut_at
            );
            assert!(
                answer.took < Duration::from_secs(3),
                "requests fail fast during the cut: {answer:?}"
            );
        } else if answer.sent >= recovered_at {
            after += 1;
            assert!(
                is_success(answer),
                "{:?} after the restore: {answer:?}",
                answer.sent - outage.restored_at
            );
        } else {
            // In flight at the cut or the restore, or in the recovery
            // window: either answer, as long as it is one of them.
            assert!(
                is_success(answer) || acceptable_during_cut(answer),
                "around the outage: {answer:?}"
            );
        }
    }
    let last_failure_after_restore = answers
        .iter()
        .filter(|answer| answer.sent >= outage.restored_at && !is_success(answer))
        .map(|answer| answer.sent - outage.restored_at)
        .max();
    eprintln!(
        "{} answers: {during} during the cut (slowest {slowest_during:?}), {after} after \
         recovery; last failure sent {last_failure_after_restore:?} after the restore",
        answers.len()
    );
    assert!(during > 10, "the load went on during the cut ({during})");
    assert!(after > 10, "the load went on after recovery ({after})");
}

fn usernames(prefix: &str) -> Vec<String> {
    (0..CLIENTS).map(|n| format!("{prefix}{n}")).collect()
}

#[actix_web::test]
async fn a_postgres_outage_answers_503_and_every_request_succeeds_two_seconds_after_it_ends() {
    if !services::available("postgres") {
        return;
    }
    let database = PostgresDatabase::create();
    let proxy = TcpProxy::start(services::address_of(&database.url, 5432)).expect("a proxy");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = proxy.url_for(&database.url);
    let settings = test_settings(&dir, &[("BIND", "127.0.0.1:0"), ("DATABASE_URL", &url)]);
    let users = usernames("pg");
    let base = serve(settings, &users).await;

    let (answers, outage) = load_through_outage(&base, &users, &["/profile", "/"], &proxy).await;

    assert_survived(&answers, &outage, is_outage_page);
}

#[actix_web::test]
async fn a_redis_outage_answers_503_or_anonymous_and_every_request_succeeds_two_seconds_after_it_ends()
 {
    if !services::available("redis") {
        return;
    }
    let namespace = RedisNamespace::new();
    let proxy =
        TcpProxy::start(services::address_of(&services::redis_url(), 6379)).expect("a proxy");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let redis_url = proxy.url_for(&services::redis_url());
    let settings = test_settings(
        &dir,
        &[
            ("BIND", "127.0.0.1:0"),
            ("SESSION_ENGINE", "redis"),
            ("REDIS_URL", &redis_url),
            ("REDIS_KEY_PREFIX", &namespace.prefix),
        ],
    );
    let users = usernames("redis");
    let base = serve(settings, &users).await;

    let (answers, outage) = load_through_outage(&base, &users, &["/profile", "/"], &proxy).await;

    // Without its session a visitor is anonymous: the profile sends them to
    // sign in, the home page offers to.
    let anonymous = |answer: &Answer| match answer.path {
        "/profile" => {
            answer.status == Some(StatusCode::SEE_OTHER)
                && answer
                    .location
                    .as_deref()
                    .is_some_and(|location| location.starts_with("/login"))
        }
        "/" => answer.status == Some(StatusCode::OK) && !answer.body.contains("Sign out"),
        _ => false,
    };
    assert_survived(&answers, &outage, |answer| {
        // The health check is about the database, which is fine.
        (answer.path == "/healthz" && is_success(answer))
            || is_outage_page(answer)
            || anonymous(answer)
    });

    // Sessions lost with Redis's data are anonymous visitors, not errors.
    let browser = Browser::new();
    assert!(browser.sign_in(&base, &users[0]).await);
    drop(namespace); // deletes every session key
    let profile = browser.get(&base, "/profile").await;
    assert!(
        anonymous(&profile),
        "a lost session is anonymous: {profile:?}"
    );
}

#[actix_web::test]
async fn a_redis_outage_under_cached_db_serves_every_signed_in_page_from_the_database() {
    if !services::available("redis") {
        return;
    }
    let namespace = RedisNamespace::new();
    let proxy =
        TcpProxy::start(services::address_of(&services::redis_url(), 6379)).expect("a proxy");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let redis_url = proxy.url_for(&services::redis_url());
    let settings = test_settings(
        &dir,
        &[
            ("BIND", "127.0.0.1:0"),
            ("SESSION_ENGINE", "cached_db"),
            ("REDIS_URL", &redis_url),
            ("REDIS_KEY_PREFIX", &namespace.prefix),
        ],
    );
    let users = usernames("cached");
    let base = serve(settings, &users).await;

    let (answers, outage) = load_through_outage(&base, &users, &["/profile", "/"], &proxy).await;

    // The cache is a cache: without it the database answers, signed in,
    // with no error and no 503.
    assert_survived(&answers, &outage, is_success);

    // A sign-out while Redis is away is not undone by the copy Redis kept.
    let browser = Browser::new();
    assert!(browser.sign_in(&base, &users[0]).await);
    let cookie = browser.session_cookie().expect("a session cookie");
    assert!(is_success(&browser.get(&base, "/profile").await), "cached");
    proxy.cut();
    let signed_out = browser
        .submit_to(&base, "/profile", "/logout", &[])
        .await
        .expect("an answer");
    assert_eq!(signed_out.status, Some(StatusCode::SEE_OTHER));
    proxy.restore();
    actix_web::rt::time::sleep(RECOVERY).await;
    let replay = Browser::new();
    replay.set_session_cookie(&cookie);
    let profile = replay.get(&base, "/profile").await;
    assert_eq!(
        profile.status,
        Some(StatusCode::SEE_OTHER),
        "signed out for good: {profile:?}"
    );
}

/// The real `porter` binary on a SQLite file in `dir`, on `port`.
fn porter(dir: &std::path::Path, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_porter"));
    command
        // No `.env` of the developer's, no settings from the test's
        // environment: exactly these.
        .current_dir(dir)
        .env_clear()
        .env("DEBUG", "false")
        .env("SECRET_KEY", porter::testing::TEST_SECRET_KEY)
        .env("SITE_URL", format!("http://localhost:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("porter.db").display()),
        )
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        // The storm comes from many addresses, as through a reverse proxy:
        // sign-ups are limited per address.
        .env("TRUST_X_FORWARDED_FOR", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until the server at `base` answers `/healthz`.
async fn wait_until_serving(base: &str) {
    let browser = Browser::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if browser.get(base, "/healthz").await.status == Some(StatusCode::OK) {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("porter did not start serving at {base}");
}

/// What the storm was told had succeeded.
#[derive(Default)]
struct Acknowledged {
    /// Session cookies of answered logins and sign-ups, with their user.
    sessions: Vec<(String, String)>,
    /// Users whose sign-up was answered.
    signed_up: Vec<String>,
}

/// Logs in (even tasks) or signs up (odd tasks) over and over, until the
/// server stops answering; records every success it was told of.
async fn storm(base: Rc<str>, task: usize, acknowledged: Rc<RefCell<Acknowledged>>) {
    for attempt in 0..200 {
        let browser = Browser::at(format!("10.0.{task}.{attempt}"));
        let (username, answer) = if task.is_multiple_of(2) {
            let username = format!("existing{}", task % 3);
            let fields = [("username", username.as_str()), ("password", PASSWORD)];
            let answer = browser.submit(&base, "/login", &fields).await;
            (username, answer)
        } else {
            let username = format!("storm{task}x{attempt}");
            let fields = [
                ("username", username.as_str()),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ];
            let answer = browser.submit(&base, "/signup", &fields).await;
            (username, answer)
        };
        let Some(answer) = answer else {
            return; // the server is gone
        };
        assert_eq!(
            answer.location.as_deref(),
            Some("/profile"),
            "{username}: {answer:?}"
        );
        let mut acknowledged = acknowledged.borrow_mut();
        if task % 2 == 1 {
            acknowledged.signed_up.push(username.clone());
        }
        let cookie = browser.session_cookie().expect("a session cookie");
        acknowledged.sessions.push((username, cookie));
    }
}

#[actix_web::test]
async fn a_killed_sqlite_server_loses_no_session_or_user_it_acknowledged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    for n in 0..3 {
        let mut createuser = porter(dir.path(), port)
            .args(["createuser", &format!("existing{n}"), "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("porter createuser runs");
        use std::io::Write;
        createuser
            .stdin
            .take()
            .expect("a stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("the password is written");
        assert!(createuser.wait().expect("createuser ends").success());
    }
    let mut server = porter(dir.path(), port)
        .arg("serve")
        .spawn()
        .expect("porter serves");
    let base: Rc<str> = Rc::from(format!("http://127.0.0.1:{port}"));
    wait_until_serving(&base).await;

    // The storm: 16 browsers logging in and signing up at once.
    let acknowledged = Rc::new(RefCell::new(Acknowledged::default()));
    let tasks: Vec<_> = (0..16)
        .map(|task| actix_web::rt::spawn(storm(Rc::clone(&base), task, Rc::clone(&acknowledged))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.borrow().sessions.len() < 24 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-storm: requests are in flight, some of them half-written.
    server.kill().expect("SIGKILL is sent");
    server.wait().expect("the server is gone");
    for task in tasks {
        task.await.expect("a storm task ends");
    }
    let acknowledged = acknowledged.take();
    assert!(
        acknowledged.sessions.len() >= 24 && !acknowledged.signed_up.is_empty(),
        "the storm got going ({} sessions, {} sign-ups)",
        acknowledged.sessions.len(),
        acknowledged.signed_up.len()
    );

    let port = free_port();
    let mut server = porter(dir.path(), port)
        .arg("serve")
        .spawn()
        .expect("porter serves again");
    let base = format!("http://127.0.0.1:{port}");
    wait_until_serving(&base).await;

    for (username, cookie) in &acknowledged.sessions {
        let browser = Browser::new();
        browser
            .cookies
            .borrow_mut()
            .insert("sessionid".into(), cookie.clone());
        let profile = browser.get(&base, "/profile").await;
        assert!(
            profile.status == Some(StatusCode::OK) && profile.body.contains(username.as_str()),
            "{username}'s acknowledged session survives the kill: {:?}",
            profile.status
        );
    }
    for username in &acknowledged.signed_up {
        assert!(
            Browser::new().sign_in(&base, username).await,
            "{username}, whose sign-up was acknowledged, can sign in"
        );
    }
    server.kill().expect("the server stops");
    let _ = server.wait();
}
