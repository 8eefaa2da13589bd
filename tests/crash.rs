//! Reliability item 1: a daemon killed at each step of CompleteReset (intent stored, before
//! the directory write; after the write, before the flow is marked used; after that, before
//! the reply) leaves, after a restart, either nothing changed and the flow usable, or the
//! password changed and the flow used — never in between. The daemon is the real binary,
//! aborted by a debug-build crash point (`src/failpoint.rs`), against a real slapd.

mod support;

use ssprd::api::pb;
use std::path::Path;
use std::process::{Child, Command};
use support::{Clients, Daemon, OpenLdap, TestDirectory, reason, unique};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

fn spawn(cfg: &Path, failpoint: Option<&str>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssprd"));
    c.args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("SSPRD_FAILPOINT")
        .env("RUST_LOG", "warn");
    if let Some(fp) = failpoint {
        c.env("SSPRD_FAILPOINT", fp);
    }
    c.spawn().unwrap()
}

async fn connect(port: u16, ca: &str) -> Clients {
    for _ in 0..200 {
        let ch = Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await;
        if let Ok(ch) = ch {
            return Clients {
                reg: pb::registration_service_client::RegistrationServiceClient::new(ch.clone()),
                reset: pb::reset_service_client::ResetServiceClient::new(ch),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("daemon did not come up");
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_reset_survives_a_crash_at_every_step() {
    support::init();
    let ldap = OpenLdap::start().await;
    for point in [
        "complete.intent",
        "complete.after_write",
        "complete.after_commit",
    ] {
        let work = tempfile::tempdir().unwrap();
        let (mut raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        let port = ssprd::testbed::free_port().unwrap();
        raw.server.listen = format!("127.0.0.1:{port}");
        let cfg = work.path().join("ssprd.toml");
        std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();

        let login = unique("crash");
        let (old, new, newer) = ("Crash-Old-1234", "Crash-New-5678", "Crash-Newer-9012");
        ldap.create_user(&login, old).await;

        let mut daemon = spawn(&cfg, Some(point));
        let mut c = connect(port, &ca).await;
        c.register(&login, old).await;
        let flow = c.verified_flow(&login).await;
        let e = c.complete(&flow, new, false).await.unwrap_err();
        eprintln!("{point}: the client saw {:?}", e.code());
        let status = daemon.wait().unwrap();
        assert!(!status.success(), "{point}: the daemon aborted");

        // Restart without the crash point; the flow id from before the crash is used.
        daemon = spawn(&cfg, None);
        let mut c = connect(port, &ca).await;
        match point {
            "complete.intent" => {
                assert!(ldap.can_bind(&login, old).await, "{point}: nothing changed");
                assert!(!ldap.can_bind(&login, new).await);
                let done = c.complete(&flow, newer, false).await;
                assert!(done.is_ok(), "{point}: the flow is still usable: {done:?}");
                assert!(ldap.can_bind(&login, newer).await);
            }
            "complete.after_write" => {
                assert!(
                    ldap.can_bind(&login, new).await,
                    "{point}: the password changed"
                );
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(reason(&e), "RESET_ALREADY_COMPLETED", "{point}");
                assert!(ldap.can_bind(&login, new).await, "{point}: no second write");
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(reason(&e), "FLOW_INVALID", "{point}: the flow is used");
            }
            _ => {
                assert!(
                    ldap.can_bind(&login, new).await,
                    "{point}: the password changed"
                );
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(reason(&e), "FLOW_INVALID", "{point}: the flow is used");
            }
        }
        stop(daemon);
    }
}
