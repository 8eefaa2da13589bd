//! Connection exhaustion (issue 10 item 3), against the real binary under a 1,024 open-file
//! limit (`prlimit`), as an outside attacker would try it: floods of idle TCP connections
//! from many addresses, TLS handshakes left half-done, established connections held idle,
//! and running the daemon out of file descriptors. Throughout, the health service answers,
//! a full reset succeeds, and the daemon does not spin.

mod support;

use ssprd::api::pb;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Daemon, OpenLdap, TestDirectory, scenarios, unique};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// This test holds well over a thousand sockets itself.
fn raise_own_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    )
    .expect("raise the test's own open-file limit");
}

/// The daemon binary under `prlimit --nofile=N:N`, its log in `log`.
fn spawn_limited(
    cfg: &Path,
    nofile: u32,
    failpoint: Option<&str>,
    log: &Path,
) -> scenarios::Spawned {
    let mut c = Command::new("prlimit");
    c.arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_ssprd"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("SSPRD_FAILPOINT")
        .env("RUST_LOG", "warn");
    let file = std::fs::File::create(log).unwrap();
    c.stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file));
    if let Some(fp) = failpoint {
        c.env("SSPRD_FAILPOINT", fp);
    }
    scenarios::Spawned(c.spawn().expect("prlimit (util-linux) runs the daemon"))
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    ticks as f64 / hz
}

/// The share of one core the process used over `window`.
async fn cpu_share(pid: u32, window: Duration) -> f64 {
    let before = cpu_secs(pid);
    tokio::time::sleep(window).await;
    (cpu_secs(pid) - before) / window.as_secs_f64()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A TCP connection to the daemon from `source` (a loopback address: 127.0.0.0/8 is all
/// local on Linux).
async fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind((source, 0).into())?;
    s.connect((Ipv4Addr::LOCALHOST, port).into()).await
}

/// `n` idle TCP connections spread over `addresses` source addresses from 127.0.0.2 on.
async fn idle_connections(n: usize, addresses: u8, port: u16) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(addresses)) as u8);
        if let Ok(s) = connect_from(source, port).await {
            out.push(s);
        }
    }
    out
}

/// Whether the daemon has closed this connection (end of stream or reset), without waiting.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a TLS alert before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

fn still_open(conns: &[TcpStream]) -> usize {
    conns.iter().filter(|s| !closed_by_server(s)).count()
}

/// A fresh TLS connection from 127.0.0.1, then a health check: (serving, how long both took).
async fn health(port: u16, ca: &str) -> (bool, Duration) {
    let started = Instant::now();
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    let serving = match ch.connect().await {
        Ok(ch) => tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .is_ok_and(|r| {
                r.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }),
        Err(_) => false,
    };
    (serving, started.elapsed())
}

/// Register → StartReset → answers → CompleteReset over a fresh connection.
async fn full_reset(port: u16, ca: &str, login: &str, new_password: &str) {
    let mut c = scenarios::connect_daemon(port, ca).await;
    let flow = c.verified_flow(login).await;
    c.complete(&flow, new_password, false)
        .await
        .expect("CompleteReset under attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_connections_do_not_take_the_daemon_down() {
    support::init();
    raise_own_file_limit();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.server.tls_handshake_timeout_ms = 6_000;
    raw.server.idle_timeout_secs = 4;
    raw.server.per_client_requests_per_minute = 0;
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let log = work.path().join("daemon.log");
    let daemon = spawn_limited(&cfg, 1024, None, &log);
    let pid = daemon.id();
    let login = unique("besieged");
    ldap.create_user(&login, "Besieged-Old-1234").await;
    scenarios::connect_daemon(port, &ca)
        .await
        .register(&login, "Besieged-Old-1234")
        .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("admits fewer client connections than configured"),
        "the cap was fitted to the 1,024-file limit: {text}"
    );

    // 1. 1,100 idle TCP connections from 40 addresses (27-28 each: under the per-address
    //    cap, over the global one).
    let attack = idle_connections(1_100, 40, port).await;
    assert_eq!(attack.len(), 1_100, "the kernel accepts them all");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_share(pid, Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    for _ in 0..3 {
        let (serving, took) = health(port, &ca).await;
        assert!(serving, "health answers SERVING while connections are held");
        latencies.push(took);
    }
    full_reset(port, &ca, &login, "Besieged-New-5678").await;
    assert!(ldap.can_bind(&login, "Besieged-New-5678").await);
    let held = still_open(&attack);
    let fds = open_fds(pid);
    eprintln!(
        "idle flood: 1,100 connections, {held} still held by the daemon, {fds} open files, \
         CPU {:.1} % of a core, health {latencies:?}",
        cpu * 100.0
    );
    assert!(cpu < 0.25, "the daemon does not spin: {:.1} %", cpu * 100.0);
    assert!(fds < 1_024, "the daemon stays below its file limit: {fds}");
    assert!(
        (300..=480).contains(&held),
        "the daemon holds connections up to its cap (480 under 1,024 files): {held}"
    );
    assert!(latencies.iter().all(|l| *l < Duration::from_secs(1)));
    drop(attack);

    // 2. 500 TLS handshakes started and never finished: closed after the handshake timeout.
    let hello_start = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let mut half_open = idle_connections(500, 20, port).await;
    for s in &mut half_open {
        use tokio::io::AsyncWriteExt;
        s.write_all(&hello_start).await.unwrap();
    }
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let early = still_open(&half_open);
    assert!(
        early >= 400,
        "not closed before the timeout: {early} of 500 open"
    );
    let (serving, _) = health(port, &ca).await;
    assert!(serving, "health while handshakes hang");
    while still_open(&half_open) > 0 {
        assert!(
            opened.elapsed() < Duration::from_secs(6 + 3),
            "{} half-open connections outlived the 6 s handshake timeout",
            still_open(&half_open)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "half-open TLS: 500 connections, {early} open after 1 s, all closed after {:?}",
        opened.elapsed()
    );
    drop(half_open);

    // 3. 200 established, idle TLS connections from one address (over the per-address cap
    //    of 64): the oldest idle are shed, a new client still gets in.
    let mut established = Vec::new();
    for _ in 0..200 {
        let c = scenarios::connect_daemon(port, &ca).await;
        established.push(c);
    }
    let (serving, took) = health(port, &ca).await;
    assert!(serving, "health with 200 idle connections from one address");
    let fds = open_fds(pid);
    eprintln!(
        "200 idle established connections from one address: {fds} open files, health {took:?}"
    );
    assert!(
        fds < 200,
        "the per-address cap sheds idle connections: {fds} files"
    );
    // Idle connections are closed after the idle timeout (4 s here).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fds_idle = open_fds(pid);
    eprintln!("after the idle timeout: {fds_idle} open files");
    assert!(
        fds_idle + 50 < fds,
        "idle connections were closed: {fds} → {fds_idle} files"
    );
    // A closed connection's client reconnects on its next call.
    let mut oldest = established.swap_remove(0);
    oldest
        .reset
        .start_reset(pb::StartResetRequest {
            username: "someone".into(),
        })
        .await
        .expect("a shed client reconnects");
    drop(established);
    scenarios::stop_daemon(daemon);
}

/// When the process runs out of file descriptors anyway (here: the cap fitting is switched
/// off by a debug-build fault point, and 256 files are allowed), `accept` fails with EMFILE:
/// the daemon backs off instead of spinning, and serves again once files free up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_backs_off() {
    support::init();
    raise_own_file_limit();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca, port, cfg) = Daemon::config_file(work.path(), &ldap);
    raw.server.max_connections = 4_000;
    raw.server.max_connections_per_address = 4_000;
    raw.server.tls_handshake_timeout_ms = 30_000;
    std::fs::write(&cfg, toml::to_string(&raw).unwrap()).unwrap();
    let log = work.path().join("daemon.log");
    let daemon = spawn_limited(&cfg, 256, Some("listener.ignore_file_limit"), &log);
    let pid = daemon.id();
    scenarios::connect_daemon(port, &ca).await;
    let attack = idle_connections(600, 20, port).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_share(pid, Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("out of files: CPU {:.1} % of a core", cpu * 100.0);
    assert!(
        text.contains("out of file descriptors; backing off"),
        "accept failed with EMFILE: {text}"
    );
    assert!(cpu < 0.25, "no accept spin: {:.1} %", cpu * 100.0);
    drop(attack);
    // Freed: the held handshakes end with their clients, and new clients are served.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if health(port, &ca).await.0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "serving again after the files are freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    scenarios::stop_daemon(daemon);
}
