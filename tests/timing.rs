//! An unknown username costs what a wrong password costs, so response
//! times do not reveal which accounts exist. Its own test binary, so that no
//! other test competes for the CPU while it measures.

use std::time::Instant;

use actix_web::http::StatusCode;

use porter::testing::{TestUser, spawn_app};

#[actix_web::test]
async fn unknown_users_and_wrong_passwords_take_the_same_time() {
    let app = spawn_app().await;
    // Several accounts, so that no account reaches its own limit (20).
    let users: Vec<TestUser> = (0..4)
        .map(|n| TestUser::create(&app, &format!("alice{n}")))
        .collect();
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for n in 0..31 {
        // A fresh address each time, so the throttle never answers first.
        app.set_peer(&format!("127.0.{}.{}:40000", n / 200 + 1, n % 200 + 1));
        // Unknown names of the same length as the real ones.
        let nobody = format!("nobod{}", n % 4);
        for (username, samples) in [
            (nobody.as_str(), &mut unknown),
            (users[n % 4].username.as_str(), &mut wrong),
        ] {
            let token = app.get("/login").await.csrf_token();
            let started = Instant::now();
            let res = app
                .post_form(
                    "/login",
                    &[
                        ("csrf_token", &token),
                        ("username", username),
                        ("password", "wrong one"),
                    ],
                )
                .await;
            samples.push(started.elapsed().as_secs_f64());
            assert_eq!(res.status, StatusCode::OK);
        }
    }
    let median = |samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let (unknown, wrong) = (median(&mut unknown), median(&mut wrong));
    let difference = (unknown - wrong).abs() / unknown.max(wrong);
    assert!(
        difference < 0.15,
        "unknown user {unknown:.4}s vs wrong password {wrong:.4}s differ by {:.0}%",
        difference * 100.0
    );
}
