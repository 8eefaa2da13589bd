//! Reliability item 10: a damaged or truncated database is refused with a clear message
//! (never silently started empty), and a backup made with `ssprd backup create` restores
//! into a working daemon: the user's registration resets a password against a real slapd,
//! and the audit chain verifies.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::{Daemon, OpenLdap, TestDirectory, unique};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

fn ssprd(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_database_is_refused_and_a_backup_restores() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (raw, ca, _port, cfg) = Daemon::config_file(work.path(), &ldap);
    let db = raw.store.path.clone();

    let login = unique("backup");
    let pw = "Backup-Pass-1234";
    ldap.create_user(&login, pw).await;
    let d = Daemon::start(raw.clone(), ca.clone()).await;
    d.clients().await.register(&login, pw).await;
    d.stop().await;
    // sled's flusher lets go of the lock within its flush interval.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;

    let backup = work.path().join("ssprd.backup");
    let o = ssprd(
        &cfg,
        &["backup", "create", "--out", backup.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Truncate the database: the daemon refuses to start, naming the problem.
    std::fs::OpenOptions::new()
        .write(true)
        .open(db.join("db"))
        .unwrap()
        .set_len(0)
        .unwrap();
    // (`timeout`: a daemon that wrongly starts would otherwise run forever.)
    let o = Command::new("timeout")
        .args(["20", BIN, "serve", "--config", cfg.to_str().unwrap()])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a truncated database must not start: {}",
        text(&o)
    );
    assert!(text(&o).contains("damaged"), "{}", text(&o));
    assert!(
        text(&o).contains("restore it from a backup"),
        "{}",
        text(&o)
    );

    // Restore refuses a non-empty target; into a fresh one it works.
    let o = ssprd(
        &cfg,
        &["backup", "restore", "--from", backup.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("move the damaged database away"),
        "{}",
        text(&o)
    );
    std::fs::rename(&db, work.path().join("db.damaged")).unwrap();
    let o = ssprd(
        &cfg,
        &["backup", "restore", "--from", backup.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ssprd(&cfg, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));

    // The restored registration works end to end.
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;
    let flow = c.verified_flow(&login).await;
    c.complete(&flow, "Restored-Pass-5678", false)
        .await
        .unwrap();
    assert!(ldap.can_bind(&login, "Restored-Pass-5678").await);
    d.stop().await;
}
