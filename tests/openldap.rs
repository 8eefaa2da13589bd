//! End to end over gRPC+TLS against a real slapd (LDAPS, ppolicy), one per test.

mod support;

use support::{OpenLdap, TestDirectory, scenarios};

macro_rules! scenario {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            support::init();
            let ldap = OpenLdap::start().await;
            let work = tempfile::tempdir().unwrap();
            let daemon = scenarios::daemon(&ldap, work.path()).await;
            let mut c = daemon.clients().await;
            scenarios::$name(&ldap, &mut c).await;
            daemon.stop().await;
        }
    };
}

scenario!(register_and_reset);
scenario!(policy_refusals);
scenario!(unknown_user);
scenario!(wrong_answers);
scenario!(unlock);
scenario!(registration_errors);
scenario!(password_policy_is_served);
scenario!(long_and_unicode_passwords);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_down() {
    support::init();
    let mut ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon(&ldap, work.path()).await;
    let mut c = daemon.clients().await;
    scenarios::directory_down(&mut ldap, &mut c).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_change_after_reset() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::must_change(&ldap, work.path()).await;
}

/// A dead first URI fails over to the second, an `ldap://` URI upgraded with StartTLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_failover() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let dead = ssprd::testbed::free_port().unwrap();
    let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
        raw.directory.uris = vec![format!("ldaps://127.0.0.1:{dead}"), ldap.slapd.ldap_uri()];
        raw.directory.starttls = true;
    })
    .await;
    let mut c = daemon.clients().await;
    scenarios::register_and_reset(&ldap, &mut c).await;
    daemon.stop().await;
}

/// `allow_insecure` admits plain LDAP for lookups only: no user password and no new
/// password ever crosses the connection, and the directory keeps the old password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ldap_never_carries_passwords() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let login = support::unique("plain");
    let pw = "Plain-Pass-1234";
    ldap.create_user(&login, pw).await;
    // Register over LDAPS first, then reopen the same store with a plain-LDAP directory.
    let secure = scenarios::daemon(&ldap, work.path()).await;
    secure.clients().await.register(&login, pw).await;
    secure.stop().await;
    let insecure = scenarios::daemon_with(&ldap, work.path(), |raw| {
        raw.directory.uris = vec![ldap.slapd.ldap_uri()];
        raw.directory.allow_insecure = true;
    })
    .await;
    let mut c = insecure.clients().await;
    let flow = c.verified_flow(&login).await; // lookups work
    let e = c
        .complete(&flow, "Never-Sent-5678", false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    assert_eq!(support::reason(&e), "DIRECTORY_ERROR");
    let e = c
        .reg
        .begin_registration(ssprd::api::pb::BeginRegistrationRequest {
            username: login.clone(),
            password: pw.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(support::reason(&e), "DIRECTORY_ERROR");
    assert!(ldap.can_bind(&login, pw).await, "password unchanged");
    insecure.stop().await;
}

/// Pre-hashed `userPassword` writes for servers without Password Modify. ppolicy cannot
/// check the quality of a hashed value, so the policy needs pwdCheckQuality <= 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_password_writes() {
    use ssprd::config::OpenldapPasswordWrite as W;
    support::init();
    let ldap = OpenLdap::start().await;
    let mut root = ldap.slapd.root_bind().await.unwrap();
    root.modify(
        "cn=default,ou=policies,dc=example,dc=org",
        vec![ldap3::Mod::Replace("pwdCheckQuality", ["1"].into())],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    for (i, scheme) in [W::HashedArgon2, W::HashedSsha].into_iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
            raw.directory.openldap_password_write = scheme;
        })
        .await;
        let mut c = daemon.clients().await;
        let login = support::unique(&format!("hash{i}"));
        ldap.create_user(&login, "Hash-Old-1234").await;
        c.register(&login, "Hash-Old-1234").await;
        let flow = c.verified_flow(&login).await;
        let done = c.complete(&flow, "Hash-New-5678", false).await.unwrap();
        assert!(done.verified_by_bind, "{scheme:?}");
        assert!(ldap.can_bind(&login, "Hash-New-5678").await, "{scheme:?}");
        assert!(!ldap.can_bind(&login, "Hash-Old-1234").await, "{scheme:?}");
        daemon.stop().await;
    }
}

/// Health reports SERVING; reflection answers, and is gone when switched off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_switch() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    support::init();
    let ldap = OpenLdap::start().await;
    for reflection in [true, false] {
        let work = tempfile::tempdir().unwrap();
        let daemon = scenarios::daemon_with(&ldap, work.path(), |raw| {
            raw.server.reflection = reflection;
        })
        .await;
        let ch = daemon.channel().await.unwrap();
        let mut health = HealthClient::new(ch.clone());
        for service in ["", "ssprd.v1.ResetService", "ssprd.v1.RegistrationService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status, 1, "SERVING for {service:?}");
        }
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let res = ServerReflectionClient::new(ch)
            .server_reflection_info(tokio_stream::iter([req]))
            .await;
        if reflection {
            let mut stream = res.unwrap().into_inner();
            let msg = stream.message().await.unwrap().unwrap();
            let text = format!("{msg:?}");
            assert!(text.contains("ssprd.v1.ResetService"), "{text}");
        } else {
            assert_eq!(res.unwrap_err().code(), tonic::Code::Unimplemented);
        }
        daemon.stop().await;
    }
}
