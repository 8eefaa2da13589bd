//! Reliability item 1: a daemon killed at each step of CompleteReset (intent stored, before
//! the directory write; after the write, before the flow is marked used; after that, before
//! the reply) leaves, after a restart, either nothing changed and the flow usable, or the
//! password changed and the flow used — never in between. The daemon is the real binary,
//! aborted by a debug-build crash point (`src/failpoint.rs`), against a real slapd.

mod support;

use ssprd::api::pb;
use support::{Certs, Daemon, OpenLdap, TestDirectory, reason, scenarios, unique};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The frozen-directory test times its SIGSTOP into a 150 ms window and gives the directory
/// 300 ms: it runs alone (write), the other tests of this file beside each other (read).
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The (outcome, reason) of every audit record of `kind`, in order, from a stopped daemon's
/// store (`ssprd audit export`).
fn audit_outcomes(cfg: &std::path::Path, kind: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssprd"))
        .args(["audit", "export", "--config"])
        .arg(cfg)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event"]["kind"] == kind)
        .map(|l| {
            let e = &l["event"];
            (
                e["outcome"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Whether `password` works for `login` within 10 s (a write that goes on after its call
/// answered).
async fn binds_within_10s(ldap: &OpenLdap, login: &str, password: &str) -> bool {
    for _ in 0..100 {
        if ldap.can_bind(login, password).await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// An AdminService client of a spawned daemon, presenting `cert`.
fn admin_client(
    port: u16,
    ca: &str,
    cert: &ssprd_testbed::CertPair,
) -> pb::admin_service_client::AdminServiceClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost")
        .identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem));
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    pb::admin_service_client::AdminServiceClient::new(ch)
}

fn admin_reset(login: &str, password: &str) -> pb::ResetUserPasswordRequest {
    pb::ResetUserPasswordRequest {
        username: login.into(),
        new_password: password.into(),
        no_change_required: true,
        ..Default::default()
    }
}

/// A daemon's files in a new directory under `base`, with client certificates (an admin's
/// among them): (the directory, the CA, the port, the configuration file, the certificates).
fn admin_daemon_files(
    base: &std::path::Path,
    ldap: &OpenLdap,
) -> (tempfile::TempDir, String, u16, std::path::PathBuf, Certs) {
    let work = tempfile::tempdir_in(base).unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), ldap);
    let certs = Certs::install(&mut raw, work.path());
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    (work, ca, port, cfg, certs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_reset_survives_a_crash_at_every_step() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    scenarios::crash_consistency(&ldap, work.path()).await;
}

/// Issue 11 item 4: an administrator's reset (ResetUserPassword) follows the same write
/// protocol as CompleteReset. The real binary is aborted at each step of the admin's write
/// while the user has a verified self-service flow open; after the restart the cut-off
/// write is decided from the directory before anything else writes the user's password:
/// not written — the user's own reset goes through; written — the admin's reset stands, it
/// closed the user's flow, and the audit says how it was decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_survives_a_crash_at_every_step() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let base = tempfile::tempdir().unwrap();
    for point in [
        "complete.intent",
        "complete.after_write",
        "complete.after_commit",
    ] {
        let (_work, ca, port, cfg, certs) = admin_daemon_files(base.path(), &ldap);
        let login = unique("admincrash");
        let (old, given, own, later) = (
            "AdminCrash-Old-1234",
            "AdminCrash-Given-5678",
            "AdminCrash-Own-9012",
            "AdminCrash-Later-3456",
        );
        ldap.create_user(&login, old).await;

        let mut daemon = scenarios::spawn_daemon(&cfg, Some(point));
        let mut c = scenarios::connect_daemon(port, &ca).await;
        c.register(&login, old).await;
        let flow = c.verified_flow(&login).await;
        let e = admin_client(port, &ca, &certs.admin)
            .reset_user_password(admin_reset(&login, given))
            .await
            .unwrap_err();
        eprintln!("{point}: the admin saw {:?}", e.code());
        let status = daemon.exit_within(30);
        assert!(!status.success(), "{point}: the daemon aborted");

        daemon = scenarios::spawn_daemon(&cfg, None);
        let mut c = scenarios::connect_daemon(port, &ca).await;
        let expected = match point {
            "complete.intent" => {
                assert!(ldap.can_bind(&login, old).await, "{point}: nothing changed");
                let done = c.complete(&flow, own, false).await;
                assert!(done.is_ok(), "{point}: the user's flow is usable: {done:?}");
                assert!(ldap.can_bind(&login, own).await);
                vec![("failure".to_string(), "write_not_applied".to_string())]
            }
            "complete.after_write" => {
                assert!(ldap.can_bind(&login, given).await, "{point}: written");
                // Decided before the user's write: it stands, and closed the user's flow.
                let e = c.complete(&flow, own, false).await.unwrap_err();
                assert_eq!(reason(&e), "FLOW_INVALID", "{point}: {e:?}");
                assert!(
                    ldap.can_bind(&login, given).await,
                    "{point}: not overwritten"
                );
                vec![(
                    "success".to_string(),
                    "resolved_after_interruption".to_string(),
                )]
            }
            _ => {
                assert!(ldap.can_bind(&login, given).await, "{point}: written");
                let e = c.complete(&flow, own, false).await.unwrap_err();
                assert_eq!(reason(&e), "FLOW_INVALID", "{point}: the flow was closed");
                vec![("success".to_string(), String::new())]
            }
        };
        // A later admin reset goes through as usual.
        admin_client(port, &ca, &certs.admin)
            .reset_user_password(admin_reset(&login, later))
            .await
            .unwrap_or_else(|e| panic!("{point}: a later admin reset: {e:?}"));
        assert!(ldap.can_bind(&login, later).await, "{point}");
        scenarios::stop_daemon(daemon);
        let mut all = expected;
        all.push(("success".into(), String::new()));
        assert_eq!(audit_outcomes(&cfg, "admin.reset"), all, "{point}");
    }
}

/// Issue 24 item 13: an admin reset that requires a change at next sign-in, the daemon
/// aborted at every step of its write — the intent stored, between the password and its
/// flag, after both, after the commit. The password and the flag are one intent: after the
/// restart, with nobody calling for the user, the write is decided at once and audited —
/// both applied, or neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_with_must_change_is_whole_after_a_crash_at_every_step() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let base = tempfile::tempdir().unwrap();
    for point in [
        "complete.intent",
        "directory.before_must_change",
        "complete.after_write",
        "complete.after_commit",
    ] {
        let (_work, ca, port, cfg, certs) = admin_daemon_files(base.path(), &ldap);
        let login = unique("mustcrash");
        let (old, given) = ("MustCrash-Old-1234", "MustCrash-Given-5678");
        ldap.create_user(&login, old).await;

        let mut daemon = scenarios::spawn_daemon(&cfg, Some(point));
        scenarios::connect_daemon(port, &ca).await;
        let must_change = pb::ResetUserPasswordRequest {
            username: login.clone(),
            new_password: given.into(),
            ..Default::default()
        };
        let e = admin_client(port, &ca, &certs.admin)
            .reset_user_password(must_change)
            .await
            .unwrap_err();
        eprintln!("{point}: the admin saw {:?}", e.code());
        assert!(!daemon.exit_within(30).success(), "{point}: aborted");

        // Restarted, and nobody calls for this user: the decision comes by itself.
        daemon = scenarios::spawn_daemon(&cfg, None);
        scenarios::connect_daemon(port, &ca).await;
        let mut admin = admin_client(port, &ca, &certs.admin);
        let mut records = Vec::new();
        for _ in 0..150 {
            let mut stream = admin
                .query_audit(pb::QueryAuditRequest {
                    kind: "admin.reset".into(),
                    username: login.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            records.clear();
            while let Some(r) = stream.message().await.unwrap() {
                records.push((r.outcome, r.reason));
            }
            if !records.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let pair = |o: &str, r: &str| vec![(o.to_string(), r.to_string())];
        match point {
            "complete.intent" => {
                assert!(ldap.can_bind(&login, old).await, "{point}: nothing changed");
                assert!(!ldap.must_change(&login, old).await, "{point}: no flag");
                assert_eq!(records, pair("failure", "write_not_applied"), "{point}");
            }
            "complete.after_commit" => {
                assert!(ldap.must_change(&login, given).await, "{point}: both");
                assert_eq!(records, pair("success", "must_change"), "{point}");
            }
            _ => {
                assert!(ldap.must_change(&login, given).await, "{point}: both");
                assert_eq!(
                    records,
                    pair("success", "resolved_after_interruption+must_change"),
                    "{point}"
                );
            }
        }
        scenarios::stop_daemon(daemon);
    }
}

/// Issue 24 item 15: a correct VerifyMethod was once answered SSPR_BLOCKED during kill -9
/// cycles, with no account blocked. Attempts a killed daemon had taken from the account's
/// failure budget (its proofs never answered) held that budget for minutes. Five proofs,
/// each cut off by aborting the daemon after its attempt was taken: after the restart the
/// attempts are released (audited `interrupted`, not failures), and the right answers
/// verify at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_cut_off_by_crashes_never_refuse_a_right_one() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (_raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    let login = unique("cutoff");
    let pw = "Cutoff-Pass-1234";
    ldap.create_user(&login, pw).await;
    let daemon = scenarios::spawn_daemon(&cfg, None);
    let mut c = scenarios::connect_daemon(port, &ca).await;
    c.register(&login, pw).await;
    let flow = c.start(&login).await;
    scenarios::stop_daemon(daemon);
    for cycle in 0..5 {
        let mut daemon = scenarios::spawn_daemon(&cfg, Some("verify.after_attempt"));
        let mut c = scenarios::connect_daemon(port, &ca).await;
        let e = c
            .verify_with(&flow.flow_id, &flow.methods, support::answer_for)
            .await
            .expect_err("the daemon aborts mid-proof");
        eprintln!("cycle {cycle}: {:?}", e.code());
        assert!(!daemon.exit_within(30).success(), "aborted");
    }
    let daemon = scenarios::spawn_daemon(&cfg, None);
    let mut c = scenarios::connect_daemon(port, &ca).await;
    let v = c
        .verify_with(&flow.flow_id, &flow.methods, support::answer_for)
        .await
        .expect("a right proof is checked, not refused");
    assert!(v.verified);
    scenarios::stop_daemon(daemon);
    let records = audit_outcomes(&cfg, "reset.verify");
    let interrupted = records
        .iter()
        .filter(|(o, r)| o == "interrupted" && r == "daemon_stopped")
        .count();
    assert_eq!(interrupted, 5, "{records:?}");
    assert!(
        !records.iter().any(|(o, _)| o == "failure"),
        "none counted as a failure: {records:?}"
    );
    assert!(audit_outcomes(&cfg, "sspr.blocked").is_empty());
}

/// Issue 11 item 4: an admin reset whose write outlasts the request's deadline answers
/// OUTCOME_PENDING before it; the write goes on and is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_outlasting_its_deadline_loses_nothing() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.server.request_timeout_ms = 2_000;
    raw.directory.timeout_ms = 1_500;
    let certs = Certs::install(&mut raw, work.path());
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let login = unique("admindeadline");
    let (old, given) = ("AdminSlow-Old-1234", "AdminSlow-Given-5678");
    ldap.create_user(&login, old).await;

    let daemon = scenarios::spawn_daemon(&cfg, Some("complete.slow_write"));
    let mut c = scenarios::connect_daemon(port, &ca).await;
    c.register(&login, old).await;
    let started = std::time::Instant::now();
    let e = admin_client(port, &ca, &certs.admin)
        .reset_user_password(admin_reset(&login, given))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(reason(&e), "OUTCOME_PENDING", "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        binds_within_10s(&ldap, &login, given).await,
        "the write went on after the deadline"
    );
    // Give the task a moment to record the outcome, then read the audit log.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    scenarios::stop_daemon(daemon);
    assert_eq!(
        audit_outcomes(&cfg, "admin.reset"),
        [("success".to_string(), String::new())]
    );
}

/// Reliability item 13, the crash window of the outbox: the real binary aborted right after
/// the SMTP server accepted a notification (before the outbox entry was removed) sends it
/// again after the restart — never lost — and the copy carries the same `Message-ID`, so the
/// receiver can tell it is the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_sent_again_after_a_crash_has_the_same_message_id() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let smtp = ssprd_testbed::SmtpSink::start().await.expect("SMTP sink");
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
    c.add_confirmed_email(&token, &email, &smtp).await;
    // (The first contact has no earlier channel to tell; give any outbox work a moment.)
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    scenarios::stop_daemon(daemon);

    // The reset's notification is accepted by the SMTP server, then the daemon aborts.
    let recovered = |smtp: &ssprd_testbed::SmtpSink| -> Vec<String> {
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

/// Reliability item 4: the directory applied the password but its reply was lost (a
/// debug-build fault point turns the real, successful write into a lost reply). The outcome
/// is decided by reading the user's `pwdChangedTime` from the directory — no second write,
/// no bind as the user — so the reset succeeds once and the flow is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_to_the_write_is_decided_from_the_directory() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (_raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    let login = unique("replylost");
    let (old, new, newer) = ("Lost-Old-1234", "Lost-New-5678", "Lost-Newer-9012");
    ldap.create_user(&login, old).await;

    let daemon = scenarios::spawn_daemon(&cfg, Some("complete.reply_lost"));
    let mut c = scenarios::connect_daemon(port, &ca).await;
    c.register(&login, old).await;
    let flow = c.verified_flow(&login).await;
    let done = c.complete(&flow, new, false).await;
    assert!(done.is_ok(), "the write did happen: success, {done:?}");
    assert!(ldap.can_bind(&login, new).await, "the new password works");
    // Not retried; calling again says the password was changed.
    let e = c.complete(&flow, newer, false).await.unwrap_err();
    assert_eq!(reason(&e), "RESET_ALREADY_COMPLETED");
    assert!(ldap.can_bind(&login, new).await, "no second write");
    scenarios::stop_daemon(daemon);
    // The audit trail shows the lost reply and how it was decided.
    assert_eq!(
        audit_outcomes(&cfg, "reset.complete"),
        [
            ("indeterminate".into(), "resolved_applied".into()),
            ("success".into(), String::new())
        ],
        "the write's reply was lost (the fault point was reached) and decided as applied"
    );
}

/// Reliability item 5: the gRPC deadline (2 s here) expires while the directory is slow to
/// take the write (a debug-build fault point holds the write back 3 s; the LDAP timeout
/// is shorter than the deadline). The client sees the deadline; the write goes on and its
/// outcome is recorded, so a retry with the same flow id learns that the password was
/// changed, and nothing is written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_expiring_mid_write_loses_nothing() {
    let _beside = ALONE.read().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.server.request_timeout_ms = 2_000;
    raw.directory.timeout_ms = 1_500;
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let login = unique("deadline");
    let (old, new, newer) = (
        "Deadline-Old-1234",
        "Deadline-New-5678",
        "Deadline-Newer-9012",
    );
    ldap.create_user(&login, old).await;

    let daemon = scenarios::spawn_daemon(&cfg, Some("complete.slow_write"));
    let mut c = scenarios::connect_daemon(port, &ca).await;
    c.register(&login, old).await;
    let flow = c.verified_flow(&login).await;
    let started = std::time::Instant::now();
    let e = c.complete(&flow, new, false).await.unwrap_err();
    // Answered before the deadline, with a reason that says to call again (never CANCELLED).
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(reason(&e), "OUTCOME_PENDING", "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The write happens after the answer, and is recorded.
    assert!(
        binds_within_10s(&ldap, &login, new).await,
        "the write went on after the deadline"
    );
    let e = c.complete(&flow, newer, false).await.unwrap_err();
    assert_eq!(
        reason(&e),
        "RESET_ALREADY_COMPLETED",
        "the retry learns the outcome: {e:?}"
    );
    assert!(ldap.can_bind(&login, new).await, "no second write");
    assert!(!ldap.can_bind(&login, newer).await);
    scenarios::stop_daemon(daemon);
}

/// Issue 10 item 5: CompleteReset with slapd frozen (SIGSTOP) before the call and between
/// the service bind and the write, 50 trials each. Every answer comes before the deadline
/// with a reason, never CANCELLED: DIRECTORY_UNAVAILABLE when nothing was written (the old
/// password still works once slapd runs again), OUTCOME_PENDING when the write may have
/// happened — and then the retry with the same flow id says what happened
/// (RESET_ALREADY_COMPLETED when the frozen write went through after all, else it writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_reset_on_a_frozen_directory_always_answers_with_a_reason() {
    let _alone = ALONE.write().await;
    support::init();
    let ldap = OpenLdap::start().await;
    let slapd = ldap.slapd.pid().expect("slapd runs") as i32;
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &slapd.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.server.request_timeout_ms = 800;
    raw.directory.timeout_ms = 300;
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let mut c;
    let daemon = {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ssprd"));
        cmd.args(["serve", "--config", cfg.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .env("SSPRD_FAILPOINT", "directory.slow_write")
            .env("SSPRD_FAILPOINT_DELAY_MS", "150");
        let child = scenarios::Spawned(cmd.spawn().unwrap());
        c = scenarios::connect_daemon(port, &ca).await;
        child
    };
    // The users first: a password change is decided from pwdChangedTime, which counts
    // seconds, so none may be created within the second of its reset (see the README).
    let old = "Frozen-Old-1234";
    let mut users = Vec::new();
    for _ in 0..100 {
        let login = unique("frozen");
        ldap.create_user(&login, old).await;
        c.register(&login, old).await;
        users.push(login);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let mut users = users.into_iter();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (when, trials) in [("before", 50), ("during", 50)] {
        for i in 0..trials {
            let login = users.next().unwrap();
            let new = format!("Frozen-New-{i:02}-x");
            let flow = c.verified_flow(&login).await;
            if when == "before" {
                signal("-STOP");
            }
            let mut c2 = scenarios::connect_daemon(port, &ca).await;
            let (f2, n2) = (flow.clone(), new.clone());
            let call = tokio::spawn(async move {
                let t = std::time::Instant::now();
                (c2.complete(&f2, &n2, false).await, t.elapsed())
            });
            if when == "during" {
                // Inside the pause between the service bind and the write.
                tokio::time::sleep(std::time::Duration::from_millis(75)).await;
                signal("-STOP");
            }
            let (answer, took) = call.await.unwrap();
            signal("-CONT");
            assert!(
                took < std::time::Duration::from_millis(800),
                "{when} {i}: {took:?}"
            );
            let e = answer.expect_err("the directory is frozen");
            assert_ne!(e.code(), Code::Cancelled, "{when} {i}: {e:?}");
            let why = reason(&e);
            *seen.entry(format!("{when}: {why}")).or_default() += 1;
            match why.as_str() {
                "DIRECTORY_UNAVAILABLE" => {
                    assert_eq!(e.code(), Code::Unavailable);
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    assert!(
                        ldap.can_bind(&login, old).await,
                        "{when} {i}: nothing written"
                    );
                    c.complete(&flow, &new, false)
                        .await
                        .unwrap_or_else(|e| panic!("{when} {i}: the retry writes: {e:?}"));
                }
                "OUTCOME_PENDING" => {
                    assert_eq!(e.code(), Code::Unavailable);
                    let mut retry = c.complete(&flow, &new, false).await;
                    for _ in 0..20 {
                        match &retry {
                            Err(e) if reason(e) == "OUTCOME_PENDING" => {
                                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                                retry = c.complete(&flow, &new, false).await;
                            }
                            _ => break,
                        }
                    }
                    match retry {
                        Ok(_) => *seen.entry(format!("{when}: retry wrote")).or_default() += 1,
                        Err(e) => {
                            assert_eq!(reason(&e), "RESET_ALREADY_COMPLETED", "{when} {i}: {e:?}");
                            *seen
                                .entry(format!("{when}: retry found it done"))
                                .or_default() += 1;
                        }
                    }
                }
                other => panic!("{when} {i}: unexpected answer {other}: {e:?}"),
            }
            assert!(
                ldap.can_bind(&login, &new).await,
                "{when} {i}: the new password works"
            );
            assert!(
                !ldap.can_bind(&login, old).await,
                "{when} {i}: the old one does not"
            );
        }
    }
    eprintln!("answers: {seen:?}");
    assert!(
        seen.keys()
            .any(|k| k.starts_with("during: OUTCOME_PENDING")),
        "freezing during the write leaves the outcome pending: {seen:?}"
    );
    scenarios::stop_daemon(daemon);
}
