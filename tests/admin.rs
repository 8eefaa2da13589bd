//! Administration end to end against a real slapd and SMTP sink over gRPC+TLS with real
//! client certificates: roles, the policy API, scope and admin policy, admin resets, the
//! notification outbox, prefill, reports and the audit query, migration states, the
//! registration policy, and the `ssprd admin` CLI. (Samba AD runs the shared scenario in
//! `samba_ad.rs`.)

mod support;

use ssprd::api::pb::{self, admin_service_client::AdminServiceClient};
use ssprd::config::{RawConfig, RawEmail, SmtpTls};
use ssprd::testbed::SmtpSink;
use support::{Certs, Clients, Daemon, OpenLdap, TestDirectory, reason, scenarios, unique};
use tonic::Code;
use tonic::transport::Channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_admin_policy_admin_reset_and_unlock() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::administration(&ldap, work.path()).await;
}

/// A daemon with email and security questions, mutual TLS with a certificate per role,
/// an SMTP sink, and a short outbox retry interval.
struct Env {
    ldap: OpenLdap,
    smtp: SmtpSink,
    work: tempfile::TempDir,
    d: Daemon,
    certs: Certs,
    c: Clients,
    cfg_path: std::path::PathBuf,
}

const PW: &str = "Admin-Test-1234";

async fn env(tweak: impl FnOnce(&mut RawConfig)) -> Env {
    support::init();
    let ldap = OpenLdap::start().await;
    let smtp = SmtpSink::start().await.expect("SMTP sink starts");
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.policy.enabled_methods = ["security_questions", "email"].map(String::from).to_vec();
    raw.policy.questions_not_only_method = false;
    raw.email = RawEmail {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: SmtpTls::Starttls,
        ca_file: Some(smtp.ca_file.clone()),
        from: "Example IT <no-reply@example.org>".into(),
        organization: "Example Test".into(),
        timeout_ms: 2_000,
        ..RawEmail::default()
    };
    raw.outbox.max_retry_interval_secs = 1;
    let certs = Certs::install(&mut raw, work.path());
    tweak(&mut raw);
    let cfg_path = work.path().join("ssprd.toml");
    std::fs::write(&cfg_path, toml::to_string(&raw).unwrap()).unwrap();
    let d = Daemon::start(raw, ca).await;
    let c = d.clients().await;
    Env {
        ldap,
        smtp,
        work,
        d,
        certs,
        c,
        cfg_path,
    }
}

impl Env {
    fn admin(&self) -> AdminServiceClient<Channel> {
        self.d.admin(&self.certs.admin)
    }

    /// A directory user who registered security questions.
    async fn registered(&mut self, prefix: &str) -> String {
        let login = unique(prefix);
        self.ldap.create_user(&login, PW).await;
        self.c.register(&login, PW).await;
        login
    }

    async fn set_email(&self, login: &str, kind: pb::AdminContactKind, value: &str) -> pb::User {
        self.admin()
            .set_contact(pb::SetContactRequest {
                username: login.into(),
                kind: kind as i32,
                value: value.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn stop(self) {
        self.d.stop().await;
    }
}

fn user(login: &str) -> pb::GetUserRequest {
    pb::GetUserRequest {
        username: login.into(),
    }
}

/// Security item 40 and the role table: each role's allowed and refused calls, with real
/// client certificates from the configured CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_make_its_calls_only() {
    let mut e = env(|_| {}).await;
    let login = e.registered("roles").await;
    let d = &e.d;
    let start = pb::StartResetRequest {
        username: login.clone(),
    };
    let begin = pb::BeginRegistrationRequest {
        username: login.clone(),
        password: PW.into(),
    };
    let reset_as = |cert| pb::reset_service_client::ResetServiceClient::new(d.channel_as(cert));
    let reg_as =
        |cert| pb::registration_service_client::RegistrationServiceClient::new(d.channel_as(cert));
    let denied = |r: Result<tonic::Response<_>, tonic::Status>, what: &str| {
        let e = r.map(|_: tonic::Response<()>| ()).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        assert_eq!(reason(&e), "ROLE_NOT_PERMITTED", "{what}");
    };
    let unit =
        |r: Result<tonic::Response<pb::Policy>, tonic::Status>| r.map(|_| tonic::Response::new(()));

    // kiosk: reset only.
    let kiosk = Some(&e.certs.kiosk);
    reset_as(kiosk)
        .start_reset(start.clone())
        .await
        .expect("kiosk resets");
    let r = reg_as(kiosk).begin_registration(begin.clone()).await;
    denied(r.map(|_| tonic::Response::new(())), "kiosk registration");
    denied(
        unit(
            d.admin(&e.certs.kiosk)
                .get_policy(pb::GetPolicyRequest {})
                .await,
        ),
        "kiosk admin",
    );

    // portal: reset and registration.
    let portal = Some(&e.certs.portal);
    reset_as(portal)
        .start_reset(start.clone())
        .await
        .expect("portal resets");
    reg_as(portal)
        .begin_registration(begin.clone())
        .await
        .expect("portal registers");
    denied(
        unit(
            d.admin(&e.certs.portal)
                .get_policy(pb::GetPolicyRequest {})
                .await,
        ),
        "portal admin",
    );

    // helpdesk: unlock and admin reset only.
    let mut helpdesk = d.admin(&e.certs.helpdesk);
    helpdesk
        .unlock_user(pb::UnlockUserRequest {
            username: login.clone(),
        })
        .await
        .expect("helpdesk unlocks");
    let r = helpdesk
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: login.clone(),
            ..Default::default()
        })
        .await
        .expect("helpdesk resets")
        .into_inner();
    assert!(!r.generated_password.is_empty());
    denied(
        unit(helpdesk.get_policy(pb::GetPolicyRequest {}).await),
        "helpdesk policy",
    );
    let r = helpdesk.get_user(user(&login)).await;
    denied(r.map(|_| tonic::Response::new(())), "helpdesk get user");
    let r = reset_as(Some(&e.certs.helpdesk))
        .start_reset(start.clone())
        .await;
    denied(r.map(|_| tonic::Response::new(())), "helpdesk self-service");

    // admin: everything.
    let mut admin = e.admin();
    admin.get_policy(pb::GetPolicyRequest {}).await.unwrap();
    admin.get_user(user(&login)).await.unwrap();
    reset_as(Some(&e.certs.admin))
        .start_reset(start.clone())
        .await
        .unwrap();

    // No certificate: admin calls are UNAUTHENTICATED (the anonymous role here is portal).
    let anon = AdminServiceClient::new(d.channel_as(None))
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(anon.code(), Code::Unauthenticated);
    // A certificate from the CA that no client entry names: no rights at all.
    let e2 = reset_as(Some(&e.certs.unmapped))
        .start_reset(start.clone())
        .await
        .unwrap_err();
    assert_eq!(e2.code(), Code::PermissionDenied);
    assert_eq!(reason(&e2), "CLIENT_UNKNOWN");
    // A certificate from another CA does not get through the handshake.
    let other = ssprd::testbed::TestCa::new("rogue CA")
        .unwrap()
        .client_cert("ops-admin.example.org")
        .unwrap();
    assert!(
        d.admin(&other)
            .get_policy(pb::GetPolicyRequest {})
            .await
            .is_err()
    );
    // Health is open to everyone.
    tonic_health::pb::health_client::HealthClient::new(d.channel_as(None))
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ssprd.v1.AdminService".into(),
        })
        .await
        .unwrap();
    e.stop().await;
}

/// Security item 39: method-name variants reach nothing — the role check matches the
/// exact path, before routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_name_variants_are_refused() {
    let e = env(|_| {}).await;
    async fn call(ch: Channel, path: &'static str) -> tonic::Status {
        let mut grpc = tonic::client::Grpc::new(ch);
        grpc.ready().await.unwrap();
        let codec: tonic_prost::ProstCodec<pb::GetPolicyRequest, pb::Policy> =
            tonic_prost::ProstCodec::default();
        grpc.unary(
            tonic::Request::new(pb::GetPolicyRequest {}),
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            codec,
        )
        .await
        .unwrap_err()
    }
    let variants = [
        "/ssprd.v1.AdminService/getpolicy",
        "/ssprd.v1.adminservice/GetPolicy",
        "/ssprd.v1.AdminService/GetPolicy/",
        "/ssprd.v1.AdminService//GetPolicy",
        "//ssprd.v1.AdminService/GetPolicy",
        "/ssprd.v1.AdminService/GetPolicy%20",
        "/SSPRD.V1.ADMINSERVICE/GETPOLICY",
    ];
    for path in variants {
        let s = call(e.d.channel_as(None), path).await;
        assert_eq!(
            s.code(),
            Code::Unauthenticated,
            "{path} without a certificate"
        );
        let s = call(e.d.channel_as(Some(&e.certs.kiosk)), path).await;
        assert_eq!(s.code(), Code::PermissionDenied, "{path} as a kiosk");
        // Even an admin gets nothing from a variant (tonic would say UNIMPLEMENTED; the
        // role check answers first).
        let s = call(e.d.channel_as(Some(&e.certs.admin)), path).await;
        assert_eq!(s.code(), Code::PermissionDenied, "{path} as an admin");
    }
    e.stop().await;
}

/// The policy is versioned (compare-and-set), validated field by field, persisted across
/// restarts and audited with the admin's client name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_updates_are_versioned_validated_and_audited() {
    let e = env(|_| {}).await;
    let mut admin = e.admin();
    let p0 = admin
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p0.version, 0);
    assert_eq!(p0.updated_by, "configuration");
    assert_eq!(p0.reconfirm_days, 180, "Entra default");

    let mut p = p0.clone();
    p.reconfirm_days = 30;
    let p1 = admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(p.clone()),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p1.version, p1.reconfirm_days), (1, 30));
    assert!(p1.updated_by.contains("ops-admin"), "{}", p1.updated_by);
    // A second writer based on version 0 loses.
    let err = admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(p.clone()),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "POLICY_VERSION_CONFLICT");

    // Invalid: every problem named.
    let mut bad = p1.clone();
    bad.methods_required = 3;
    bad.questions_to_answer = 5;
    bad.questions_to_register = 3;
    bad.reconfirm_days = 731;
    bad.scope = pb::Scope::Selected as i32;
    bad.reset_methods.push(pb::Method::MobileSms as i32);
    let err = admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(bad),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "POLICY_INVALID");
    let fields: Vec<String> = tonic_types::StatusExt::get_details_bad_request(&err)
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    for f in [
        "policy.methods_required",
        "policy.questions_to_answer",
        "policy.reconfirm_days",
        "policy.scope_groups",
        "policy.reset_methods",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    let mut bad = p1.clone();
    bad.scope = 99;
    let err = admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(bad),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "SCOPE_INVALID");

    // Audited, with the admin as actor.
    let mut audit = admin
        .query_audit(pb::QueryAuditRequest {
            kind: "policy.*".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rec = audit.message().await.unwrap().expect("one policy record");
    assert_eq!(rec.kind, "policy.update");
    assert!(rec.actor.starts_with("ops-admin "), "{}", rec.actor);

    // Persisted: a restarted daemon applies version 1, not the configuration.
    let Env {
        d,
        ldap,
        certs,
        cfg_path,
        smtp,
        work,
        ..
    } = e;
    let ca = d.ca_pem.clone();
    d.stop().await;
    // sled's flusher lets go of the database lock within its flush interval.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let raw = ssprd::config::load(&cfg_path, true).unwrap();
    let d = Daemon::start(raw, ca).await;
    let p = d
        .admin(&certs.admin)
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.version, p.reconfirm_days), (1, 30));
    d.stop().await;
    drop((ldap, smtp, work));
}
