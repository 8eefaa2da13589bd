//! The management listener against a real daemon, slapd and SMTP sink: Prometheus
//! `/metrics` after real flows (with no user name, address or DN in any series),
//! `/healthz`, `/readyz` and the gRPC health status following the directory going down
//! and coming back and the outbox getting stuck and draining, and the `Host` check.

mod support;

use ssprd::api::pb;
use ssprd_testbed::SmtpSink;
use std::net::SocketAddr;
use std::time::Duration;
use support::{Daemon, OpenLdap, TestClock, TestDirectory, answer_for, http_get, unique};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Polls `/readyz` until its status is `want` (up to 30 s); the last body.
async fn readyz_until(addr: SocketAddr, want: u16) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(addr, "/readyz", &addr.to_string()).await;
        if status == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < until,
            "/readyz stayed {status} (want {want}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gRPC health status of `service` ("" for the whole server).
async fn health(daemon: &Daemon, service: &str) -> i32 {
    HealthClient::new(daemon.channel().await.unwrap())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_readiness_and_health_follow_the_daemon() {
    support::init();
    let mut ldap = OpenLdap::start().await;
    let mut smtp = SmtpSink::start().await.expect("SMTP sink starts");
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.policy.enabled_methods = ["security_questions", "email"].map(String::from).to_vec();
    raw.email = support::email_to(&smtp);
    let port = ssprd_testbed::free_port().unwrap();
    raw.metrics.listen = Some(format!("127.0.0.1:{port}"));
    raw.metrics.ready_check_secs = 1;
    raw.metrics.outbox_stuck_minutes = 30;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let clock = TestClock::default();
    let daemon = Daemon::start_with_clock(raw, ca, clock.clock()).await;

    // Up: alive, ready, serving.
    let (status, body) = http_get(addr, "/healthz", "localhost").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let body = readyz_until(addr, 200).await;
    assert!(body.contains(r#""ready":true"#), "{body}");
    assert_eq!(health(&daemon, "").await, SERVING);
    assert_eq!(health(&daemon, "ssprd.v1.ResetService").await, SERVING);

    // Real flows: a registration with a confirmed email, a wrong and a right proof, a
    // reset, and a reset for nobody.
    let login = unique("ops");
    let email = format!("{login}@example.org");
    ldap.create_user(&login, "Initial-Pass-1").await;
    let mut c = daemon.clients().await;
    let token = c.begin(&login, "Initial-Pass-1").await;
    c.add_confirmed_email(&token, &email, &smtp).await;
    c.reg
        .set_security_questions(pb::SetSecurityQuestionsRequest {
            registration_token: token,
            answers: support::QUESTIONS
                .iter()
                .map(|q| pb::QuestionAnswer {
                    question_id: q.to_string(),
                    answer: answer_for(q),
                })
                .collect(),
        })
        .await
        .expect("SetSecurityQuestions");
    let s = c.start(&login).await;
    let wrong = c
        .verify_with(&s.flow_id, &s.methods, |_| "not the answer".into())
        .await
        .expect("a wrong answer is an answer");
    assert!(!wrong.verified);
    let flow = c.verified_flow(&login).await;
    c.complete(&flow, "Harbour-Lantern-42!", false)
        .await
        .expect("CompleteReset");
    c.start("nobody-at-all").await;
    // A path the daemon does not serve, named after the user: it must not become a label.
    let mut grpc = tonic::client::Grpc::new(daemon.channel().await.unwrap());
    grpc.ready().await.unwrap();
    let made_up = format!("/attacker.Example/{login}");
    let refused = grpc
        .unary::<(), (), _>(
            tonic::Request::new(()),
            made_up.parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    let other = format!(
        r#"ssprd_rpc_requests_total{{method="other",code="{:?}"}}"#,
        refused.code()
    );

    let (status, m) = http_get(addr, "/metrics", &addr.to_string()).await;
    assert_eq!(status, 200);
    let reset = "/ssprd.v1.ResetService";
    for (series, at_least) in [
        (
            format!(r#"ssprd_rpc_requests_total{{method="{reset}/CompleteReset",code="Ok"}}"#),
            1.0,
        ),
        (
            format!(r#"ssprd_rpc_requests_total{{method="{reset}/StartReset",code="Ok"}}"#),
            3.0,
        ),
        (other, 1.0),
        (
            format!(r#"ssprd_rpc_duration_seconds_count{{method="{reset}/VerifyMethod"}}"#),
            2.0,
        ),
        (
            r#"ssprd_events_total{event="reset.verify",outcome="failure",reason="wrong_answer"}"#
                .into(),
            1.0,
        ),
        (
            r#"ssprd_recoveries_total{action="reset.complete",methods="security_questions"}"#
                .into(),
            1.0,
        ),
        (
            r#"ssprd_deliveries_total{channel="email",outcome="sent"}"#.into(),
            1.0,
        ),
        (
            r#"ssprd_directory_operation_duration_seconds_count{op="set_password"}"#.into(),
            1.0,
        ),
        (
            r#"ssprd_ldap_pool_connections{pool="service",state="idle"}"#.into(),
            1.0,
        ),
        ("ssprd_store_flush_duration_seconds_count".into(), 1.0),
        ("ssprd_ready".into(), 1.0),
        ("ssprd_outbox_backlog".into(), 0.0),
    ] {
        let v =
            support::metric_value(&m, &series).unwrap_or_else(|| panic!("no {series} in:\n{m}"));
        assert!(
            v >= at_least,
            "{series} is {v}, expected at least {at_least}"
        );
    }
    for secret in [
        login.as_str(),
        email.as_str(),
        "dc=example",
        "nobody-at-all",
    ] {
        assert!(!m.contains(secret), "/metrics names {secret:?}:\n{m}");
    }

    // Another host name (DNS rebinding) is refused; unknown paths are not found.
    assert_eq!(http_get(addr, "/metrics", "attacker.example").await.0, 421);
    assert_eq!(http_get(addr, "/admin", "localhost").await.0, 404);

    // The directory goes down: not ready, NOT_SERVING, and back when it is.
    ldap.stop().await;
    let body = readyz_until(addr, 503).await;
    assert!(
        body.contains(r#""store":"ok""#) && body.contains(r#""directory":"directory unavailable"#),
        "{body}"
    );
    assert_eq!(health(&daemon, "").await, NOT_SERVING);
    assert_eq!(
        health(&daemon, "ssprd.v1.RegistrationService").await,
        NOT_SERVING
    );
    let (_, m) = http_get(addr, "/metrics", "127.0.0.1").await;
    assert_eq!(support::metric_value(&m, "ssprd_ready"), Some(0.0));
    ldap.start().await;
    readyz_until(addr, 200).await;
    assert_eq!(health(&daemon, "").await, SERVING);

    // A notification that cannot go out for longer than the limit: stuck, not ready; the
    // provider back, it drains and the daemon is ready again.
    smtp.stop();
    let flow = c.verified_flow(&login).await;
    c.complete(&flow, "Harbour-Lantern-43!", false)
        .await
        .expect("CompleteReset with the mail server down");
    clock.advance(31 * 60);
    let body = readyz_until(addr, 503).await;
    assert!(body.contains(r#""outbox":"stuck"#), "{body}");
    assert_eq!(health(&daemon, "").await, NOT_SERVING);
    let (_, m) = http_get(addr, "/metrics", "127.0.0.1").await;
    assert!(
        support::metric_value(&m, "ssprd_outbox_backlog").unwrap() >= 1.0,
        "{m}"
    );
    assert!(
        support::metric_value(&m, "ssprd_outbox_oldest_seconds").unwrap() > 1800.0,
        "{m}"
    );
    assert!(
        support::metric_value(
            &m,
            r#"ssprd_deliveries_total{channel="email",outcome="unavailable"}"#
        )
        .is_some(),
        "{m}"
    );
    smtp.restart().await;
    readyz_until(addr, 200).await;
    assert_eq!(health(&daemon, "").await, SERVING);
    daemon.stop().await;
}
