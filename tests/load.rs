//! 200 simultaneous logins against a real server on SQLite, each browser at
//! an address of its own: each is answered at once, signed in or told to
//! come back (`503` with `Retry-After`, when the queue of password work is
//! full), every one signs in in the end, and the server keeps answering
//! other requests meanwhile (argon2 work is bounded and off the async
//! workers). Its own test binary, so that it has the machine to itself.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use awc::{Client, Connector, http::StatusCode};
use porter::{
    auth::models::{self, NewUser},
    startup::{AppState, Application},
    testing::{local_listener, test_settings},
};

const LOGINS: usize = 200;
const USERS: usize = 20;
const PASSWORD: &str = "a load-test passphrase";

/// How long one answer may take: the queue is bounded, so nobody waits long.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How many times a browser told to come back tries again.
const TRIES: usize = 100;

/// One browser at `address` signing in: the form (for the CSRF cookie and
/// token), then the POST, again after `Retry-After` while the server is
/// busy. Returns where the server sent it and how often it was told to wait.
async fn sign_in(
    base: String,
    address: IpAddr,
    username: String,
) -> Result<(String, usize), String> {
    let client = Client::builder()
        .connector(Connector::new().local_address(address))
        .disable_redirects()
        .timeout(ANSWER_WITHIN)
        .finish();
    let mut busy = 0;
    for _ in 0..TRIES {
        match try_sign_in(&client, &base, &username).await? {
            Attempt::SignedIn(location) => return Ok((location, busy)),
            Attempt::Busy(retry_after) => {
                busy += 1;
                actix_web::rt::time::sleep(Duration::from_secs(retry_after)).await;
            }
        }
    }
    Err(format!("still busy after {TRIES} tries"))
}

enum Attempt {
    SignedIn(String),
    Busy(u64),
}

async fn try_sign_in(client: &Client, base: &str, username: &str) -> Result<Attempt, String> {
    let mut form = client
        .get(format!("{base}/login"))
        .send()
        .await
        .map_err(|err| format!("GET /login: {err}"))?;
    let csrf_cookie = form
        .headers()
        .get_all("set-cookie")
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("csrftoken="))
        .and_then(|rest| rest.split(';').next())
        .ok_or("no CSRF cookie")?
        .to_owned();
    let body = form.body().await.map_err(|err| format!("body: {err}"))?;
    let body = String::from_utf8_lossy(&body);
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).ok_or("no token")? + marker.len();
    let token = &body[start..start + body[start..].find('"').ok_or("no quote")?];

    let mut res = client
        .post(format!("{base}/login"))
        .insert_header(("cookie", format!("csrftoken={csrf_cookie}")))
        .send_form(&[
            ("csrf_token", token),
            ("username", username),
            ("password", PASSWORD),
        ])
        .await
        .map_err(|err| format!("POST /login: {err}"))?;
    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .ok_or("a 503 without Retry-After")?;
        return Ok(Attempt::Busy(retry_after));
    }
    if res.status() != StatusCode::SEE_OTHER {
        let body = res.body().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        let message = body
            .split("role=\"alert\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or("no message");
        return Err(format!("POST /login answered {}: {message}", res.status()));
    }
    Ok(Attempt::SignedIn(
        res.headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    ))
}

#[actix_web::test]
async fn two_hundred_simultaneous_logins_are_answered_at_once_and_all_sign_in_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (listener, base) = local_listener("127.0.0.1");
    let settings = test_settings(&dir, &[("SITE_URL", &base)]);
    let state = AppState::new(settings).await.expect("state");
    let hash = state.hasher.hash(PASSWORD).expect("hash");
    for n in 0..USERS {
        models::create(
            &mut state.pool.get().expect("connection"),
            &NewUser::new(&format!("user{n}"), &hash, false),
        )
        .expect("user");
    }
    let app = Application::serve_on(state, listener).expect("the server starts");
    actix_web::rt::spawn(app.run_until_stopped());

    let logins: Vec<_> = (0..LOGINS)
        .map(|n| {
            let address = IpAddr::from([
                127,
                0,
                10 + u8::try_from(n / 200).unwrap_or(0),
                1 + u8::try_from(n % 200).unwrap_or(0),
            ]);
            actix_web::rt::spawn(sign_in(base.clone(), address, format!("user{}", n % USERS)))
        })
        .collect();

    // Meanwhile, other requests are still answered promptly.
    let client = Client::default();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let res = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(res.status(), StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    let (mut errors, mut told_to_wait) = (Vec::new(), 0);
    for login in logins {
        match login.await.expect("the task ran") {
            Ok((location, busy)) if location == "/profile" => told_to_wait += busy,
            Ok((location, _)) => errors.push(format!("redirected to {location}")),
            Err(err) => errors.push(err),
        }
    }
    println!("{told_to_wait} answers of 503 with Retry-After during the storm");
    assert!(
        errors.is_empty(),
        "{} of {LOGINS} logins failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        slowest < Duration::from_secs(2),
        "/healthz took {slowest:?} during the login storm"
    );
}
