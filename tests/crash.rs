//! Reliability item 1: a daemon killed at each step of CompleteReset (intent stored, before
//! the directory write; after the write, before the flow is marked used; after that, before
//! the reply) leaves, after a restart, either nothing changed and the flow usable, or the
//! password changed and the flow used — never in between. The daemon is the real binary,
//! aborted by a debug-build crash point (`src/failpoint.rs`), against a real slapd.

mod support;

use support::{OpenLdap, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_reset_survives_a_crash_at_every_step() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::crash_consistency(&ldap, work.path()).await;
}
