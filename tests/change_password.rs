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
    scenarios::change_expired(&ldap, work.path()).await;
}

/// Expired with one grace bind left: checking the current password takes it, so the change
/// cannot bind as the user any more; the service account sets the password instead. With
/// two left, the user's own change is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_password_with_grace_binds_left_is_changed() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let d = scenarios::daemon(&ldap, work.path()).await;
    let mut c = d.clients().await;
    for grace in [1, 2] {
        let login = unique("grace");
        let (old, new) = ("Graceful-Pass-1234", "Renewed-Pass-5678");
        ldap.create_user(&login, old).await;
        ldap.expire_password_with_grace(&login, old, grace).await;
        let r = c
            .reset
            .change_password(pb::ChangePasswordRequest {
                username: login.clone(),
                current_password: old.into(),
                new_password: new.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{grace} grace binds left: {e:?}"))
            .into_inner();
        assert!(!r.was_must_change, "{r:?}");
        assert!(
            ldap.can_bind(&login, new).await,
            "{grace}: the new password binds"
        );
        assert!(
            !ldap.must_change(&login, new).await,
            "{grace}: and needs no change"
        );
    }
    d.stop().await;
}
