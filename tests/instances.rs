//! Several instances behind a load balancer: two real Porter servers on
//! different ports share one PostgreSQL database and one Redis. A session
//! made on one is honoured, ended and invalidated on the other, and the two
//! agree on every listing and revocation, for every engine; a revocation
//! made through one is seen by the other on the very next request, however
//! warm. Needs PostgreSQL and Redis (see `tests/api/services.rs`).

use std::{cell::RefCell, collections::BTreeMap, time::Duration};

use awc::{Client, http::StatusCode};
use porter::{
    auth::{
        grants,
        guards::login_url,
        models::{self, NewUser},
        permissions,
    },
    settings::Settings,
    startup::{AppState, Application},
};

use porter::testing::{
    local_listener,
    services::{self, PostgresDatabase, RedisNamespace},
    test_settings,
};

const PASSWORD: &str = "an instance passphrase";

/// A browser: a client that keeps cookies and does not follow redirects.
struct Browser {
    client: Client,
    cookies: RefCell<BTreeMap<String, String>>,
}

/// What a page showed.
struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(30))
                .finish(),
            cookies: RefCell::default(),
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

    fn finish(
        &self,
        status: StatusCode,
        headers: &awc::http::header::HeaderMap,
        body: &[u8],
    ) -> Page {
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
        Page {
            status,
            location: headers
                .get("location")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    async fn get(&self, url: &str) -> Page {
        let mut res = self
            .client
            .get(url)
            .insert_header(("cookie", self.cookie_header()))
            .send()
            .await
            .expect("GET answers");
        let body = res.body().limit(1 << 20).await.unwrap_or_default();
        self.finish(res.status(), res.headers(), &body)
    }

    /// Loads `form_url`, then posts `fields` with its CSRF token to `url`.
    async fn submit(&self, form_url: &str, url: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(form_url).await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = form.body.find(marker).expect("a token") + marker.len();
        let token = &form.body[start..start + form.body[start..].find('"').expect("quote")];
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", token));
        let mut res = self
            .client
            .post(url)
            .insert_header(("cookie", self.cookie_header()))
            .send_form(&fields)
            .await
            .expect("POST answers");
        let body = res.body().limit(1 << 20).await.unwrap_or_default();
        self.finish(res.status(), res.headers(), &body)
    }
}

/// The settings of one instance, reached at `site_url`; every instance
/// shares the rest.
fn instance_settings(
    dir: &tempfile::TempDir,
    database: &PostgresDatabase,
    namespace: &RedisNamespace,
    engine: &str,
    site_url: &str,
) -> Settings {
    let redis_url = services::redis_url();
    test_settings(
        dir,
        &[
            ("SITE_URL", site_url),
            ("DATABASE_URL", &database.url),
            ("SESSION_ENGINE", engine),
            ("REDIS_URL", &redis_url),
            ("REDIS_KEY_PREFIX", &namespace.prefix),
        ],
    )
}

/// Starts an instance on a port of its own; returns its base URL.
async fn start(settings: impl FnOnce(&str) -> Settings) -> String {
    let (listener, base) = local_listener("127.0.0.1");
    let state = AppState::new(settings(&base)).await.expect("state");
    let app = Application::serve_on(state, listener).expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());
    base
}

/// One engine's pair of instances at a time: each instance's pool holds 16
/// PostgreSQL connections, and four pairs at once (three pools each) would
/// ask more of the server than its 100.
static ONE_PAIR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two instances of one engine on one fresh PostgreSQL database (and one
/// Redis namespace), A and B by base URL; `None` when the services are
/// missing (a failure under CI=true).
struct Pair {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    database: PostgresDatabase,
    namespace: RedisNamespace,
    dir: tempfile::TempDir,
    engine: String,
    a: String,
    b: String,
}

impl Pair {
    async fn start(engine: &str) -> Option<Self> {
        if !services::available("postgres") || !services::available("redis") {
            return None;
        }
        let mut pair = Self {
            _turn: ONE_PAIR_AT_A_TIME.lock().await,
            database: PostgresDatabase::create(),
            namespace: RedisNamespace::new(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            engine: engine.to_owned(),
            a: String::new(),
            b: String::new(),
        };
        pair.a = start(|site_url| pair.settings(site_url)).await;
        pair.b = start(|site_url| pair.settings(site_url)).await;
        Some(pair)
    }

    /// An instance's settings, serving at `site_url`.
    fn settings(&self, site_url: &str) -> Settings {
        instance_settings(
            &self.dir,
            &self.database,
            &self.namespace,
            &self.engine,
            site_url,
        )
    }
}

async fn two_instances_share_sessions(engine: &str) {
    let Some(pair) = Pair::start(engine).await else {
        return;
    };
    let (a, b) = (pair.a.clone(), pair.b.clone());
    let settings = |site_url: &str| pair.settings(site_url);

    let state = AppState::new(settings(&a)).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("hash");
    models::create(
        &mut state.pool.get().expect("connection"),
        &NewUser::new("alice", &hash, false),
    )
    .expect("user");
    let credentials = [("username", "alice"), ("password", PASSWORD)];

    // Log in through A, use the cookie on B.
    let laptop = Browser::new();
    let login = laptop
        .submit(&format!("{a}/login"), &format!("{a}/login"), &credentials)
        .await;
    assert_eq!(login.location.as_deref(), Some("/profile"), "{engine}");
    let profile = laptop.get(&format!("{b}/profile")).await;
    assert_eq!(
        profile.status,
        StatusCode::OK,
        "{engine}: B honours A's session"
    );
    assert!(profile.body.contains("alice"));

    // Log out on B: A refuses the cookie.
    let copied = laptop.cookies.borrow().clone();
    laptop
        .submit(&format!("{b}/profile"), &format!("{b}/logout"), &[])
        .await;
    let replay = Browser::new();
    *replay.cookies.borrow_mut() = copied;
    // Documented: a cookie session lives in the cookie, so a copy taken
    // before logout stays valid until "sign out everywhere" or its
    // absolute lifetime ends it.
    let expected = if engine == "cookie" {
        StatusCode::OK
    } else {
        StatusCode::SEE_OTHER
    };
    assert_eq!(
        replay.get(&format!("{a}/profile")).await.status,
        expected,
        "{engine}: A refuses a session ended on B"
    );

    // Change the password on A: the session on B ends.
    let phone = Browser::new();
    phone
        .submit(&format!("{b}/login"), &format!("{b}/login"), &credentials)
        .await;
    laptop
        .submit(&format!("{a}/login"), &format!("{a}/login"), &credentials)
        .await;
    assert_eq!(
        phone.get(&format!("{b}/profile")).await.status,
        StatusCode::OK
    );
    let changed = laptop
        .submit(
            &format!("{a}/password"),
            &format!("{a}/password"),
            &[
                ("old_password", PASSWORD),
                ("new_password1", "a new instance passphrase"),
                ("new_password2", "a new instance passphrase"),
            ],
        )
        .await;
    assert_eq!(changed.location.as_deref(), Some("/profile"), "{engine}");
    assert_eq!(
        phone.get(&format!("{b}/profile")).await.status,
        StatusCode::SEE_OTHER,
        "{engine}: the password change on A ends the session on B"
    );
    assert_eq!(
        laptop.get(&format!("{b}/profile")).await.status,
        StatusCode::OK
    );

    // The two agree on "your sessions": the same list, and a session ended
    // through one is gone on the other.
    let credentials = [
        ("username", "alice"),
        ("password", "a new instance passphrase"),
    ];
    let tablet = Browser::new();
    tablet
        .submit(&format!("{b}/login"), &format!("{b}/login"), &credentials)
        .await;
    let phone = Browser::new();
    phone
        .submit(&format!("{a}/login"), &format!("{a}/login"), &credentials)
        .await;
    let on_a = laptop.get(&format!("{a}/sessions")).await.body;
    let on_b = laptop.get(&format!("{b}/sessions")).await.body;
    if engine == "cookie" {
        assert!(on_a.contains("cannot sign out one other browser alone"));
    } else {
        let listed = revoke_paths(&on_a);
        assert_eq!(listed.len(), 2, "{engine}: two other sessions, listed on A");
        assert_eq!(listed, revoke_paths(&on_b), "{engine}: B lists the same");
        // The one that the phone lists too is the tablet's.
        let from_phone = revoke_paths(&phone.get(&format!("{b}/sessions")).await.body);
        let tablets = listed
            .iter()
            .find(|path| from_phone.contains(path))
            .expect("the tablet's session")
            .clone();
        let revoked = laptop
            .submit(&format!("{a}/sessions"), &format!("{a}{tablets}"), &[])
            .await;
        assert_eq!(revoked.location.as_deref(), Some("/sessions"), "{engine}");
        assert_eq!(
            tablet.get(&format!("{b}/profile")).await.status,
            StatusCode::SEE_OTHER,
            "{engine}: revoked on A, ended on B"
        );
        let on_b = laptop.get(&format!("{b}/sessions")).await.body;
        assert_eq!(
            revoke_paths(&on_b).len(),
            1,
            "{engine}: B lists the phone alone"
        );
    }
    // "Sign out everywhere else" on B ends the phone's session on A, on
    // every engine (the cookie engine's by the shared session generation).
    let ended = laptop
        .submit(
            &format!("{b}/sessions"),
            &format!("{b}/sessions/revoke-others"),
            &[],
        )
        .await;
    assert_eq!(ended.location.as_deref(), Some("/sessions"), "{engine}");
    for (browser, base) in [(&phone, &a), (&tablet, &b)] {
        assert_eq!(
            browser.get(&format!("{base}/profile")).await.status,
            StatusCode::SEE_OTHER,
            "{engine}: signed out everywhere"
        );
    }
    assert_eq!(
        laptop.get(&format!("{a}/profile")).await.status,
        StatusCode::OK,
        "{engine}: this session stays, on both"
    );
    if engine != "cookie" {
        let on_a = laptop.get(&format!("{a}/sessions")).await.body;
        assert!(
            revoke_paths(&on_a).is_empty(),
            "{engine}: A lists this one alone"
        );
    }
}

/// Signs `name` in on the instance at `base`, through the login form.
async fn sign_in(browser: &Browser, base: &str, name: &str, password: &str) {
    let page = browser
        .submit(
            &format!("{base}/login"),
            &format!("{base}/login"),
            &[("username", name), ("password", password)],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/profile"),
        "{name} signs in"
    );
}

/// Loads `url` twice and insists on `status` both times: whatever the
/// instance could cache about this browser is now warm.
async fn warm(browser: &Browser, url: &str, status: StatusCode) {
    for _ in 0..2 {
        assert_eq!(browser.get(url).await.status, status, "before: {url}");
    }
}

/// A revocation made through B is seen by A on the very next request,
/// though A has just served the same browser twice (so anything A could
/// cache about it is warm): a permission revoked in B's staff area, a
/// password changed on B's page, a session revoked from B's "your
/// sessions". Both instances live in this test's process, so a cache in a
/// process-wide static that B's own writes invalidate would slip past
/// here; `tests/api/revocation_seen.rs` changes the database from a
/// separate process (the `porter` CLI) for that.
async fn a_revocation_on_b_is_seen_by_a_warm_session_on_a(engine: &str) {
    let Some(pair) = Pair::start(engine).await else {
        return;
    };
    let (a, b) = (pair.a.clone(), pair.b.clone());
    let settings = |site_url: &str| pair.settings(site_url);

    // alice: staff holding `users.view`; root: a superuser.
    let state = AppState::new(settings(&a)).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("hash");
    let alice_id = {
        let mut conn = state.pool.get().expect("connection");
        let alice = models::create(&mut conn, &NewUser::new("alice", &hash, false)).expect("user");
        models::set_staff(&mut conn, alice.id, true).expect("staff");
        let view = grants::find_permission(&mut conn, permissions::VIEW_USERS.codename)
            .expect("a query")
            .expect("synced");
        grants::grant_to_user(&mut conn, alice.id, view.id).expect("grant");
        let root = models::create(&mut conn, &NewUser::new("root", &hash, false)).expect("user");
        models::set_superuser(&mut conn, root.id, true).expect("superuser");
        alice.id
    };
    let to_login = login_url("/profile");

    // A permission revoked in B's staff area: A's next staff page is 403.
    let laptop = Browser::new();
    sign_in(&laptop, &a, "alice", PASSWORD).await;
    warm(&laptop, &format!("{a}/staff/users"), StatusCode::OK).await;
    let admin = Browser::new();
    sign_in(&admin, &b, "root", PASSWORD).await;
    let her_page = format!("{b}/staff/users/{alice_id}");
    let revoked = admin
        .submit(
            &her_page,
            &format!("{her_page}/permissions/revoke"),
            &[("permission", permissions::VIEW_USERS.codename)],
        )
        .await;
    assert_eq!(
        revoked.status,
        StatusCode::SEE_OTHER,
        "{engine}: revoked on B"
    );
    let refused = laptop.get(&format!("{a}/staff/users")).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "{engine}: revoked on B, refused on A at once"
    );
    assert!(refused.body.contains("Permission denied"), "{engine}");

    // The password changed on B's page: A's next request signs her out.
    warm(&laptop, &format!("{a}/profile"), StatusCode::OK).await;
    let phone = Browser::new();
    sign_in(&phone, &b, "alice", PASSWORD).await;
    let new_password = "a new instance passphrase";
    let changed = phone
        .submit(
            &format!("{b}/password"),
            &format!("{b}/password"),
            &[
                ("old_password", PASSWORD),
                ("new_password1", new_password),
                ("new_password2", new_password),
            ],
        )
        .await;
    assert_eq!(changed.location.as_deref(), Some("/profile"), "{engine}");
    let next = laptop.get(&format!("{a}/profile")).await;
    assert_eq!(
        (next.status, next.location.as_deref()),
        (StatusCode::SEE_OTHER, Some(to_login.as_str())),
        "{engine}: the password changed on B signs A's session out at once"
    );

    // A session revoked from B's "your sessions": A's next request is
    // signed out.
    sign_in(&laptop, &a, "alice", new_password).await;
    warm(&laptop, &format!("{a}/profile"), StatusCode::OK).await;
    let others = revoke_paths(&phone.get(&format!("{b}/sessions")).await.body);
    assert_eq!(
        others.len(),
        1,
        "{engine}: the laptop's session, listed on B"
    );
    let ended = phone
        .submit(&format!("{b}/sessions"), &format!("{b}{}", others[0]), &[])
        .await;
    assert_eq!(ended.location.as_deref(), Some("/sessions"), "{engine}");
    let next = laptop.get(&format!("{a}/profile")).await;
    assert_eq!(
        (next.status, next.location.as_deref()),
        (StatusCode::SEE_OTHER, Some(to_login.as_str())),
        "{engine}: the session revoked on B is signed out on A at once"
    );
    assert_eq!(
        phone.get(&format!("{a}/profile")).await.status,
        StatusCode::OK,
        "{engine}: the revoking session stays"
    );
}

#[actix_web::test]
async fn a_revocation_on_one_db_instance_is_seen_by_the_other_on_the_next_request() {
    a_revocation_on_b_is_seen_by_a_warm_session_on_a("db").await;
}

#[actix_web::test]
async fn a_revocation_on_one_cached_db_instance_is_seen_by_the_other_on_the_next_request() {
    a_revocation_on_b_is_seen_by_a_warm_session_on_a("cached_db").await;
}

/// The revoke URLs on a "your sessions" page, one per other session.
fn revoke_paths(page: &str) -> Vec<String> {
    page.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|path| path.ends_with("/revoke"))
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn two_instances_share_db_sessions() {
    two_instances_share_sessions("db").await;
}

#[actix_web::test]
async fn two_instances_share_redis_sessions() {
    two_instances_share_sessions("redis").await;
}

#[actix_web::test]
async fn two_instances_share_cached_db_sessions() {
    two_instances_share_sessions("cached_db").await;
}

#[actix_web::test]
async fn two_instances_share_cookie_sessions() {
    two_instances_share_sessions("cookie").await;
}
