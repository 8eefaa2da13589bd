//! Request limits (reliability item 12): oversized requests are refused with
//! RESOURCE_EXHAUSTED before they are decoded, and the daemon keeps serving.

mod support;

use ssprd::api::pb;
use support::{OpenLdap, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon(&ldap, work.path()).await;
    let mut c = daemon.clients().await;
    let e = c
        .reset
        .start_reset(pb::StartResetRequest {
            username: "x".repeat(5 * 1024 * 1024),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    // Many answers in one request: refused by count, not processed.
    let e = c
        .reset
        .verify_method(pb::VerifyMethodRequest {
            flow_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            proof: Some(pb::verify_method_request::Proof::SecurityAnswers(
                pb::SecurityAnswers {
                    answers: (0..1000)
                        .map(|i| pb::QuestionAnswer {
                            question_id: format!("q{i}"),
                            answer: "a".into(),
                        })
                        .collect(),
                },
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(support::reason(&e), "TOO_MANY_ANSWERS");
    // Still serving.
    let s = c.start("after-the-flood").await;
    assert!(!s.flow_id.is_empty());
    daemon.stop().await;
}

/// Per-client limits: keyed by the client certificate under mutual TLS (one kiosk hitting
/// its limit does not slow another), a client's own quota where configured, else by IP
/// address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_rate_limits() {
    use ssprd::api::pb::reset_service_client::ResetServiceClient;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let kiosks = ssprd::testbed::TestCa::new("kiosk CA").unwrap();
    let ca_file = work.path().join("kiosks.crt");
    std::fs::write(&ca_file, kiosks.pem()).unwrap();
    let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
        raw.server.client_ca_file = Some(ca_file.clone());
        raw.server.per_client_requests_per_minute = 5;
        raw.clients = ["kiosk-a", "kiosk-b", "kiosk-c"]
            .iter()
            .map(|cn| ssprd::config::RawClient {
                name: cn.to_string(),
                common_name: Some(cn.to_string()),
                role: Some(ssprd::api::auth::Role::Kiosk),
                requests_per_minute: (*cn == "kiosk-c").then_some(2),
                ..Default::default()
            })
            .collect();
    })
    .await;
    let client = |cn: &str| {
        ResetServiceClient::new(daemon.channel_as(Some(&kiosks.client_cert(cn).unwrap())))
    };
    let start = |name: &str| pb::StartResetRequest {
        username: name.into(),
    };
    let mut a = client("kiosk-a");
    for i in 0..5 {
        a.start_reset(start("someone"))
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e:?}"));
    }
    let e = a.start_reset(start("someone")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert_eq!(support::reason(&e), "CLIENT_RATE_LIMITED");
    let mut b = client("kiosk-b");
    b.start_reset(start("someone"))
        .await
        .expect("another kiosk is not slowed");
    // kiosk-c has its own, smaller quota.
    let mut c = client("kiosk-c");
    for _ in 0..2 {
        c.start_reset(start("someone")).await.unwrap();
    }
    let e = c.start_reset(start("someone")).await.unwrap_err();
    assert_eq!(support::reason(&e), "CLIENT_RATE_LIMITED");
    daemon.stop().await;

    // Without client certificates the limit is per IP address.
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
        raw.server.per_client_requests_per_minute = 3;
    })
    .await;
    let mut c = daemon.clients().await;
    for _ in 0..3 {
        c.reset.start_reset(start("someone")).await.unwrap();
    }
    let e = c.reset.start_reset(start("someone")).await.unwrap_err();
    assert_eq!(support::reason(&e), "CLIENT_RATE_LIMITED");
    daemon.stop().await;
}
