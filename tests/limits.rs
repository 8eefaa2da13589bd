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
