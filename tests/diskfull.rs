//! Reliability items 8 and 9: with the database's disk full, requests that must write answer
//! UNAVAILABLE / STORE_UNAVAILABLE (nothing acknowledged), the failed flush is not retried
//! but stops the daemon, and once there is room again a new daemon starts from what is on
//! disk: the registration made before works and the audit chain verifies. The disk is a
//! small tmpfs mounted by the test (root only; `scripts/test.sh` runs as root).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Daemon, OpenLdap, TestDirectory, reason, unique};

/// A tmpfs mounted for the test, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_the_daemon_recovers() {
    support::init();
    let work = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&work.path().join("fs"), "24m") else {
        assert!(
            std::env::var("SSPRD_REQUIRE_SAMBA").as_deref() != Ok("1"),
            "the disk-full test needs root to mount a tmpfs"
        );
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let ldap = OpenLdap::start().await;
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.store.path = disk.0.join("db");
    let cfg = work.path().join("ssprd.toml");
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let login = unique("diskfull");
    let pw = "Disk-Full-1234";
    ldap.create_user(&login, pw).await;

    let d = Daemon::start(raw.clone(), ca.clone()).await;
    let mut c = d.clients().await;
    c.register(&login, pw).await;
    c.start(&login).await;

    fill(&disk.0.join("filler"));
    // Writes now fail: the first request whose flush fails is answered STORE_UNAVAILABLE.
    let mut refused = None;
    for _ in 0..200 {
        match c
            .reset
            .start_reset(ssprd::api::pb::StartResetRequest {
                username: login.clone(),
            })
            .await
        {
            Ok(_) => continue,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a request on a full disk fails");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(reason(&e), "STORE_UNAVAILABLE");
    // The daemon stops by itself, naming the storage failure.
    let ended = d
        .finished(std::time::Duration::from_secs(10))
        .await
        .expect("the daemon stops after a failed flush");
    let err = ended.expect_err("it stops with an error").to_string();
    assert!(err.contains("flush failed"), "{err}");

    // Room again: a new daemon starts from the disk; the registration works.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;
    let flow = c.verified_flow(&login).await;
    c.complete(&flow, "Disk-Room-5678", false).await.unwrap();
    d.stop().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let o = Command::new(env!("CARGO_BIN_EXE_ssprd"))
        .args(["audit", "verify", "--config"])
        .arg(&cfg)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
