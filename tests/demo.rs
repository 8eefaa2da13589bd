//! `ssprd demo` (cargo feature `demo`), as the README's first command runs it: the binary
//! starts a throwaway slapd and the daemon, a gRPC client registers the demo user and resets
//! the password, Ctrl-C stops everything and removes the work directory.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

#[tokio::test]
async fn the_demo_registers_and_resets_the_demo_user_then_cleans_up() {
    support::init();
    let port = ssprd_testbed::free_port().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ssprd demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut work = None;
    let mut metrics = None;
    let mut running = false;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            running |= line.contains("ssprd demo is running");
            if let Some(url) = line.trim().strip_prefix("metrics   : http://") {
                metrics = url.split('/').next().and_then(|a| a.parse().ok());
            }
            if let Some(dir) = line.trim().strip_prefix("work dir  : ") {
                work = Some(PathBuf::from(dir));
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the demo prints its banner within 60 s");
    assert!(running, "banner");
    let work = work.expect("the banner names the work dir");
    assert!(work.join("ssprd.toml").exists());

    let ca = std::fs::read_to_string(work.join("grpc/ca.crt")).unwrap();
    let mut c = support::scenarios::connect_daemon(port, &ca).await;
    c.register("demo", "Demo-Pass-1").await;
    let flow = c.verified_flow("demo").await;
    let done = c
        .complete(&flow, "Brand-New-Pass-9", false)
        .await
        .expect("CompleteReset");
    assert!(done.verified_by_bind, "the new password works at slapd");

    // The management listener: the reset is counted.
    let metrics: std::net::SocketAddr = metrics.expect("the banner names the metrics URL");
    let (status, text) = support::http_get(metrics, "/metrics", "localhost").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"ssprd_recoveries_total{action="reset.complete",methods="security_questions"} 1"#
        ),
        "{text}"
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("Ctrl-C stops the demo")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !work.exists(),
        "the work dir is removed: {}",
        work.display()
    );
}
