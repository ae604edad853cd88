//! A password reset request for an address no account has takes as long
//! as one that queues a mail, so response times do not reveal which
//! addresses have accounts. Its own test binary, so that no other test
//! competes for the CPU while it measures.

use std::time::Instant;

use actix_web::http::StatusCode;

use porter::testing::{TestUser, spawn_app};

#[actix_web::test]
async fn reset_requests_for_known_and_unknown_addresses_take_the_same_time() {
    let app = spawn_app().await;
    // Several accounts, so that no address reaches its own limit (5).
    for n in 0..8 {
        TestUser::create_with_email(&app, &format!("alice{n}"), &format!("alice{n}@example.com"));
    }
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    for n in 0..31 {
        // A fresh client address each time, so the throttle never answers first.
        app.set_peer(&format!("127.0.{}.{}:40000", n / 200 + 1, n % 200 + 1));
        // Unknown addresses of the same length as the real ones.
        let nobody = format!("nobod{}@example.com", n % 8);
        let somebody = format!("alice{}@example.com", n % 8);
        // Alternate which goes first, so neither always meets a warm cache.
        let order = if n % 2 == 0 {
            [(&nobody, &mut unknown), (&somebody, &mut known)]
        } else {
            [(&somebody, &mut known), (&nobody, &mut unknown)]
        };
        for (email, samples) in order {
            let token = app.get("/password/reset").await.csrf_token();
            let started = Instant::now();
            let res = app
                .post_form(
                    "/password/reset",
                    &[("csrf_token", &token), ("email", email)],
                )
                .await;
            samples.push(started.elapsed().as_secs_f64());
            assert_eq!(res.status, StatusCode::SEE_OTHER);
        }
    }
    let median = |samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let (unknown, known) = (median(&mut unknown), median(&mut known));
    let difference = (unknown - known).abs() / unknown.max(known);
    assert!(
        difference < 0.15,
        "unknown address {unknown:.5}s vs known address {known:.5}s differ by {:.0}%",
        difference * 100.0
    );
}
