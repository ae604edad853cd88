//! End-to-end tests in a real browser: headless Chromium driven through
//! WebDriver (Debian's `chromium` and `chromium-driver`, which `.ci/run`
//! installs). A user signs up, signs out, signs in through
//! `/login?next=/profile`, sees the profile, changes the password, revokes
//! another session, and an anonymous visitor is redirected; a person who
//! forgot the password resets it from the login page, reading the mail
//! from the `file:` backend; a staff member finds a user from the header's
//! Staff link and signs them out everywhere, and the user's other browser
//! is signed out; a person adds a passkey (ChromeDriver's virtual
//! authenticator, the WebDriver WebAuthn extension) and signs in with it
//! from the login page. Each page is saved as a screenshot under
//! `target/screenshots/`.
//!
//! Without a browser the test says it was skipped; under `CI=true` it fails.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use porter::{
    auth::models::{self, NewUser},
    startup::{AppState, Application},
    testing::{local_listener, mail::read_mail_dir, services, test_settings},
};

const PASSWORD: &str = "a browser passphrase";
const NEW_PASSWORD: &str = "a newer browser passphrase";

fn chromedriver() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMEDRIVER").ok(),
        Some("/usr/bin/chromedriver".into()),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|path| path.exists());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("chromedriver is required under CI=true (apt-get install chromium-driver)");
        }
        services::skipped("no chromedriver (apt-get install chromium chromium-driver)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(driver_url: &str) -> Client {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1024,900",
            ],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .expect("chromedriver starts a browser")
}

struct Pages {
    base: String,
    shots: PathBuf,
}

impl Pages {
    async fn shot(&self, client: &Client, name: &str) {
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    async fn visit(&self, client: &Client, path: &str) {
        client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("the page loads");
    }

    async fn fill(&self, client: &Client, fields: &[(&str, &str)]) {
        for (name, value) in fields {
            client
                .find(Locator::Css(&format!("input[name={name}]")))
                .await
                .expect("the field")
                .send_keys(value)
                .await
                .expect("typing");
        }
    }

    /// Clicks the form's button and waits for the next page to load.
    async fn submit(&self, client: &Client, form: &str) {
        let old_page = client.find(Locator::Css("html")).await.expect("a page");
        client
            .find(Locator::Css(&format!("{form} button[type=submit]")))
            .await
            .expect("the button")
            .click()
            .await
            .expect("clicking");
        let started = Instant::now();
        // The old page's element goes stale once the browser has moved on.
        while old_page.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the form did not submit"
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        while client
            .execute("return document.readyState", vec![])
            .await
            .ok()
            .and_then(|state| state.as_str().map(|s| s == "complete"))
            != Some(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the page did not load"
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn path(&self, client: &Client) -> String {
        let url = client.current_url().await.expect("a URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn text(&self, client: &Client) -> String {
        client.source().await.expect("the page source")
    }

    /// Asserts that the current page shows `text`.
    async fn assert_shows(&self, client: &Client, text: &str) {
        let page = self.text(client).await;
        assert!(
            page.contains(text),
            "expected {text:?} on {}",
            self.path(client).await
        );
    }
}

#[actix_web::test]
async fn a_person_signs_up_signs_in_changes_password_and_revokes_a_session() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The browser posts with `Origin: http://localhost:PORT`, so SITE_URL
    // must name the port this server really got.
    let (listener, base) = local_listener("localhost");
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &base)]);
    let app = Application::serve_on(AppState::new(settings).await.expect("state"), listener)
        .expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());

    let driver_port = free_port();
    let _driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs"),
    );
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    let started = Instant::now();
    while TcpListener::bind(("127.0.0.1", driver_port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    let pages = Pages { base, shots };
    let laptop = browser(&driver_url).await;

    // An anonymous visitor of the profile is sent to sign in.
    pages.visit(&laptop, "/profile").await;
    assert_eq!(pages.path(&laptop).await, "/login?next=/profile");
    pages.shot(&laptop, "01-login").await;

    // Sign up: signed in at once.
    pages.visit(&laptop, "/signup").await;
    pages
        .fill(
            &laptop,
            &[
                ("username", "grace"),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    pages.shot(&laptop, "02-signup").await;
    pages.submit(&laptop, "form").await;
    assert_eq!(pages.path(&laptop).await, "/profile");
    pages
        .assert_shows(&laptop, "Your account has been created")
        .await;
    pages.shot(&laptop, "03-profile").await;

    // Sign out.
    pages.submit(&laptop, "form[action='/logout']").await;
    assert_eq!(pages.path(&laptop).await, "/");
    pages
        .assert_shows(&laptop, "You have been signed out.")
        .await;
    pages.shot(&laptop, "04-home").await;

    // Sign in through login?next=/profile.
    pages.visit(&laptop, "/login?next=/profile").await;
    pages
        .fill(&laptop, &[("username", "grace"), ("password", PASSWORD)])
        .await;
    pages.submit(&laptop, "form.stacked").await;
    assert_eq!(pages.path(&laptop).await, "/profile");
    pages.assert_shows(&laptop, "grace").await;

    // A second browser signs in too; the first revokes it.
    let phone = browser(&driver_url).await;
    pages.visit(&phone, "/login").await;
    pages
        .fill(&phone, &[("username", "grace"), ("password", PASSWORD)])
        .await;
    pages.submit(&phone, "form.stacked").await;
    assert_eq!(pages.path(&phone).await, "/profile");

    pages.visit(&laptop, "/sessions").await;
    pages.shot(&laptop, "05-sessions").await;
    pages.submit(&laptop, "li.session:not(.current) form").await;
    pages
        .assert_shows(&laptop, "The session was signed out.")
        .await;
    pages.visit(&phone, "/profile").await;
    assert_eq!(
        pages.path(&phone).await,
        "/login?next=/profile",
        "the phone is signed out"
    );

    // Change the password: this browser stays signed in.
    pages.visit(&laptop, "/password").await;
    pages
        .fill(
            &laptop,
            &[
                ("old_password", PASSWORD),
                ("new_password1", NEW_PASSWORD),
                ("new_password2", NEW_PASSWORD),
            ],
        )
        .await;
    pages.submit(&laptop, "form").await;
    assert_eq!(pages.path(&laptop).await, "/profile");
    pages
        .assert_shows(&laptop, "Your password was changed")
        .await;
    pages.shot(&laptop, "06-password-changed").await;

    // The request trace, in debug.
    pages.visit(&laptop, "/debug/trace").await;
    pages
        .assert_shows(&laptop, "loaded when this page asked: grace")
        .await;
    pages.shot(&laptop, "07-trace").await;

    // An error page.
    pages.visit(&laptop, "/no/such/page").await;
    pages.assert_shows(&laptop, "Page not found").await;
    pages.shot(&laptop, "08-not-found").await;

    phone.close().await.expect("close");
    laptop.close().await.expect("close");
}

/// Starts chromedriver on a free port; returns it and its URL.
async fn start_driver(chromedriver: PathBuf) -> (Driver, String) {
    let driver_port = free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs"),
    );
    let started = Instant::now();
    while TcpListener::bind(("127.0.0.1", driver_port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, format!("http://127.0.0.1:{driver_port}"))
}

#[actix_web::test]
async fn a_person_who_forgot_the_password_resets_it_from_the_login_page() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (listener, base) = local_listener("localhost");
    // test_settings sends mail to `dir/mail`, one .eml file per mail.
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &base)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    models::create(
        &mut state.pool.get().expect("a connection"),
        &NewUser::new("ada", &hash, false).with_email("ada@example.com", true),
    )
    .expect("ada's account");
    let app = Application::serve_on(state, listener).expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());
    let (_driver, driver_url) = start_driver(chromedriver).await;

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    let pages = Pages { base, shots };
    let client = browser(&driver_url).await;

    // From the login page, "Forgot your password?".
    pages.visit(&client, "/login").await;
    client
        .find(Locator::LinkText("Forgot your password?"))
        .await
        .expect("the link")
        .click()
        .await
        .expect("clicking");
    let started = Instant::now();
    while pages.path(&client).await != "/password/reset" {
        assert!(started.elapsed() < Duration::from_secs(10), "no reset form");
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    pages.fill(&client, &[("email", "ada@example.com")]).await;
    pages.shot(&client, "09-forgot-password").await;
    pages.submit(&client, "form").await;
    assert_eq!(pages.path(&client).await, "/password/reset/done");
    pages.assert_shows(&client, "Check your mail").await;

    // The server's worker writes the mail; read the link from it.
    let mail_dir = dir.path().join("mail");
    let started = Instant::now();
    let link = loop {
        let link = read_mail_dir(&mail_dir)
            .iter()
            .find_map(|mail| mail.link(&format!("{}/password/reset/", pages.base)));
        if let Some(link) = link {
            break link;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no mail arrived"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    client.goto(&link).await.expect("the link opens");
    let path = pages.path(&client).await;
    assert!(
        path.ends_with("/set-password"),
        "the token left the address bar: {path}"
    );
    pages
        .fill(
            &client,
            &[
                ("new_password1", NEW_PASSWORD),
                ("new_password2", NEW_PASSWORD),
            ],
        )
        .await;
    pages.shot(&client, "10-choose-new-password").await;
    pages.submit(&client, "form").await;
    assert_eq!(pages.path(&client).await, "/login");
    pages
        .assert_shows(&client, "Your password has been set")
        .await;

    // Signed in with the new password.
    pages
        .fill(&client, &[("username", "ada"), ("password", NEW_PASSWORD)])
        .await;
    pages.submit(&client, "form.stacked").await;
    assert_eq!(pages.path(&client).await, "/profile");
    pages
        .assert_shows(&client, "ada@example.com (confirmed)")
        .await;
    pages.shot(&client, "11-signed-in-after-reset").await;

    client.close().await.expect("close");
}

#[actix_web::test]
async fn a_staff_member_finds_a_user_and_signs_them_out_everywhere() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (listener, base) = local_listener("localhost");
    let settings = test_settings(&dir, &[("SITE_URL", &base)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    {
        let mut conn = state.pool.get().expect("a connection");
        // A superuser is staff holding every permission.
        models::create(&mut conn, &NewUser::new("root", &hash, true)).expect("the superuser");
        models::create(&mut conn, &NewUser::new("mallory", &hash, false)).expect("the user");
    }
    let app = Application::serve_on(state, listener).expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());
    let (_driver, driver_url) = start_driver(chromedriver).await;
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    let pages = Pages { base, shots };

    // The user, signed in on another device.
    let phone = browser(&driver_url).await;
    pages.visit(&phone, "/login").await;
    pages
        .fill(&phone, &[("username", "mallory"), ("password", PASSWORD)])
        .await;
    pages.submit(&phone, "form.stacked").await;
    assert_eq!(pages.path(&phone).await, "/profile");

    // The staff member signs in and follows the header's link.
    let desk = browser(&driver_url).await;
    pages.visit(&desk, "/login").await;
    pages
        .fill(&desk, &[("username", "root"), ("password", PASSWORD)])
        .await;
    pages.submit(&desk, "form.stacked").await;
    desk.find(Locator::Css("header nav a[href='/staff/users']"))
        .await
        .expect("a Staff link in the header")
        .click()
        .await
        .expect("clicking");
    assert_eq!(pages.path(&desk).await, "/staff/users");

    // Finds the user and opens their page.
    pages.fill(&desk, &[("q", "mall")]).await;
    pages.submit(&desk, "form.search").await;
    assert_eq!(pages.path(&desk).await, "/staff/users?q=mall");
    pages.shot(&desk, "09-staff-users").await;
    desk.find(Locator::LinkText("mallory"))
        .await
        .expect("the user in the list")
        .click()
        .await
        .expect("clicking");
    pages.assert_shows(&desk, "Sign out everywhere").await;

    // Signs them out everywhere.
    pages
        .submit(&desk, "form[action$='/sign-out-everywhere']")
        .await;
    pages
        .assert_shows(
            &desk,
            "mallory is signed out everywhere (1 session(s) ended)",
        )
        .await;
    pages
        .assert_shows(&desk, "Signed out everywhere by staff")
        .await;
    pages.shot(&desk, "10-staff-user").await;

    // The user's other browser is signed out.
    pages.visit(&phone, "/profile").await;
    assert_eq!(
        pages.path(&phone).await,
        "/login?next=/profile",
        "the phone is signed out"
    );

    phone.close().await.expect("close");
    desk.close().await.expect("close");
}

/// A WebDriver extension command fantoccini has no method for: WebAuthn's
/// virtual authenticators (`/session/{id}/webauthn/...`).
#[derive(Debug)]
struct WebAuthnCommand {
    path: &'static str,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// Waits until the browser has left `from`; if it has not within a few
/// seconds, clicks `selector` (whose form `passkeys.js` handles) and waits
/// again. On the login page, a browser offering conditional UI signs in by
/// itself: the virtual authenticator picks the only passkey, as a person
/// would pick it from the username field's suggestions.
async fn leave_or_click(pages: &Pages, client: &Client, from: &str, selector: &str) {
    let started = Instant::now();
    let mut clicked = false;
    while pages.path(client).await == from {
        if !clicked && started.elapsed() > Duration::from_secs(3) {
            clicked = true;
            // The page may move on meanwhile: then the button is gone.
            if let Ok(button) = client.find(Locator::Css(selector)).await {
                let _ = button.click().await;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the passkey did not sign in from {from}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_person_adds_a_passkey_and_signs_in_with_it_from_the_login_page() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    // WebAuthn needs a secure context: http://localhost is one, and the
    // relying party id (SITE_URL's host) must be the page's host.
    let (listener, base) = local_listener("localhost");
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &base)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    models::create(
        &mut state.pool.get().expect("a connection"),
        &NewUser::new("lin", &hash, false),
    )
    .expect("lin's account");
    let app = Application::serve_on(state, listener).expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());
    let (_driver, driver_url) = start_driver(chromedriver).await;

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    let pages = Pages { base, shots };
    let client = browser(&driver_url).await;
    // A platform authenticator that keeps discoverable credentials and
    // verifies its user (as a fingerprint would) without asking.
    client
        .issue_cmd(WebAuthnCommand {
            path: "authenticator",
            body: serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        })
        .await
        .expect("a virtual authenticator");

    // Signed in with the password, add a passkey on the security page.
    pages.visit(&client, "/login").await;
    pages
        .fill(&client, &[("username", "lin"), ("password", PASSWORD)])
        .await;
    pages.submit(&client, "form.stacked").await;
    assert_eq!(pages.path(&client).await, "/profile");
    pages.visit(&client, "/security").await;
    pages.fill(&client, &[("name", "Headless")]).await;
    pages.shot(&client, "12-security").await;
    client
        .find(Locator::Css("form[data-passkey=register] button"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("clicking");
    let started = Instant::now();
    while !pages
        .text(&client)
        .await
        .contains("Your passkey was added.")
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the passkey was not added: {}",
            pages.text(&client).await
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    pages.assert_shows(&client, "Headless").await;
    pages.shot(&client, "13-passkey-added").await;

    // Signed out, sign in from the login page without typing a username.
    pages.visit(&client, "/profile").await;
    pages.submit(&client, "form[action='/logout']").await;
    pages.visit(&client, "/login?next=/security").await;
    leave_or_click(
        &pages,
        &client,
        "/login?next=/security",
        "form[data-passkey=sign-in] button",
    )
    .await;
    assert_eq!(pages.path(&client).await, "/security");
    pages.assert_shows(&client, "Headless").await;
    pages.shot(&client, "14-signed-in-with-a-passkey").await;

    client.close().await.expect("close");
}
