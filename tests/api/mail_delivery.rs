//! Mail over real SMTP: Python's `aiosmtpd` on loopback, started by the
//! test, receiving what lettre sends. No mock: the mail crosses a socket
//! as it would to a mail provider.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use porter::{
    mail::RetryPolicy,
    testing::mail::{ReceivedMail, SmtpServer},
};

use crate::helpers::{TestUser, spawn_app_with};

/// Waits until `server` has received `count` mails (or fails the test).
async fn wait_for_mail(server: &SmtpServer, count: usize, within: Duration) -> Vec<ReceivedMail> {
    let started = Instant::now();
    loop {
        let received = server.received();
        if received.len() >= count {
            return received;
        }
        assert!(
            started.elapsed() < within,
            "{count} mail(s) expected, {} arrived",
            received.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_reset_mail_arrives_over_smtp_and_its_link_resets_the_password() {
    if !SmtpServer::available() {
        return;
    }
    let server = SmtpServer::start();
    let app = spawn_app_with(&[
        ("EMAIL_URL", &server.email_url()),
        ("EMAIL_FROM", "Porter <noreply@porter.example>"),
    ])
    .await;
    let alice = TestUser::create_with_email(&app, "alice", "alice@example.com");
    app.submit_form(
        "/password/reset",
        "/password/reset",
        &[("email", "alice@example.com")],
    )
    .await;
    let delivery = app.deliver_mail().await;
    let errors: Vec<Option<String>> = {
        use diesel::prelude::*;
        porter::schema::mail_outbox::table
            .select(porter::schema::mail_outbox::last_error)
            .load(&mut *app.db())
            .expect("errors")
    };
    assert_eq!(delivery.sent, 1, "{delivery:?} {errors:?}");

    let received = wait_for_mail(&server, 1, Duration::from_secs(10)).await;
    let mail = &received[0];
    assert_eq!(mail.to, "alice@example.com");
    assert_eq!(mail.subject, "Reset your password");
    assert!(
        mail.message_id.ends_with("@porter.example>"),
        "{}",
        mail.message_id
    );
    assert!(
        mail.html
            .contains("<a href=\"http://localhost:8080/password/reset/")
    );
    let link = mail
        .path("/password/reset/")
        .expect("a link in the text part");

    let form = app.get(&link).await;
    let form = form.location().expect("to the form").to_owned();
    let res = app
        .submit_form(
            &form,
            &form,
            &[
                ("new_password1", "reset over smtp"),
                ("new_password2", "reset over smtp"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/login"));
    let new = TestUser {
        password: "reset over smtp".into(),
        ..alice
    };
    assert_eq!(new.login(&app).await.location(), Some("/profile"));
    assert_eq!(
        app.get(&link).await.status,
        StatusCode::OK,
        "refused the second time"
    );
}

#[actix_web::test]
async fn mail_queued_while_the_smtp_server_is_down_arrives_once_it_is_back_exactly_once() {
    if !SmtpServer::available() {
        return;
    }
    // The server's port is known, but nothing listens on it yet.
    let port = SmtpServer::free_port();
    let app = spawn_app_with(&[("EMAIL_URL", &format!("smtp://127.0.0.1:{port}"))]).await;
    TestUser::create_with_email(&app, "alice", "alice@example.com");
    // The worker the server runs, retrying quickly for the test.
    let worker = app.state.outbox.get_ref().clone().with_policy(RetryPolicy {
        first_retry: Duration::from_millis(300),
        max_wait: Duration::from_secs(1),
        poll_every: Duration::from_millis(100),
        ..RetryPolicy::default()
    });
    let running = actix_web::rt::spawn(worker.run());

    let res = app
        .submit_form(
            "/password/reset",
            "/password/reset",
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "the request does not wait for SMTP"
    );
    // Long enough for several attempts to fail.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let waiting = porter::mail::outbox::waiting(&mut app.db()).expect("count");
    assert_eq!(waiting, 1, "the mail waits in the outbox");

    let server = SmtpServer::start_on(port);
    let received = wait_for_mail(&server, 1, Duration::from_secs(15)).await;
    assert_eq!(received[0].subject, "Reset your password");
    // Several more polls: nothing is sent twice.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.received().len(), 1, "exactly once");
    assert_eq!(
        porter::mail::outbox::waiting(&mut app.db()).expect("count"),
        0
    );
    running.abort();
}

#[actix_web::test]
async fn a_mail_that_can_never_be_sent_is_kept_as_failed_and_not_retried() {
    if !SmtpServer::available() {
        return;
    }
    let server = SmtpServer::start();
    let app = spawn_app_with(&[("EMAIL_URL", &server.email_url())]).await;
    // No mail can be built for this address: retrying cannot help.
    let queued = porter::mail::Mail {
        to: "not an address".into(),
        subject: "x".into(),
        text: "x".into(),
        html: "x".into(),
    };
    porter::mail::outbox::enqueue(&mut app.db(), &queued).expect("queued");
    let first = app.deliver_mail().await;
    assert_eq!(first.failed, 1, "{first:?}");
    let second = app.deliver_mail().await;
    assert_eq!(second, Default::default(), "not tried again");
    assert!(server.received().is_empty());
}
