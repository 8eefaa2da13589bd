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
    let dead = ssprd_testbed::free_port().unwrap();
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
            ..Default::default()
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

/// Security item 13: wrong answers spread over 50 client connections still count against
/// the one account (blocked at 5), and the directory account is not locked by any of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_from_many_clients_trip_the_account_counter() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon(&ldap, work.path()).await;
    let login = support::unique("spread");
    ldap.create_user(&login, "Spread-Pass-1234").await;
    daemon
        .clients()
        .await
        .register(&login, "Spread-Pass-1234")
        .await;
    let mut blocked_at = None;
    for i in 0..50 {
        // A new TLS connection per guess, as 50 kiosks would make.
        let mut c = daemon.clients().await;
        let s = match c
            .reset
            .start_reset(ssprd::api::pb::StartResetRequest {
                username: login.clone(),
            })
            .await
        {
            Ok(s) => s.into_inner(),
            Err(e) => {
                assert_eq!(support::reason(&e), "SSPR_BLOCKED");
                blocked_at.get_or_insert(i);
                continue;
            }
        };
        if let Err(e) = c
            .verify_with(&s.flow_id, &s.methods, |_| "wrong guess".into())
            .await
        {
            assert_eq!(support::reason(&e), "SSPR_BLOCKED");
            blocked_at.get_or_insert(i);
        }
    }
    assert_eq!(
        blocked_at,
        Some(4),
        "the fifth failure blocks, whichever client sent it"
    );
    assert!(
        ldap.can_bind(&login, "Spread-Pass-1234").await,
        "directory account untouched"
    );
    daemon.stop().await;
}

/// Security items 32 and 33: empty and NUL-containing passwords are refused before any bind
/// (an empty simple bind would be an unauthenticated "success"), and a directory whose
/// certificate is not from the configured CA is never sent a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bind_with_empty_passwords_and_no_untrusted_directory() {
    use ssprd::api::pb;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon(&ldap, work.path()).await;
    let mut c = daemon.clients().await;
    let login = support::unique("emptypw");
    ldap.create_user(&login, "Empty-Pass-1234").await;
    for pw in ["", "\0", "Empty-Pass-1234\0"] {
        let e = c
            .reg
            .begin_registration(pb::BeginRegistrationRequest {
                username: login.clone(),
                password: pw.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(support::reason(&e), "INVALID_CREDENTIALS", "{pw:?}");
    }
    daemon.stop().await;

    // Trust another CA: the TLS handshake fails, so no bind and no password leave ssprd.
    let other = ssprd_testbed::TestCa::new("not the directory's CA").unwrap();
    let wrong_ca = work.path().join("wrong-ca.crt");
    std::fs::write(&wrong_ca, other.pem()).unwrap();
    let work2 = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon_with(&ldap, work2.path(), |raw| {
        raw.directory.ca_file = Some(wrong_ca.clone());
    })
    .await;
    let mut c = daemon.clients().await;
    let e = c
        .reg
        .begin_registration(pb::BeginRegistrationRequest {
            username: login.clone(),
            password: "Empty-Pass-1234".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(support::reason(&e), "DIRECTORY_UNAVAILABLE");
    let log = std::fs::read_to_string(ldap.slapd.dir.join("slapd.log")).unwrap();
    assert!(
        log.contains("BIND dn=\"cn=sspr,ou=services"),
        "slapd logs binds in this form (the service account bound over trusted TLS earlier)"
    );
    assert!(
        !log.contains(&format!("BIND dn=\"uid={login}")),
        "no bind as the user reached slapd"
    );
    daemon.stop().await;
}

/// Issue 10 item 2: wrong passwords to BeginRegistration, one by one and from 20 clients at
/// once, never lock the directory account (ppolicy `pwdMaxFailure` 3 and 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_never_locks_the_directory_account() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::sign_in_never_locks(&ldap, work.path()).await;
}

/// `ssprd check-directory` (the real binary) asks slapd for each right of the configured
/// account without changing anything: the service account has them all; an ordinary user
/// as the account is told precisely what it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_directory_reports_each_right_without_changing_anything() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let login = support::unique("rights");
    ldap.create_user(&login, "Rights-Pass-1234").await;
    let run = |raw: &ssprd::config::RawConfig, extra: &[&str]| {
        support::check_directory(raw, work.path(), extra)
    };
    let line = support::report_line;

    // The service account: every right, checked against a user it found.
    let (raw, _) =
        support::Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    let (code, out) = run(&raw, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checked against user"), "{out}");
    for right in [
        "bind as the service account",
        "find users",
        "read the password policy",
        "set passwords",
        "unlock accounts",
        "require a change at next sign-in",
    ] {
        assert!(line(&out, right).ends_with(" ok"), "{right}: {out}");
    }
    assert!(
        ldap.can_bind(&login, "Rights-Pass-1234").await,
        "nothing changed"
    );

    // A service account that may read but not write: precisely what it lacks.
    let mut read_only = raw.clone();
    read_only.directory.bind_dn = ssprd_testbed::READ_ONLY_SERVICE_DN.into();
    let (code, out) = run(&read_only, &["--user", &login]);
    assert_eq!(code, Some(77), "{out}");
    assert!(line(&out, "find users").ends_with(" ok"), "{out}");
    assert!(
        line(&out, "read the password policy").ends_with(" ok"),
        "{out}"
    );
    for (right, attr) in [
        ("set passwords", "userPassword"),
        ("unlock accounts", "pwdAccountLockedTime"),
        ("require a change", "pwdReset"),
    ] {
        let l = line(&out, right);
        assert!(
            l.contains(&format!("MISSING: write access to {attr}"))
                && l.contains(ssprd_testbed::READ_ONLY_SERVICE_DN),
            "{out}"
        );
    }

    // An ordinary user as the account sees nobody but itself.
    let mut plain = raw.clone();
    plain.directory.bind_dn = ldap.user_dn(&login);
    let pw = work.path().join("plain-password");
    ssprd_testbed::write_private(&pw, "Rights-Pass-1234").unwrap();
    plain.directory.bind_password = Some(ssprd::config::SecretSource::File(pw));
    let (code, out) = run(&plain, &[]);
    assert_eq!(code, Some(77), "{out}");
    assert!(
        line(&out, "find users").contains("MISSING: no user other than the service account"),
        "{out}"
    );
    // A wrong password: the bind is what is missing.
    ssprd_testbed::write_private(&work.path().join("plain-password"), "wrong").unwrap();
    let (code, out) = run(&plain, &[]);
    assert_eq!(code, Some(77), "{out}");
    assert!(
        line(&out, "bind as the service account").contains("MISSING"),
        "{out}"
    );
    assert!(
        ldap.can_bind(&login, "Rights-Pass-1234").await,
        "nothing changed"
    );
}
