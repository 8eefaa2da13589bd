//! Administration end to end against a real slapd and SMTP sink over gRPC+TLS with real
//! client certificates: roles, the policy API, scope and admin policy, admin resets, the
//! notification outbox, prefill, reports and the audit query, migration states, the
//! registration policy, and the `ssprd admin` CLI. (Samba AD runs the shared scenario in
//! `samba_ad.rs`.)

mod support;

use ssprd::api::pb::{self, admin_service_client::AdminServiceClient};
use ssprd::config::RawConfig;
use ssprd_testbed::SmtpSink;
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
    raw.email = support::email_to(&smtp);
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
        ..Default::default()
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
    let other = ssprd_testbed::TestCa::new("rogue CA")
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

/// Security reliability item 13 and the notification rules: an admin reset notifies the
/// user's confirmed contacts (never with the password), emails instructions to the
/// alternate email, and — for an administrator's account — alerts every administrator;
/// with the mail server down they wait in the outbox and arrive once it is back, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wait_in_the_outbox_and_arrive_once() {
    let mut e = env(|_| {}).await;
    let boss = e.registered("notifyboss").await;
    let admins = e
        .ldap
        .create_group(&unique("admins"), &[e.ldap.user_dn(&boss)])
        .await;
    let (primary, alternate, oncall) = (
        format!("{boss}@example.org"),
        format!("{boss}@home.example.net"),
        "oncall@example.org".to_string(),
    );
    scenarios::set_policy(&mut e.admin(), |p| {
        p.admin_groups = vec![admins.clone()];
        p.admin_policy = false;
        p.admin_notify_emails = vec![oncall.clone()];
    })
    .await;
    let u = e
        .set_email(&boss, pb::AdminContactKind::Email, &primary)
        .await;
    assert!(u.admin);
    e.set_email(&boss, pb::AdminContactKind::AlternateEmail, &alternate)
        .await;

    e.smtp.stop();
    let r = e
        .admin()
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: boss.clone(),
            notify_alternate_email: true,
            ..Default::default()
        })
        .await
        .expect("the reset does not wait for the mail server")
        .into_inner();
    assert!(r.instructions_queued);
    // A few failed attempts while the sink is down.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    e.smtp.restart().await;
    let user_mail = e
        .smtp
        .wait_for(&primary, &["reset by an administrator"])
        .await
        .expect("the user's contact is told");
    let instructions = e
        .smtp
        .wait_for(&alternate, &["An administrator reset the password", &boss])
        .await
        .expect("instructions at the alternate email");
    let alert = e
        .smtp
        .wait_for(&oncall, &["administrator account", &boss])
        .await
        .expect("administrators are alerted");
    for m in [&user_mail, &instructions, &alert] {
        assert!(!m.contains(&r.generated_password), "never the password");
    }
    // The generated password is returned once and never stored.
    let mut files = vec![e.work.path().join("db")];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            scanned += bytes.len();
            assert!(
                !bytes
                    .windows(r.generated_password.len())
                    .any(|w| w == r.generated_password.as_bytes()),
                "generated password found in {}",
                p.display()
            );
        }
    }
    assert!(scanned > 0);

    // Exactly once each, also after more retry rounds.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        e.smtp
            .messages_to(&primary)
            .iter()
            .filter(|m| m.replace("=\n", "").contains("reset by an administrator"))
            .count(),
        1
    );
    assert_eq!(e.smtp.messages_to(&alternate).len(), 1);
    assert_eq!(e.smtp.messages_to(&oncall).len(), 1);
    // The outbox is empty: the audit log has one delivery record per message.
    let mut audit = e
        .admin()
        .query_audit(pb::QueryAuditRequest {
            kind: "notify".into(),
            username: boss.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut delivered = Vec::new();
    while let Some(r) = audit.message().await.unwrap() {
        assert_eq!(r.outcome, "success");
        delivered.push(r.reason);
    }
    delivered.sort();
    // The alternate-email change told the primary address first; then the three above.
    assert_eq!(
        delivered,
        [
            "account_recovered",
            "admin_alert",
            "admin_reset_instructions",
            "method_changed"
        ]
    );
    // An admin unlock tells the user too; clearing a contact removes it.
    e.admin()
        .unlock_user(pb::UnlockUserRequest {
            username: boss.clone(),
        })
        .await
        .unwrap();
    assert!(
        e.smtp
            .wait_for(&primary, &["unlocked by an administrator"])
            .await
            .is_some()
    );
    let u = e
        .set_email(&boss, pb::AdminContactKind::AlternateEmail, "")
        .await;
    assert_eq!(u.alternate_email, "");
    e.stop().await;
}

/// Prefill copies `mail` and `mobile` from a few hundred directory users into their
/// registrations, reporting progress as it goes; a dry run writes nothing; existing
/// contacts are kept unless overwrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefill_hundreds_of_users_with_progress() {
    let e = env(|raw| {
        raw.prefill.alternate_email = "description".into();
    })
    .await;
    const N: usize = 300;
    let prefix = unique("bulk");
    {
        let mut root = e.ldap.slapd.root_bind().await.unwrap();
        for i in 0..N {
            let uid = format!("{prefix}-{i:03}");
            let dn = format!("uid={uid},{}", ssprd_testbed::PEOPLE);
            let mail = format!("{uid}@example.org");
            let mobile = format!("+1555{i:07}");
            let mut attrs: Vec<(&str, std::collections::HashSet<&str>)> = vec![
                ("objectClass", ["inetOrgPerson"].into()),
                ("uid", [uid.as_str()].into()),
                ("cn", [uid.as_str()].into()),
                ("sn", ["Bulk"].into()),
                ("mail", [mail.as_str()].into()),
            ];
            // Every third user has no mobile; every tenth a malformed one.
            if i % 3 != 0 {
                attrs.push(("mobile", [mobile.as_str()].into()));
            }
            if i % 10 == 1 {
                attrs.retain(|(a, _)| *a != "mobile");
                attrs.push(("mobile", ["call me maybe"].into()));
            }
            root.add(&dn, attrs).await.unwrap().success().unwrap();
        }
        let _ = root.unbind().await;
    }
    let mut admin = e.admin();
    let prefiller = e.admin();
    let run = |dry_run: bool, overwrite: bool| {
        let mut admin = prefiller.clone();
        async move {
            let mut s = admin
                .prefill(pb::PrefillRequest { overwrite, dry_run })
                .await
                .unwrap()
                .into_inner();
            let mut seen = Vec::new();
            while let Some(p) = s.message().await.unwrap() {
                seen.push(p);
            }
            seen
        }
    };
    let dry = run(true, false).await;
    let last = dry.last().unwrap();
    assert!(last.done);
    assert!(last.total as usize >= N, "{last:?}");
    assert!(
        dry.len() >= N / 25,
        "progress reported along the way: {}",
        dry.len()
    );
    assert!(dry.windows(2).all(|w| w[0].processed <= w[1].processed));
    let some = format!("{prefix}-005");
    let u = admin.get_user(user(&some)).await.unwrap().into_inner();
    assert!(
        u.registration.unwrap().contacts.is_empty(),
        "dry run wrote nothing"
    );

    let real = run(false, false).await;
    let last = real.last().unwrap();
    assert!(last.updated as usize >= N, "{last:?}");
    let u = admin.get_user(user(&some)).await.unwrap().into_inner();
    let reg = u.registration.unwrap();
    let kinds: Vec<i32> = reg.contacts.iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&(pb::ContactKind::Email as i32)));
    assert!(kinds.contains(&(pb::ContactKind::MobilePhone as i32)));
    assert!(
        reg.registered_methods.contains(&(pb::Method::Email as i32)),
        "prefilled email is usable for reset"
    );
    // No mobile, or a malformed one: email only.
    for i in [0, 1] {
        let u = admin
            .get_user(user(&format!("{prefix}-{i:03}")))
            .await
            .unwrap()
            .into_inner();
        let kinds: Vec<i32> = u
            .registration
            .unwrap()
            .contacts
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(kinds, [pb::ContactKind::Email as i32], "user {i}");
    }
    // Existing contacts are kept unless overwrite.
    let custom = format!("{some}@custom.example.net");
    e.set_email(&some, pb::AdminContactKind::Email, &custom)
        .await;
    let again = run(false, false).await;
    assert_eq!(again.last().unwrap().updated, 0, "nothing new to fill");
    let hint = |u: pb::User| {
        u.registration
            .unwrap()
            .contacts
            .into_iter()
            .find(|c| c.kind == pb::ContactKind::Email as i32)
            .unwrap()
            .hint
    };
    assert!(
        hint(admin.get_user(user(&some)).await.unwrap().into_inner())
            .ends_with("custom.example.net")
    );
    run(false, true).await;
    assert!(
        hint(admin.get_user(user(&some)).await.unwrap().into_inner()).ends_with("@example.org")
    );
    e.stop().await;
}

/// Reports count registrations per method and events in a time range; a block shows up
/// and an admin clears it; the audit query filters by user and kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_blocks_and_audit_queries() {
    let mut e = env(|_| {}).await;
    let a = e.registered("reporta").await;
    let b = e.registered("reportb").await;
    e.set_email(&a, pb::AdminContactKind::Email, &format!("{a}@example.org"))
        .await;
    // b fails five verifications: blocked from SSPR.
    for _ in 0..5 {
        let s = e.c.start(&b).await;
        let _ =
            e.c.verify_with(&s.flow_id, &s.methods, |_| "wrong answer".into())
                .await;
    }
    let mut admin = e.admin();
    let u = admin.get_user(user(&b)).await.unwrap().into_inner();
    assert!(u.blocked_until > 0, "{u:?}");
    let rep = admin
        .get_report(pb::GetReportRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(rep.registered_users >= 2);
    let cov = |m: pb::Method| {
        rep.coverage
            .iter()
            .find(|c| c.method == m as i32)
            .map_or(0, |c| c.users)
    };
    assert!(cov(pb::Method::SecurityQuestions) >= 2);
    assert!(cov(pb::Method::Email) >= 1);
    assert!(rep.blocks >= 1 && rep.failed_verifications >= 5, "{rep:?}");
    assert!(rep.blocked_users.contains(&b));

    // A time range before everything counts nothing.
    let none = admin
        .get_report(pb::GetReportRequest { since: 1, until: 2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.blocks, none.failed_verifications), (0, 0));
    let err = admin
        .get_report(pb::GetReportRequest { since: 5, until: 3 })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "TIME_RANGE_INVALID");

    // The admin clears the block; self-service works again.
    let u = admin
        .clear_block(pb::ClearBlockRequest {
            username: b.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((u.blocked_until, u.recent_failures), (0, 0));
    e.c.verified_flow(&b).await;

    // Audit query by user and kind prefix.
    let mut s = admin
        .query_audit(pb::QueryAuditRequest {
            username: b.clone(),
            kind: "admin.*".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Some(r) = s.message().await.unwrap() {
        assert_eq!(r.username, b);
        kinds.push(r.kind);
    }
    assert_eq!(kinds, ["admin.clear_block"]);
    let mut s = admin
        .query_audit(pb::QueryAuditRequest {
            username: b.clone(),
            kind: "sspr.blocked".into(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(s.message().await.unwrap().is_some());
    assert!(s.message().await.unwrap().is_none(), "limit 1");

    // Revoking methods forces a new registration.
    let u = admin
        .revoke_methods(pb::RevokeMethodsRequest {
            username: a.clone(),
            methods: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let reg = u.registration.unwrap();
    assert!(!reg.complete && reg.registered_methods.is_empty());
    e.stop().await;
}

/// The unified authentication methods policy's migration states: before migration the SSPR
/// list governs reset, during migration either list, after it only the unified list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_states_decide_the_methods() {
    let mut e = env(|_| {}).await;
    let login = e.registered("migrate").await;
    e.set_email(
        &login,
        pb::AdminContactKind::Email,
        &format!("{login}@example.org"),
    )
    .await;
    let mut admin = e.admin();
    let offered = |s: &pb::StartResetResponse| {
        let mut v: Vec<i32> = s.methods.iter().map(|m| m.method).collect();
        v.sort();
        v
    };
    let (q, m) = (
        pb::Method::SecurityQuestions as i32,
        pb::Method::Email as i32,
    );
    for (state, want) in [
        (pb::MigrationState::PreMigration, vec![q]),
        (pb::MigrationState::InProgress, vec![q, m]),
        (pb::MigrationState::Complete, vec![m]),
    ] {
        let p = scenarios::set_policy(&mut admin, |p| {
            p.reset_methods = vec![q];
            p.unified_methods = vec![m];
            p.migration = state as i32;
        })
        .await;
        let mut eff = p.effective_methods.clone();
        eff.sort();
        assert_eq!(eff, want, "{state:?}");
        let s = e.c.start(&login).await;
        assert_eq!(offered(&s), want, "{state:?}: methods offered at reset");
        // Registration follows the same list.
        let st =
            e.c.reg
                .begin_registration(pb::BeginRegistrationRequest {
                    username: login.clone(),
                    password: PW.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap();
        let mut en = st.enabled_methods.clone();
        en.sort();
        assert_eq!(en, want, "{state:?}: methods to register");
    }
    // Complete with the unified list empty of a method the daemon cannot deliver: refused.
    let mut p = admin
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    p.unified_methods = vec![pb::Method::MobileSms as i32];
    let version = p.version;
    let err = admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(p),
            expected_version: version,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "POLICY_INVALID");
    e.stop().await;
}

/// Registration policy: portals are told to ask for registration after a login, and to ask
/// for re-confirmation once the period has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_required_and_reconfirmation() {
    let clock = support::TestClock::default();
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.policy.require_registration = true;
    raw.policy.reconfirm_days = 30;
    let d = Daemon::start_with_clock(raw, ca, clock.clock()).await;
    let mut c = d.clients().await;
    let login = unique("regpol");
    ldap.create_user(&login, PW).await;
    let begin = |c: &mut Clients| {
        let mut reg = c.reg.clone();
        let login = login.clone();
        async move {
            reg.begin_registration(pb::BeginRegistrationRequest {
                username: login,
                password: PW.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let st = begin(&mut c).await.status.unwrap();
    assert!(st.registration_required && !st.complete);
    c.register(&login, PW).await;
    let b = begin(&mut c).await;
    let st = b.status.unwrap();
    assert!(!st.registration_required && st.complete && !st.reconfirm_due);
    clock.advance(31 * 86_400);
    let b = begin(&mut c).await;
    assert!(b.status.unwrap().reconfirm_due, "30 days passed");
    let st = c
        .reg
        .reconfirm_registration(pb::ReconfirmRegistrationRequest {
            registration_token: b.registration_token,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert!(!st.reconfirm_due);
    assert_eq!(st.reconfirmed_at as u64, clock.now());
    d.stop().await;
}

/// `ssprd admin` against the running daemon: tables and JSON, script-friendly exit codes,
/// prefill progress, and no database access (the daemon holds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_against_a_running_daemon() {
    let mut e = env(|_| {}).await;
    let login = e.registered("clitest").await;
    let dir = e.work.path().to_path_buf();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let ca = write("grpc-ca.pem", &e.d.ca_pem);
    let (cert, key) = (
        write("admin.crt", &e.certs.admin.cert_pem),
        write("admin.key", &e.certs.admin.key_pem),
    );
    let (kcert, kkey) = (
        write("kiosk.crt", &e.certs.kiosk.cert_pem),
        write("kiosk.key", &e.certs.kiosk.key_pem),
    );
    let server = format!("https://localhost:{}", e.d.addr.port());
    let cli = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ssprd"))
            .args(&args)
            .env_remove("SSPRD_CONFIG")
            .output()
            .await
            .unwrap()
    };
    let admin_args = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "admin", "--server", &server, "--ca", &ca, "--cert", &cert, "--key", &key,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let out = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let o = cli(admin_args(&["policy", "get", "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 0);
    assert_eq!(v["scope"], "all");

    let o = cli(admin_args(&["status"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("enabled for all users"), "{text}");
    assert!(
        text.contains("email") && text.contains("on, 0 registered users"),
        "{text}"
    );
    assert!(text.contains("Next steps:\n  1. "), "{text}");
    let o = cli(admin_args(&["status", "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ready"].as_bool(), v["registered_users"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(v["checks"]["directory"]["ok"], true);

    let o = cli(admin_args(&[
        "policy",
        "set",
        "reconfirm_days=90",
        "require_registration=true",
    ]))
    .await;
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("reconfirm_days") && l.ends_with(" 90")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("version") && l.ends_with(" 1")),
        "{text}"
    );

    let o = cli(admin_args(&["policy", "set", "methods_required=3"])).await;
    assert_eq!(o.status.code(), Some(65), "invalid input: {}", out(&o));
    assert!(out(&o).contains("policy.methods_required"), "{}", out(&o));
    let o = cli(admin_args(&["policy", "set", "nonsense=1"])).await;
    assert_eq!(o.status.code(), Some(64), "usage: {}", out(&o));

    let o = cli(admin_args(&["user", "show", &login, "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["in_scope"], true);
    assert_eq!(v["registration_complete"], true);
    let o = cli(admin_args(&["user", "show", &login])).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("in scope") && text.contains("yes"), "{text}");

    let o = cli(admin_args(&[
        "user",
        "set-contact",
        &login,
        "email",
        &format!("{login}@example.org"),
    ]))
    .await;
    assert!(o.status.success(), "{}", out(&o));

    let o = cli(admin_args(&["user", "reset-password", &login, "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let generated = v["generated_password"].as_str().unwrap().to_string();
    assert_eq!(v["must_change"], true);
    assert!(e.ldap.must_change(&login, &generated).await);

    let o = cli(admin_args(&["user", "show", "no-such-user"])).await;
    assert_eq!(o.status.code(), Some(66), "not found: {}", out(&o));

    let o = cli(admin_args(&["prefill", "--dry-run"])).await;
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prefill: "),
        "progress: {}",
        out(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("would update"));

    let o = cli(admin_args(&["report", "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["admin_resets"].as_u64().unwrap() >= 1);

    let o = cli(admin_args(&["audit", "--kind", "admin.*", "--json"])).await;
    assert!(o.status.success(), "{}", out(&o));
    let kinds: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.contains(&"admin.reset".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"admin.set_contact".to_string()),
        "{kinds:?}"
    );

    // A kiosk certificate: not permitted.
    let mut args = admin_args(&["policy", "get"]);
    args[6] = kcert.clone();
    args[8] = kkey.clone();
    let o = cli(args).await;
    assert_eq!(o.status.code(), Some(77), "{}", out(&o));
    // No daemon there: unavailable.
    let mut args = admin_args(&["policy", "get"]);
    args[2] = format!("https://localhost:{}", ssprd_testbed::free_port().unwrap());
    let o = cli(args).await;
    assert_eq!(o.status.code(), Some(69), "{}", out(&o));
    e.stop().await;
}

/// Issue 11 item 4: an admin reset goes through the self-service write protocol and closes
/// the user's open self-service flows — a flow verified before it can no longer set a
/// password over the administrator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_closes_the_users_open_flows() {
    let mut e = env(|_| {}).await;
    let login = e.registered("closeflows").await;
    let first = e.c.verified_flow(&login).await;
    let second = e.c.verified_flow(&login).await;
    let given = "Closed-Flows-5678";
    e.admin()
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: login.clone(),
            new_password: given.into(),
            no_change_required: true,
            ..Default::default()
        })
        .await
        .expect("the admin reset");
    for flow in [&first, &second] {
        let err =
            e.c.complete(flow, "Self-Service-9012", false)
                .await
                .unwrap_err();
        assert_eq!(support::reason(&err), "FLOW_INVALID", "{err:?}");
    }
    assert!(e.ldap.can_bind(&login, given).await);
    e.stop().await;
}

/// GetSetupStatus walks an administrator from "not started" to rolled out: rollout,
/// methods, coverage, exposure, readiness checked for the call (the directory stopped and
/// back), and the next steps; admins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_status_from_not_started_to_rolled_out() {
    let mut e = env(|raw| {
        raw.policy.scope = ssprd::policy::Scope::None;
        raw.server.reflection = true;
    })
    .await;
    let status = |e: &Env| {
        let mut admin = e.admin();
        async move {
            admin
                .get_setup_status(pb::GetSetupStatusRequest {})
                .await
                .expect("GetSetupStatus")
                .into_inner()
        }
    };
    let s = status(&e).await;
    assert_eq!(s.scope, pb::Scope::None as i32);
    assert!(
        s.ready && s.checks.iter().all(|c| c.ok && c.detail.is_empty()),
        "{s:?}"
    );
    assert_eq!(
        s.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["store", "directory", "outbox"]
    );
    assert!(s.mutual_tls && s.reflection && s.metrics_listen.is_empty());
    assert_eq!(s.methods.len(), ssprd::method::Method::ALL.len());
    let email = s
        .methods
        .iter()
        .find(|m| m.method == pb::Method::Email as i32)
        .unwrap();
    assert!(email.enabled && email.missing_configuration.is_empty());
    let sms = s
        .methods
        .iter()
        .find(|m| m.method == pb::Method::MobileSms as i32)
        .unwrap();
    assert!(!sms.enabled && sms.missing_configuration == "[gateway]");
    let steps = s.next_steps.join("\n");
    assert!(steps.contains("not enabled for anyone yet"), "{steps}");
    assert!(steps.contains("reflection is on"), "{steps}");
    assert!(steps.contains("[metrics] listen"), "{steps}");
    assert!(s.portal_url.is_empty() && !s.portal_kiosk);
    assert!(steps.contains("enable [portal]"), "{steps}");
    assert!(
        !steps.contains("registered"),
        "nobody is asked to register before the rollout: {steps}"
    );

    // Other roles may not ask.
    let denied =
        e.d.admin(&e.certs.helpdesk)
            .get_setup_status(pb::GetSetupStatusRequest {})
            .await
            .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Rolled out to everyone, with a registered user.
    let mut admin = e.admin();
    let mut p = admin
        .get_policy(pb::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    p.scope = pb::Scope::All as i32;
    admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(p.clone()),
            expected_version: p.version,
        })
        .await
        .expect("UpdatePolicy");
    e.registered("status").await;
    let s = status(&e).await;
    assert_eq!(s.scope, pb::Scope::All as i32);
    assert_eq!((s.registered_users, s.complete_registrations), (1, 1));
    let questions = s
        .methods
        .iter()
        .find(|m| m.method == pb::Method::SecurityQuestions as i32)
        .unwrap();
    assert_eq!(questions.registered_users, 1);
    assert!(
        !s.next_steps.join("\n").contains("not enabled"),
        "{:?}",
        s.next_steps
    );

    // The directory down: not ready, and that comes first.
    e.ldap.stop().await;
    let s = status(&e).await;
    assert!(!s.ready);
    let dir = s.checks.iter().find(|c| c.name == "directory").unwrap();
    assert!(!dir.ok && dir.detail.contains("unavailable"), "{dir:?}");
    assert!(
        s.next_steps[0].contains("directory does not answer"),
        "{:?}",
        s.next_steps
    );
    e.ldap.start().await;
    assert!(status(&e).await.ready);
}
