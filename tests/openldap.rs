//! End to end over gRPC+TLS against a real slapd (LDAPS, ppolicy), one per test.

mod support;

use support::{OpenLdap, scenarios};

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
