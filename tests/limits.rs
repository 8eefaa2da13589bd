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
    assert_eq!(support::reason(&e), "REQUEST_TOO_LARGE");
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
    let kiosks = ssprd_testbed::TestCa::new("kiosk CA").unwrap();
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

/// A gRPC call with a hand-made body and content type over `channel`: the status it ends
/// with (from the headers of a trailers-only answer, else from the trailers).
async fn raw_call(
    channel: tonic::transport::Channel,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> tonic::Status {
    raw_call_with(channel, path, content_type, &[], body).await
}

/// [`raw_call`] with extra request headers.
async fn raw_call_with(
    channel: tonic::transport::Channel,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> tonic::Status {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = http::Request::post(format!("https://localhost{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(body),
        )))
        .unwrap();
    let res = channel.oneshot(req).await.expect("an HTTP answer");
    if let Some(s) = tonic::Status::from_header_map(res.headers()) {
        return s;
    }
    let collected = res.into_body().collect().await.expect("a body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    tonic::Status::from_header_map(&trailers).expect("a grpc-status")
}

fn frame(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.push(0);
        out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Issue 10 items 4 and 7: for every service (reset, registration, admin, health,
/// reflection v1 and v1alpha), invalid protobuf — a bad varint, a truncated field, a wrong
/// wire type, invalid UTF-8 in a string — a unary call with two messages, a truncated frame
/// and a `text/plain` content type are answered INVALID_ARGUMENT with a stable reason, never
/// INTERNAL; the daemon keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_argument_for_every_service() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let mut certs = None;
    let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
        certs = Some(support::Certs::install(raw, work.path()));
    })
    .await;
    let certs = certs.unwrap();
    let admin = daemon.channel_as(Some(&certs.admin));
    // Every method below has a string as field 1.
    let paths = [
        ("/ssprd.v1.ResetService/StartReset", true),
        ("/ssprd.v1.RegistrationService/BeginRegistration", true),
        ("/ssprd.v1.AdminService/GetUser", true),
        ("/grpc.health.v1.Health/Check", true),
        (
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            false,
        ),
        (
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            false,
        ),
    ];
    let good: &[u8] = &[0x0a, 0x01, b'x'];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad varint",
            frame(&[&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]]),
            "MALFORMED_REQUEST",
        ),
        (
            "truncated field",
            frame(&[&[0x0a, 0x10, b'a']]),
            "MALFORMED_REQUEST",
        ),
        (
            "wrong wire type",
            frame(&[&[0x0d, 1, 2, 3, 4]]),
            "MALFORMED_REQUEST",
        ),
        (
            "invalid UTF-8",
            frame(&[&[0x0a, 0x02, 0xc3, 0x28]]),
            "MALFORMED_REQUEST",
        ),
        (
            "truncated frame",
            frame(&[good])[..6].to_vec(),
            "MALFORMED_REQUEST",
        ),
        ("two messages", frame(&[good, good]), "MALFORMED_REQUEST"),
    ];
    for (path, unary) in paths {
        for (what, body, want) in &cases {
            if *what == "two messages" && !unary {
                continue; // a stream of messages is what reflection takes
            }
            let s = raw_call(admin.clone(), path, "application/grpc", body.clone()).await;
            assert_eq!(
                s.code(),
                tonic::Code::InvalidArgument,
                "{path} {what}: {s:?}"
            );
            assert_eq!(support::reason(&s), *want, "{path} {what}");
        }
        let s = raw_call(admin.clone(), path, "text/plain", frame(&[good])).await;
        assert_eq!(
            s.code(),
            tonic::Code::InvalidArgument,
            "{path} text/plain: {s:?}"
        );
        assert_eq!(support::reason(&s), "UNSUPPORTED_CONTENT_TYPE", "{path}");
        // Issue 24 item 14: a compressed request (as a stock client with gzip or br sends
        // it) gets a stable reason too.
        for encoding in ["gzip", "br"] {
            let mut gz = frame(&[good]);
            gz[0] = 1;
            let s = raw_call_with(
                admin.clone(),
                path,
                "application/grpc",
                &[("grpc-encoding", encoding)],
                gz,
            )
            .await;
            assert_eq!(
                s.code(),
                tonic::Code::Unimplemented,
                "{path} {encoding}: {s:?}"
            );
            assert_eq!(support::reason(&s), "COMPRESSION_UNSUPPORTED", "{path}");
        }
    }
    // A well-formed request still works on the same connection.
    let s = raw_call(
        admin.clone(),
        "/ssprd.v1.ResetService/StartReset",
        "application/grpc",
        frame(&[good]),
    )
    .await;
    assert_eq!(s.code(), tonic::Code::Ok, "{s:?}");

    // Item 7: an unknown method in a policy is POLICY_INVALID (as the README says); an
    // audit limit beyond 32 bits is refused, not cut to its low bits.
    let mut a = daemon.admin(&certs.admin);
    let current = a
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut p = current.clone();
    p.reset_methods.push(99);
    let e = a
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(p),
            expected_version: current.version,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(support::reason(&e), "POLICY_INVALID");
    let e = a
        .query_audit(pb::QueryAuditRequest {
            limit: (1 << 32) + 5,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(support::reason(&e), "LIMIT_INVALID");
    let e = a
        .query_audit(pb::QueryAuditRequest {
            limit: 10_001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(support::reason(&e), "LIMIT_INVALID");
    let mut ok = a
        .query_audit(pb::QueryAuditRequest {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while ok.message().await.unwrap().is_some() {}
    daemon.stop().await;
}
