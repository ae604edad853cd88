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
//! Every page is also checked for accessibility: axe-core (`tests/axe/`,
//! vendored, MPL-2.0) runs on it, signed out and signed in, in the light
//! and the dark colour scheme, at a desktop and a phone's width (360 px,
//! where nothing may scroll sideways); any violation fails the test.
//!
//! Without a browser the test says it was skipped; under `CI=true` it fails.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use porter::{
    auth::models::{self, NewUser},
    startup::{AppState, Application},
    testing::{local_listener, mail::read_mail_dir, services, test_settings},
};

const PASSWORD: &str = "a browser passphrase";
/// axe-core 4.14.1, from npm (`npm pack axe-core@4.14.1`), unmodified:
/// pinned, offline, the same on every run. Its licence is beside it.
const AXE: &str = include_str!("axe/axe.min.js");
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

/// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`:
/// WebDriver itself cannot ask for the dark colour scheme.
#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// How a page is looked at: colour scheme and window width.
#[derive(Debug, Clone, Copy)]
struct View {
    dark: bool,
    phone: bool,
}

impl View {
    /// Every combination the accessibility walk checks.
    const ALL: [Self; 4] = [
        Self {
            dark: false,
            phone: false,
        },
        Self {
            dark: true,
            phone: false,
        },
        Self {
            dark: false,
            phone: true,
        },
        Self {
            dark: true,
            phone: true,
        },
    ];
    /// The phone's width, in CSS pixels.
    const PHONE_WIDTH: u32 = 360;

    fn name(self) -> String {
        format!(
            "{}-{}",
            if self.dark { "dark" } else { "light" },
            if self.phone { "phone" } else { "desktop" }
        )
    }

    /// Switches `client` to this view; the page shown need not reload.
    async fn apply(self, client: &Client) {
        let scheme = if self.dark { "dark" } else { "light" };
        client
            .issue_cmd(DevTools {
                cmd: "Emulation.setEmulatedMedia",
                params: serde_json::json!({
                    "features": [{ "name": "prefers-color-scheme", "value": scheme }]
                }),
            })
            .await
            .expect("chromedriver emulates the colour scheme");
        let (width, height) = if self.phone {
            (Self::PHONE_WIDTH, 780)
        } else {
            (1024, 900)
        };
        client
            .set_window_size(width, height)
            .await
            .expect("the window resizes");
        if self.phone {
            let inner = client
                .execute("return window.innerWidth", vec![])
                .await
                .expect("the viewport width");
            assert_eq!(inner.as_u64(), Some(u64::from(Self::PHONE_WIDTH)));
        }
    }
}

/// Runs axe-core on the page `client` shows; the violations, in words.
async fn axe_violations(client: &Client) -> Vec<String> {
    // Scripts run through WebDriver are not the page's: the CSP, which
    // allows no inline script, does not apply to them.
    let loaded = client
        .execute(
            &format!("{AXE}\nreturn typeof window.axe === 'object';"),
            vec![],
        )
        .await
        .expect("axe-core loads");
    assert_eq!(loaded.as_bool(), Some(true), "axe-core did not load");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
                .then(r => done(r.violations.map(v =>
                    `${v.id} (${v.impact}): ${v.help}; ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
                .catch(e => done([`axe failed: ${e}`]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    result
        .as_array()
        .expect("a list of violations")
        .iter()
        .map(|violation| violation.as_str().unwrap_or_default().to_owned())
        .collect()
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
        self.wait_for_next_page(client, old_page).await;
    }

    /// Waits until `old_page` is gone and the next page has loaded.
    async fn wait_for_next_page(&self, client: &Client, old_page: fantoccini::elements::Element) {
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

    /// Asserts that `client` is at `expected` (path and query); otherwise
    /// fails with what the page says, so that a wrong turn shows its cause
    /// (an error list, a refusal, an error page).
    async fn assert_at(&self, client: &Client, expected: &str) {
        let path = self.path(client).await;
        if path != expected {
            let said = client
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .ok()
                .and_then(|text| text.as_str().map(str::to_owned))
                .unwrap_or_default();
            panic!("expected to be at {expected}, but at {path}, which says:\n{said}");
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

impl Pages {
    /// Checks the page `client` shows in every [`View`]: no axe violation,
    /// and at a phone's width nothing wider than the screen. Saves a
    /// screenshot of each view under `target/screenshots/views/`, and
    /// leaves the browser in the light desktop view.
    async fn assert_accessible(&self, client: &Client, name: &str) {
        let dir = self.shots.join("views");
        std::fs::create_dir_all(&dir).expect("a screenshot folder");
        let mut problems = Vec::new();
        for view in View::ALL {
            view.apply(client).await;
            for violation in axe_violations(client).await {
                problems.push(format!("{}: {violation}", view.name()));
            }
            if view.phone {
                let overflow = client
                    .execute(
                        "const root = document.documentElement;
                         return root.scrollWidth - root.clientWidth;",
                        vec![],
                    )
                    .await
                    .expect("the page width");
                if overflow.as_i64().unwrap_or_default() > 0 {
                    problems.push(format!(
                        "{}: the page scrolls sideways by {overflow} px",
                        view.name()
                    ));
                }
            }
            let png = client.screenshot().await.expect("a screenshot");
            std::fs::write(dir.join(format!("{name}-{}.png", view.name())), png)
                .expect("save the screenshot");
        }
        View::ALL[0].apply(client).await;
        assert!(
            problems.is_empty(),
            "{name} ({}) is not accessible:\n{}",
            self.path(client).await,
            problems.join("\n")
        );
    }

    /// Submits the form without the browser's own checks (`required`,
    /// `type=email`), as a script would: the server's answer is the point.
    async fn submit_unchecked(&self, client: &Client, form: &str) {
        let old_page = client.find(Locator::Css("html")).await.expect("a page");
        client
            .execute(
                "document.querySelector(arguments[0]).submit();",
                vec![serde_json::Value::String(form.to_owned())],
            )
            .await
            .expect("submitting");
        self.wait_for_next_page(client, old_page).await;
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
    let site = local_listener("localhost");
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &site.1)]);
    let state = AppState::new(settings).await.expect("state");
    let (_driver, driver_url, pages) = open_site(state, site, chromedriver).await;
    let laptop = browser(&driver_url).await;

    // An anonymous visitor of the profile is sent to sign in.
    pages.visit(&laptop, "/profile").await;
    pages.assert_at(&laptop, "/login?next=/profile").await;
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
    pages.submit(&laptop, "main form").await;
    pages.assert_at(&laptop, "/profile").await;
    pages
        .assert_shows(&laptop, "Your account has been created")
        .await;
    pages.shot(&laptop, "03-profile").await;

    // Sign out.
    pages.submit(&laptop, "form[action='/logout']").await;
    pages.assert_at(&laptop, "/").await;
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
    pages.assert_at(&laptop, "/profile").await;
    pages.assert_shows(&laptop, "grace").await;

    // A second browser signs in too; the first revokes it.
    let phone = browser(&driver_url).await;
    pages.visit(&phone, "/login").await;
    pages
        .fill(&phone, &[("username", "grace"), ("password", PASSWORD)])
        .await;
    pages.submit(&phone, "form.stacked").await;
    pages.assert_at(&phone, "/profile").await;

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
    pages.submit(&laptop, "main form").await;
    pages.assert_at(&laptop, "/profile").await;
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

/// Serves `state` on `listener` (whose address is `base`), starts
/// chromedriver and readies the screenshot folder: what every test here
/// does once its users exist. Keep the `Driver`: dropping it stops
/// chromedriver.
async fn open_site(
    state: AppState,
    (listener, base): (std::net::TcpListener, String),
    chromedriver: PathBuf,
) -> (Driver, String, Pages) {
    let app = Application::serve_on(state, listener).expect("serve");
    actix_web::rt::spawn(app.run_until_stopped());
    let (driver, driver_url) = start_driver(chromedriver).await;
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    (driver, driver_url, Pages { base, shots })
}

#[actix_web::test]
async fn a_person_who_forgot_the_password_resets_it_from_the_login_page() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let site = local_listener("localhost");
    // test_settings sends mail to `dir/mail`, one .eml file per mail.
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &site.1)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    models::create(
        &mut state.pool.get().expect("a connection"),
        &NewUser::new("ada", &hash, false).with_email("ada@example.com", true),
    )
    .expect("ada's account");
    let (_driver, driver_url, pages) = open_site(state, site, chromedriver).await;
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
    pages.submit(&client, "main form").await;
    pages.assert_at(&client, "/password/reset/done").await;
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
    // Reached only through a mailed link, so checked here rather than in
    // the accessibility walk.
    pages
        .assert_accessible(&client, "password-reset-set-password")
        .await;
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
    pages.submit(&client, "main form").await;
    pages.assert_at(&client, "/login").await;
    pages
        .assert_shows(&client, "Your password has been set")
        .await;

    // Signed in with the new password.
    pages
        .fill(&client, &[("username", "ada"), ("password", NEW_PASSWORD)])
        .await;
    pages.submit(&client, "form.stacked").await;
    pages.assert_at(&client, "/profile").await;
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
    let site = local_listener("localhost");
    let settings = test_settings(&dir, &[("SITE_URL", &site.1)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    {
        let mut conn = state.pool.get().expect("a connection");
        // A superuser is staff holding every permission.
        models::create(&mut conn, &NewUser::new("root", &hash, true)).expect("the superuser");
        models::create(&mut conn, &NewUser::new("mallory", &hash, false)).expect("the user");
    }
    let (_driver, driver_url, pages) = open_site(state, site, chromedriver).await;

    // The user, signed in on another device.
    let phone = browser(&driver_url).await;
    pages.visit(&phone, "/login").await;
    pages
        .fill(&phone, &[("username", "mallory"), ("password", PASSWORD)])
        .await;
    pages.submit(&phone, "form.stacked").await;
    pages.assert_at(&phone, "/profile").await;

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
    pages.assert_at(&desk, "/staff/users").await;

    // Finds the user and opens their page.
    pages.fill(&desk, &[("q", "mall")]).await;
    pages.submit(&desk, "form.search").await;
    pages.assert_at(&desk, "/staff/users?q=mall").await;
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
    let site = local_listener("localhost");
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &site.1)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    models::create(
        &mut state.pool.get().expect("a connection"),
        &NewUser::new("lin", &hash, false),
    )
    .expect("lin's account");
    let (_driver, driver_url, pages) = open_site(state, site, chromedriver).await;
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
    pages.assert_at(&client, "/profile").await;
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
    pages.assert_at(&client, "/security").await;
    pages.assert_shows(&client, "Headless").await;
    pages.shot(&client, "14-signed-in-with-a-passkey").await;

    client.close().await.expect("close");
}

/// The pages a visitor can reach, as `(name, path)`: the accessibility
/// walk checks each. A new page is one line here.
const VISITOR_PAGES: &[(&str, &str)] = &[
    ("home", "/"),
    ("login", "/login?next=/profile"),
    ("signup", "/signup"),
    ("password-reset", "/password/reset"),
    ("password-reset-done", "/password/reset/done"),
    (
        "password-reset-link-invalid",
        "/password/reset/MQ/0-invalid",
    ),
    ("email-confirm-link-invalid", "/email/confirm/MQ/0-invalid"),
    ("trace", "/debug/trace"),
    ("not-found", "/no/such/page"),
    ("method-not-allowed", "/logout"),
];

/// The pages of a signed-in user, as `(name, path)`; one line each.
const MEMBER_PAGES: &[(&str, &str)] = &[
    ("home-signed-in", "/"),
    ("profile", "/profile"),
    ("password", "/password"),
    ("email", "/email"),
    ("sessions", "/sessions"),
    ("security", "/security"),
    ("trace-signed-in", "/debug/trace"),
    ("source", "/debug/source/src/auth/middleware.rs"),
    ("not-found-signed-in", "/no/such/page"),
];

#[actix_web::test]
async fn every_page_passes_axe_in_both_colour_schemes_at_desktop_and_phone_widths() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let site = local_listener("localhost");
    let settings = test_settings(&dir, &[("DEBUG", "true"), ("SITE_URL", &site.1)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("a hash");
    let mut conn = state.pool.get().expect("a connection");
    let grace = models::create(
        &mut conn,
        &NewUser::new("grace", &hash, false).with_email("grace@example.com", true),
    )
    .expect("grace's account");
    // A superuser, for the staff area (and the header's "Staff" link).
    models::create(&mut conn, &NewUser::new("ada", &hash, true)).expect("ada's account");
    drop(conn);
    let (_driver, driver_url, pages) = open_site(state, site, chromedriver).await;

    let visitor = browser(&driver_url).await;
    for (name, path) in VISITOR_PAGES {
        pages.visit(&visitor, path).await;
        pages.assert_accessible(&visitor, name).await;
    }
    // Forms that went wrong: every error shown, each tied to its field.
    pages.visit(&visitor, "/signup").await;
    pages
        .fill(
            &visitor,
            &[
                ("username", "no spaces allowed"),
                ("email", "not an address"),
                ("password1", "short"),
                ("password2", "different"),
            ],
        )
        .await;
    pages.submit_unchecked(&visitor, "form.stacked").await;
    pages
        .assert_shows(&visitor, "Please correct the errors")
        .await;
    pages.assert_accessible(&visitor, "signup-errors").await;
    pages.visit(&visitor, "/login").await;
    pages
        .fill(&visitor, &[("username", "nobody"), ("password", "wrong")])
        .await;
    pages.submit(&visitor, "form.stacked").await;
    pages.assert_shows(&visitor, "Please enter a correct").await;
    pages.assert_accessible(&visitor, "login-failed").await;
    pages.visit(&visitor, "/password/reset").await;
    pages.fill(&visitor, &[("email", "not an address")]).await;
    pages.submit_unchecked(&visitor, "form.stacked").await;
    pages
        .assert_accessible(&visitor, "password-reset-error")
        .await;
    // A POST without its token: the 403 page.
    pages.visit(&visitor, "/").await;
    let old_page = visitor.find(Locator::Css("html")).await.expect("a page");
    visitor
        .execute(
            "const form = document.createElement('form');
             form.method = 'post'; form.action = '/logout';
             document.body.append(form); form.submit();",
            vec![],
        )
        .await
        .expect("posting");
    pages.wait_for_next_page(&visitor, old_page).await;
    pages
        .assert_shows(&visitor, "CSRF verification failed")
        .await;
    pages.assert_accessible(&visitor, "forbidden").await;

    let member = browser(&driver_url).await;
    pages.visit(&member, "/login").await;
    pages
        .fill(&member, &[("username", "grace"), ("password", PASSWORD)])
        .await;
    pages.submit(&member, "form.stacked").await;
    pages.assert_at(&member, "/profile").await;
    // A second session, so that "your sessions" lists one to revoke.
    pages.visit(&visitor, "/login").await;
    pages
        .fill(&visitor, &[("username", "grace"), ("password", PASSWORD)])
        .await;
    pages.submit(&visitor, "form.stacked").await;
    for (name, path) in MEMBER_PAGES {
        pages.visit(&member, path).await;
        pages.assert_accessible(&member, name).await;
    }
    pages.visit(&member, "/password").await;
    pages
        .fill(
            &member,
            &[
                ("old_password", PASSWORD),
                ("new_password1", "short"),
                ("new_password2", "different"),
            ],
        )
        .await;
    pages.submit(&member, "form.stacked").await;
    pages
        .assert_shows(&member, "Please correct the errors")
        .await;
    pages.assert_accessible(&member, "password-errors").await;
    pages.visit(&member, "/email").await;
    pages
        .fill(
            &member,
            &[("email", "not an address"), ("password", PASSWORD)],
        )
        .await;
    pages.submit_unchecked(&member, "form.stacked").await;
    pages
        .assert_shows(&member, "Please correct the errors")
        .await;
    pages.assert_accessible(&member, "email-errors").await;

    // The staff area, seen by a superuser: every page, and grace's.
    let staff = browser(&driver_url).await;
    pages.visit(&staff, "/login").await;
    pages
        .fill(&staff, &[("username", "ada"), ("password", PASSWORD)])
        .await;
    pages.submit(&staff, "form.stacked").await;
    let grace_page = format!("/staff/users/{}", grace.id);
    for (name, path) in [
        ("staff-users", "/staff/users"),
        ("staff-user", grace_page.as_str()),
        ("staff-events", "/staff/events"),
    ] {
        pages.visit(&staff, path).await;
        pages.assert_accessible(&staff, name).await;
    }

    staff.close().await.expect("close");
    member.close().await.expect("close");
    visitor.close().await.expect("close");
}
