//! Several instances behind a load balancer: two real Porter servers on
//! different ports share one PostgreSQL database and one Redis. A session
//! made on one is honoured, ended and invalidated on the other, for the
//! `db` and `redis` engines. Needs PostgreSQL and Redis (see
//! `tests/api/services.rs`).

use std::{cell::RefCell, collections::BTreeMap, time::Duration};

use awc::{Client, http::StatusCode};
use porter::{
    auth::models::{self, NewUser},
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

async fn two_instances_share_sessions(engine: &str) {
    if !services::available("postgres") || !services::available("redis") {
        return;
    }
    let database = PostgresDatabase::create();
    let namespace = RedisNamespace::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings =
        |site_url: &str| instance_settings(&dir, &database, &namespace, engine, site_url);
    let a = start(settings).await;
    let b = start(settings).await;

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
    assert_eq!(
        replay.get(&format!("{a}/profile")).await.status,
        StatusCode::SEE_OTHER,
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
}

#[actix_web::test]
async fn two_instances_share_db_sessions() {
    two_instances_share_sessions("db").await;
}

#[actix_web::test]
async fn two_instances_share_redis_sessions() {
    two_instances_share_sessions("redis").await;
}
