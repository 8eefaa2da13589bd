//! ChangePassword over gRPC against a real slapd: the shared scenario (also run against
//! Samba AD in `samba_ad.rs`), and a password that has expired without grace binds.

mod support;

use ssprd::api::pb;
use support::{OpenLdap, TestDirectory, scenarios, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_wrong_and_must_change_passwords() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::change_password(&ldap, work.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_password_is_changed() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let d = scenarios::daemon(&ldap, work.path()).await;
    let mut c = d.clients().await;
    let login = unique("expired");
    let old = "Expiring-Pass-1234";
    ldap.create_user(&login, "Created-Pass-0000").await;

    // A policy whose passwords expire after 2 s, with no grace binds, for this user.
    ldap.expire_after(&login, 2).await;
    // The user's own change starts the clock (pwdChangedTime) under that policy.
    c.reset
        .change_password(pb::ChangePasswordRequest {
            username: login.clone(),
            current_password: "Created-Pass-0000".into(),
            new_password: old.into(),
        })
        .await
        .expect("a first change");
    assert!(ldap.can_bind(&login, old).await);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!ldap.can_bind(&login, old).await, "expired: no bind");

    let new = "Renewed-Pass-5678";
    let r = c
        .reset
        .change_password(pb::ChangePasswordRequest {
            username: login.clone(),
            current_password: old.into(),
            new_password: new.into(),
        })
        .await
        .expect("an expired password is changed")
        .into_inner();
    assert!(r.was_expired, "{r:?}");
    assert!(ldap.can_bind(&login, new).await, "the new password binds");
    assert!(!ldap.must_change(&login, new).await, "and needs no change");

    // A wrong current password for an expired account is refused like any other.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let e = c
        .reset
        .change_password(pb::ChangePasswordRequest {
            username: login.clone(),
            current_password: "Not-The-Password-1".into(),
            new_password: "Another-Pass-9753".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(support::reason(&e), "INVALID_CREDENTIALS");
    d.stop().await;
}
