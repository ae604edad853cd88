//! Secrets never reach the log: passwords, session keys and the secret key
//! are absent from everything Porter logs, at every level, through a whole
//! account's life; attacks (tampered cookies, forged POSTs) are logged as
//! rate-limited security events. Its own test binary, because it installs a
//! global tracing subscriber.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use actix_web::{
    cookie::Cookie,
    http::header,
    test::{self, TestRequest},
};
use porter::{
    startup::{AppState, build_app},
    testing::test_settings,
};

const SECRET_KEY: &str =
    "log-test-secret-key-0123456789abcdef-log-test-secret-key-0123456789abcdef";
const PASSWORD: &str = "hunter2 is my password";
const WRONG_PASSWORD: &str = "i typed my password into the username box";

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn token(body: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).expect("a token") + marker.len();
    body[start..start + body[start..].find('"').expect("quote")].to_owned()
}

#[actix_web::test]
async fn secrets_never_reach_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = test_settings(
        &dir,
        &[
            ("DEBUG", "true"),
            ("COOKIE_SECURE", "true"),
            ("SECRET_KEY", SECRET_KEY),
        ],
    );
    let state = AppState::new(settings).await.expect("state");
    let app = test::init_service(build_app(&state)).await;

    let mut cookies: Vec<Cookie<'static>> = Vec::new();
    let mut session_key_values = Vec::new();
    macro_rules! send {
        ($req:expr) => {{
            let mut req = $req;
            for cookie in &cookies {
                req = req.cookie(cookie.clone());
            }
            let res = test::call_service(&app, req.to_request()).await;
            for value in res.headers().get_all(header::SET_COOKIE) {
                let cookie = Cookie::parse_encoded(value.to_str().expect("ascii").to_owned())
                    .expect("a cookie");
                if cookie.name() == "sessionid" && cookie.value().len() > 64 {
                    session_key_values.push(cookie.value().to_owned());
                }
                cookies.retain(|c| c.name() != cookie.name());
                if !cookie.value().is_empty() {
                    cookies.push(Cookie::new(
                        cookie.name().to_owned(),
                        cookie.value().to_owned(),
                    ));
                }
            }
            String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8")
        }};
    }

    let form = send!(TestRequest::get().uri("/signup"));
    send!(TestRequest::post().uri("/signup").set_form([
        ("csrf_token", token(&form).as_str()),
        ("username", "alice"),
        ("password1", PASSWORD),
        ("password2", PASSWORD),
    ]));
    let profile = send!(TestRequest::get().uri("/profile"));
    send!(
        TestRequest::post()
            .uri("/logout")
            .set_form([("csrf_token", token(&profile).as_str())])
    );
    let form = send!(TestRequest::get().uri("/login"));
    send!(TestRequest::post().uri("/login").set_form([
        ("csrf_token", token(&form).as_str()),
        ("username", WRONG_PASSWORD),
        ("password", "x"),
    ]));
    let form = send!(TestRequest::get().uri("/login"));
    send!(TestRequest::post().uri("/login").set_form([
        ("csrf_token", token(&form).as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ]));
    send!(TestRequest::get().uri("/profile"));

    // Tampered cookies are anonymous, logged as security events at most
    // once per period, never as errors.
    for _ in 0..5 {
        let res = test::call_service(
            &app,
            TestRequest::get()
                .uri("/")
                .cookie(Cookie::new("sessionid", "forged-value"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), actix_web::http::StatusCode::OK);
    }

    // Forged POSTs: refused, and reported like tampered cookies.
    for _ in 0..5 {
        let res = test::call_service(
            &app,
            TestRequest::post()
                .uri("/logout")
                .set_form([("csrf_token", "forged")])
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), actix_web::http::StatusCode::FORBIDDEN);
    }

    let debug_output = format!("{state:?}");
    let log = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
    assert!(log.contains("user logged in"), "the log was captured");
    assert!(!session_key_values.is_empty());

    for (what, secret) in [
        ("the password", PASSWORD),
        ("a password typed as a username", WRONG_PASSWORD),
        ("the secret key", SECRET_KEY),
    ] {
        assert!(!log.contains(secret), "{what} is in the log");
        assert!(!debug_output.contains(secret), "{what} is in Debug output");
    }
    for value in &session_key_values {
        // The cookie value holds the key after a 44-character signature.
        let key = &value[value.len().saturating_sub(64)..];
        if let Some(at) = log.find(key) {
            let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let context = &log[line_start.max(at.saturating_sub(700))..(at + 100).min(log.len())];
            panic!("a session key is in the log: …{context}…");
        }
    }
    assert!(!log.contains("$argon2id$"), "a password hash is in the log");

    let tamper_reports = log
        .lines()
        .filter(|line| line.contains("security event: a session cookie failed its signature check"))
        .count();
    assert_eq!(tamper_reports, 1, "rate-limited to one line");
    let csrf_reports: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("CSRF verification failed"))
        .collect();
    assert_eq!(csrf_reports.len(), 1, "rate-limited: {csrf_reports:?}");
    assert!(
        csrf_reports[0].contains("porter::security")
            && csrf_reports[0].contains("the CSRF cookie is missing"),
        "a security event with its reason: {}",
        csrf_reports[0]
    );
    assert!(
        !log.lines().any(|line| line.contains("ERROR")),
        "nothing logged as an error"
    );

    // DEBUG with COOKIE_SECURE over plain http: the log says why the
    // browser will not keep the cookie.
    assert!(log.contains("the browser will drop it"), "{log}");
}
