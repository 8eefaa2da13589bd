//! Local password rules before the directory write (security items 28, 29), over gRPC+TLS
//! against slapd: each refusal has its reason, the verified flow stays usable, and
//! GetPasswordPolicy tells a client the rules first.

mod support;

use sha1::{Digest, Sha1};
use ssprd::api::pb;
use support::{Daemon, OpenLdap, TestDirectory, reason};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rules_refuse_with_reasons_and_keep_the_flow() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    // A tiny breached-password list in the downloader's format, sorted by hash.
    let breached = "Zebra-Quantum-Harbor-61";
    let mut lines: Vec<String> = [breached, "Another-Leaked-One-77", "Third-Leak-Password-5"]
        .iter()
        .map(|p| format!("{}:42", hex::encode_upper(Sha1::digest(p.as_bytes()))))
        .collect();
    lines.sort();
    let list = work.path().join("pwned.txt");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();

    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.password.min_length = 10;
    raw.password.banned_terms = vec!["examplecorp".into()];
    raw.password.reject_names = true;
    raw.password.min_strength = Some(3);
    raw.password.common_passwords = true;
    raw.password.breached_file = Some(list);
    let daemon = Daemon::start(raw, ca).await;
    let mut c = daemon.clients().await;

    let login = support::unique("rules");
    ldap.create_user(&login, "Rules-Old-Pass-1234").await;
    c.register(&login, "Rules-Old-Pass-1234").await;
    let flow = c.verified_flow(&login).await;

    let p = c
        .reset
        .get_password_policy(pb::GetPasswordPolicyRequest {
            flow_id: flow.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.min_length, 10, "local 10 beats the directory's 8");
    assert!(p.banned_terms_checked && p.names_refused && p.breached_checked && p.common_checked);
    assert_eq!(p.min_strength, 3);
    assert_eq!(p.history, 5);

    let cases = [
        ("Short-1a".to_string(), "PASSWORD_TOO_SHORT"),
        ("Ex4mpleC0rp-Rocks-99".to_string(), "PASSWORD_BANNED"),
        (format!("{login}-Blue-Sky-77"), "PASSWORD_CONTAINS_NAME"),
        ("password1234".to_string(), "PASSWORD_COMMON"),
        ("abcabcabcabc".to_string(), "PASSWORD_TOO_WEAK"),
        (breached.to_string(), "PASSWORD_BREACHED"),
    ];
    for (pw, want) in &cases {
        let e = c.complete(&flow, pw, false).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{pw}");
        assert_eq!(reason(&e), *want, "{pw}");
        assert!(!e.message().is_empty());
    }
    assert!(
        ldap.can_bind(&login, "Rules-Old-Pass-1234").await,
        "nothing was written"
    );
    let good = "Violet-Orbit-Canyon-83";
    c.complete(&flow, good, false).await.unwrap();
    assert!(ldap.can_bind(&login, good).await);
    daemon.stop().await;
}

/// Issue 10 item 6 (NIST SP 800-63B common passwords): with a fresh default `[password]`
/// section, the most common passwords and the organisation's name plus a year are refused
/// with PASSWORD_COMMON, the verified flow stays usable, and GetPasswordPolicy says the
/// check is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_passwords_are_refused_by_default() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.password = ssprd::config::RawPassword::default();
    raw.email.organization = "Example Corp".into();
    let daemon = Daemon::start(raw, ca).await;
    let mut c = daemon.clients().await;

    let login = support::unique("common");
    ldap.create_user(&login, "Common-Old-Pass-1234").await;
    c.register(&login, "Common-Old-Pass-1234").await;
    let flow = c.verified_flow(&login).await;
    let p = c
        .reset
        .get_password_policy(pb::GetPasswordPolicyRequest {
            flow_id: flow.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(p.common_checked, "on by default");
    for pw in [
        "password",
        "Password1",
        "Welcome2026!",
        "qwerty123",
        "ExampleCorp2026",
        "Example-Corp-2027!",
        "P@ssw0rd2026",
        "Passwrd2026!",
    ] {
        let e = c.complete(&flow, pw, false).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{pw}");
        assert_eq!(reason(&e), "PASSWORD_COMMON", "{pw}");
    }
    assert!(
        ldap.can_bind(&login, "Common-Old-Pass-1234").await,
        "nothing was written"
    );
    let good = "Harbor-Lantern-Quiet-47";
    c.complete(&flow, good, false).await.unwrap();
    assert!(ldap.can_bind(&login, good).await);
    daemon.stop().await;
}
