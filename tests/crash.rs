//! Reliability item 1: a daemon killed at each step of CompleteReset (intent stored, before
//! the directory write; after the write, before the flow is marked used; after that, before
//! the reply) leaves, after a restart, either nothing changed and the flow usable, or the
//! password changed and the flow used — never in between. The daemon is the real binary,
//! aborted by a debug-build crash point (`src/failpoint.rs`), against a real slapd.

mod support;

use ssprd::api::pb;
use support::{Daemon, OpenLdap, TestDirectory, scenarios, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_reset_survives_a_crash_at_every_step() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::crash_consistency(&ldap, work.path()).await;
}

/// Reliability item 13, the crash window of the outbox: the real binary aborted right after
/// the SMTP server accepted a notification (before the outbox entry was removed) sends it
/// again after the restart — never lost — and the copy carries the same `Message-ID`, so the
/// receiver can tell it is the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_sent_again_after_a_crash_has_the_same_message_id() {
    support::init();
    let ldap = OpenLdap::start().await;
    let smtp = ssprd::testbed::SmtpSink::start().await.expect("SMTP sink");
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.policy.enabled_methods = ["security_questions", "email"].map(String::from).to_vec();
    raw.email = support::email_to(&smtp);
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();

    let login = unique("outboxcrash");
    let (old, new) = ("Outbox-Old-1234", "Outbox-New-5678");
    let email = format!("{login}@example.org");
    ldap.create_user(&login, old).await;

    // Register questions and a confirmed email address; let its notifications go out.
    let daemon = scenarios::spawn_daemon(&cfg, None);
    let mut c = scenarios::connect_daemon(port, &ca).await;
    c.register(&login, old).await;
    let token = c.begin(&login, old).await;
    c.reg
        .add_contact(pb::AddContactRequest {
            registration_token: token.clone(),
            kind: pb::ContactKind::Email as i32,
            value: email.clone(),
            voice: false,
        })
        .await
        .expect("AddContact");
    let code = smtp.last_code(&email, 8).expect("confirmation code");
    c.reg
        .confirm_contact(pb::ConfirmContactRequest {
            registration_token: token,
            kind: pb::ContactKind::Email as i32,
            code,
        })
        .await
        .expect("ConfirmContact");
    // (The first contact has no earlier channel to tell; give any outbox work a moment.)
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    scenarios::stop_daemon(daemon);

    // The reset's notification is accepted by the SMTP server, then the daemon aborts.
    let recovered = |smtp: &ssprd::testbed::SmtpSink| -> Vec<String> {
        smtp.messages_to(&email)
            .into_iter()
            .filter(|m| m.contains("Self-service on your"))
            .collect()
    };
    let mut daemon = scenarios::spawn_daemon(&cfg, Some("outbox.after_send"));
    let mut c = scenarios::connect_daemon(port, &ca).await;
    let flow = c.verified_flow(&login).await;
    let _ = c.complete(&flow, new, false).await;
    let status = support::wait_for(|| daemon.try_wait().unwrap()).await;
    assert!(!status.success(), "the daemon aborted at the crash point");
    assert!(ldap.can_bind(&login, new).await, "the password changed");
    assert_eq!(recovered(&smtp).len(), 1, "accepted once before the crash");

    // After the restart the outbox still holds it: sent again, with the same Message-ID.
    let daemon = scenarios::spawn_daemon(&cfg, None);
    let copies = support::wait_for(|| {
        let m = recovered(&smtp);
        (m.len() >= 2).then_some(m)
    })
    .await;
    scenarios::stop_daemon(daemon);
    let ids: Vec<String> = copies
        .iter()
        .map(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .expect("a Message-ID header")
                .to_string()
        })
        .collect();
    assert_eq!(copies.len(), 2, "sent again once, not more");
    assert_eq!(ids[0], ids[1], "the copy has the same Message-ID");
    assert!(ids[0].contains("@example.org>"), "{}", ids[0]);
}
