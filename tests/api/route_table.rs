//! Login required by default: every route in the table either is marked
//! public or sends anonymous visitors to sign in. A fork that adds a page
//! and forgets to decide gets the safe answer, and this walk proves it for
//! every row, every method.

use actix_web::{http::StatusCode, test::TestRequest};
use porter::{
    auth::guards::login_url,
    urls::{self, Access},
};

use crate::helpers::spawn_app;

/// A concrete path for a pattern: each `{parameter}` becomes `1`.
fn example_path(pattern: &str) -> String {
    let mut path = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        path.push('1');
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

#[actix_web::test]
async fn every_route_is_public_or_sends_anonymous_visitors_to_sign_in() {
    let app = spawn_app().await;
    // A real token, so that POSTs meet the login check, not the CSRF one.
    let token = app.get("/login").await.csrf_token();
    let routes = urls::table();
    assert!(routes.len() > 10, "the whole table is walked");
    for route in &routes {
        let path = example_path(route.path);
        for method in route.allow.split(", ") {
            let request = match method {
                "GET" => TestRequest::get().uri(&path),
                "POST" => TestRequest::post()
                    .uri(&path)
                    .set_form([("csrf_token", token.as_str())]),
                other => panic!("{other} on {}: teach this walk the method", route.path),
            };
            let res = app.send(request).await;
            let to_login = res.status == StatusCode::SEE_OTHER
                && res.location() == Some(login_url(&path).as_str());
            match route.access {
                Access::Public => assert!(
                    !to_login && res.status != StatusCode::FORBIDDEN,
                    "{method} {path} is public, yet answered {} {:?}",
                    res.status,
                    res.location()
                ),
                Access::SignedIn | Access::Staff(_) => assert!(
                    to_login,
                    "{method} {path} needs a user, yet answered an anonymous visitor {} {:?}",
                    res.status,
                    res.location()
                ),
            }
        }
    }
}

#[actix_web::test]
async fn a_path_no_route_matches_is_a_404_for_everyone() {
    let app = spawn_app().await;
    assert_eq!(app.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
}
