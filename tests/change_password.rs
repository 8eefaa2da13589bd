//! ChangePassword over gRPC against a real slapd: the shared scenario (also run against
//! Samba AD in `samba_ad.rs`), and a password that has expired without grace binds.

mod support;

use support::{OpenLdap, scenarios};

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
