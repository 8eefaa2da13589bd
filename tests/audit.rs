//! The audit log end to end: real flows write hash-chained records; `ssprd audit verify`
//! accepts the untouched log and finds an edited, a removed and a reordered record in the
//! database files; `ssprd audit export` prints them; retention prunes and stays verifiable.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::{Daemon, OpenLdap, TestClock, TestDirectory, scenarios};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

fn audit(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a few real flows, stops the daemon, returns the config file for `ssprd audit`.
async fn logged_flows(
    ldap: &OpenLdap,
    work: &Path,
    tweak: impl FnOnce(&mut ssprd::config::RawConfig),
    clock: &TestClock,
) -> std::path::PathBuf {
    let (mut raw, ca) = Daemon::config(work, ldap.directory_config(&work.join("dir")));
    tweak(&mut raw);
    let cfg = work.join("ssprd.toml");
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let daemon = Daemon::start_with_clock(raw, ca, clock.clock()).await;
    let mut c = daemon.clients().await;
    scenarios::register_and_reset(ldap, &mut c).await;
    let _ = c.start("nobody").await;
    daemon.stop().await;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let cfg = logged_flows(&ldap, work.path(), |_| {}, &TestClock::default()).await;

    let o = audit(&cfg, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let n: u64 = out
        .split("intact: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(n >= 6, "{out}");
    let o = audit(&cfg, &["export"]);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n);
    assert!(lines.iter().any(|l| l["event"]["kind"] == "reset.complete"));
    // Every request-driven record names its client.
    assert!(
        lines.iter().all(|l| l["event"]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))),
        "{lines:?}"
    );
    assert_eq!(lines[0]["seq"], 1);

    // Tamper with the database files as someone with disk access would.
    let db_path = work.path().join("db");
    let key = |seq: u64| seq.to_be_bytes();
    let original = {
        let db = sled::open(&db_path).unwrap();
        let t = db.open_tree("audit").unwrap();
        (1..=3)
            .map(|s| t.get(key(s)).unwrap().unwrap().to_vec())
            .collect::<Vec<_>>()
    };
    let tamper = |f: &dyn Fn(&sled::Tree)| {
        let db = sled::open(&db_path).unwrap();
        let t = db.open_tree("audit").unwrap();
        for (i, v) in original.iter().enumerate() {
            t.insert(key(i as u64 + 1), v.clone()).unwrap();
        }
        f(&t);
        db.flush().unwrap();
    };
    let expect_broken = |what: &str, seq: u64| {
        let o = audit(&cfg, &["verify"]);
        assert_eq!(o.status.code(), Some(65), "{what}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("broken at record {seq}")),
            "{what}: {}",
            text(&o)
        );
        let o = audit(&cfg, &["export"]);
        assert_eq!(o.status.code(), Some(65), "export refuses a broken chain");
    };

    tamper(&|t| {
        let mut r: serde_json::Value = serde_json::from_slice(&original[2]).unwrap();
        r["event"]["outcome"] = "failure".into();
        t.insert(key(3), serde_json::to_vec(&r).unwrap()).unwrap();
    });
    expect_broken("edited", 3);
    tamper(&|t| {
        t.remove(key(2)).unwrap();
    });
    expect_broken("removed", 2);
    tamper(&|t| {
        t.insert(key(2), original[2].clone()).unwrap();
        t.insert(key(3), original[1].clone()).unwrap();
    });
    expect_broken("reordered", 2);
    tamper(&|_| {});
    let o = audit(&cfg, &["verify"]);
    assert!(o.status.success(), "restored: {}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_and_the_rest_still_verifies() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let clock = TestClock::default();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.audit.retention_days = 1;
    raw.store.sweep_interval_secs = 1;
    let cfg = work.path().join("ssprd.toml");
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let daemon = Daemon::start_with_clock(raw, ca, clock.clock()).await;
    let mut c = daemon.clients().await;
    for _ in 0..4 {
        let _ = c.start("nobody").await;
    }
    clock.advance(2 * 86_400);
    let _ = c.start("someone-later").await;
    // The sweeper runs every second.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    daemon.stop().await;
    let o = audit(&cfg, &["verify"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("intact: 1 records after #4"), "{out}");
}

/// With `server.client_ca_file`, clients without a certificate are UNAUTHENTICATED,
/// certificates from another CA fail the handshake, a certificate from that CA that no
/// `[[clients]]` entry names has no rights, and a configured client is served and named
/// (with its certificate fingerprint) in the audit records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_named() {
    use ssprd::api::pb::{StartResetRequest, reset_service_client::ResetServiceClient};
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let clients_ca = ssprd_testbed::TestCa::new("kiosk CA").unwrap();
    let ca_file = work.path().join("clients-ca.crt");
    std::fs::write(&ca_file, clients_ca.pem()).unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.server.client_ca_file = Some(ca_file);
    raw.clients = vec![ssprd::config::RawClient {
        name: "lobby-1".into(),
        common_name: Some("lobby-kiosk-1".into()),
        role: Some(ssprd::api::auth::Role::Kiosk),
        ..Default::default()
    }];
    let cfg = work.path().join("ssprd.toml");
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let daemon = Daemon::start_with_clock(raw, ca.clone(), TestClock::default().clock()).await;

    let start = |ch| async move {
        ResetServiceClient::new(ch)
            .start_reset(StartResetRequest {
                username: "someone".into(),
            })
            .await
    };
    // No certificate: UNAUTHENTICATED; one from another CA: the handshake fails.
    let e = start(daemon.channel_as(None)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert_eq!(support::reason(&e), "CLIENT_CERTIFICATE_REQUIRED");
    let stranger = ssprd_testbed::TestCa::new("other CA")
        .unwrap()
        .client_cert("kiosk-9")
        .unwrap();
    assert!(
        start(daemon.channel_as(Some(&stranger))).await.is_err(),
        "untrusted client certificate"
    );
    // A certificate from the right CA that no client entry names: no rights.
    let unnamed = clients_ca.client_cert("lobby-kiosk-2").unwrap();
    let e = start(daemon.channel_as(Some(&unnamed))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert_eq!(support::reason(&e), "CLIENT_UNKNOWN");
    // A configured kiosk works.
    let kiosk = clients_ca.client_cert("lobby-kiosk-1").unwrap();
    start(daemon.channel_as(Some(&kiosk))).await.unwrap();
    daemon.stop().await;
    let o = audit(&cfg, &["export"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("lobby-1 127.0.0.1:") && out.contains("cert:"),
        "the kiosk is named with its certificate: {out}"
    );
}

/// `[audit] forward`: each record is also sent, as it is appended, to a local syslog socket
/// (RFC 5424, authpriv.notice, the record as JSON) or journald's native protocol (one
/// `SSPRD_AUDIT_*` field per record field). The test binds the sockets the daemon sends to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_forwarded_to_syslog_and_journald() {
    use ssprd::audit::ForwardKind;
    support::init();
    let ldap = OpenLdap::start().await;
    for kind in [ForwardKind::Syslog, ForwardKind::Journald] {
        let work = tempfile::tempdir().unwrap();
        let sock_path = work.path().join("log.sock");
        let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
        let (mut raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        raw.audit.forward = Some(kind);
        raw.audit.forward_socket = Some(sock_path.clone());
        let d = Daemon::start(raw, ca).await;
        let mut c = d.clients().await;
        let login = support::unique("fwd");
        c.start(&login).await;
        let mut buf = vec![0u8; 65536];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .expect("a forwarded record")
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        match kind {
            ForwardKind::Syslog => {
                assert!(msg.starts_with("<85>1 "), "{msg}");
                let json = &msg[msg.find('{').unwrap()..];
                let rec: serde_json::Value = serde_json::from_str(json).unwrap();
                assert_eq!(rec["seq"], 1);
                assert_eq!(rec["event"]["kind"], "reset.start");
                assert_eq!(rec["event"]["user"], login.as_str());
                assert_eq!(rec["hash"].as_str().unwrap().len(), 64);
            }
            ForwardKind::Journald => {
                for line in [
                    "SYSLOG_IDENTIFIER=ssprd".to_string(),
                    "SSPRD_AUDIT_SEQ=1".into(),
                    "SSPRD_AUDIT_KIND=reset.start".into(),
                    format!("SSPRD_AUDIT_USER={login}"),
                    "SSPRD_AUDIT_OUTCOME=success".into(),
                ] {
                    assert!(msg.lines().any(|l| l == line), "{line} in {msg}");
                }
                assert!(msg.lines().any(|l| l.starts_with("SSPRD_AUDIT_HASH=")));
            }
        }
        d.stop().await;
    }
}
