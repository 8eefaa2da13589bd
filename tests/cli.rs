//! The `ssprd` binary: check-config on the shipped example, layered overrides and named
//! errors, systemd credentials, one daemon per database, graceful SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

/// TLS files, a bind password and a store path for a config that validates.
fn files(dir: &Path) {
    let ca = ssprd_testbed::TestCa::new("cli test CA").unwrap();
    let pair = ca.server_cert(&[]).unwrap();
    std::fs::write(dir.join("server.crt"), pair.cert_pem).unwrap();
    ssprd_testbed::write_private(&dir.join("server.key"), &pair.key_pem).unwrap();
    ssprd_testbed::write_private(&dir.join("bind-password"), "cli-bind-secret").unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    ssprd_testbed::write_private(&dir.join("totp-key"), &"ab".repeat(32)).unwrap();
}

/// `ssprd ARGS` with a clean environment pointing at the test files.
fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SSPRD_SERVER__TLS_CERT_FILE", dir.join("server.crt"))
        .env("SSPRD_SERVER__TLS_KEY__FILE", dir.join("server.key"))
        .env(
            "SSPRD_DIRECTORY__BIND_PASSWORD__FILE",
            dir.join("bind-password"),
        )
        .env("SSPRD_DIRECTORY__CA_FILE", dir.join("ca.crt"))
        .env("SSPRD_AUTHENTICATOR__KEY__FILE", dir.join("totp-key"))
        .env("SSPRD_STORE__PATH", dir.join("db"));
    cmd
}

fn ssprd(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = cmd(dir, args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/ssprd.toml");

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let o = ssprd(dir.path(), &["check-config", "--config", EXAMPLE], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("configuration is valid"));
}

/// `SSPRD_` variables that are not `SSPRD_<SECTION>__<KEY>` (the CLI's own, a test
/// runner's) do not break the configuration.
#[test]
fn other_ssprd_variables_are_not_configuration() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let o = ssprd(
        dir.path(),
        &["check-config"],
        &[
            ("SSPRD_CONFIG", EXAMPLE.to_string()),
            ("SSPRD_REQUIRE_SAMBA", "1".into()),
            ("SSPRD_ADMIN_SERVER", "https://localhost:1".into()),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // A typo inside a section is still named.
    let o = ssprd(
        dir.path(),
        &["check-config", "--config", EXAMPLE],
        &[("SSPRD_SERVER__LISTN", "127.0.0.1:1".into())],
    );
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("listn"), "{}", text(&o));
}

#[test]
fn environment_overrides_the_file_and_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let o = ssprd(
        dir.path(),
        &["check-config", "--config", EXAMPLE],
        &[
            (
                "SSPRD_POLICY__SECURITY_QUESTIONS__RESET_COUNT",
                "6".to_string(),
            ),
            ("SSPRD_DIRECTORY__TIMEOUT_MS", "9000".to_string()),
            ("SSPRD_DIRECTORY__URIS", "[\"ldap://dc1\"]".to_string()),
        ],
    );
    assert_eq!(o.status.code(), Some(78), "EX_CONFIG: {}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("policy.security_questions.reset_count: 6 is outside 3..=5"),
        "{t}"
    );
    assert!(
        t.contains("directory.timeout_ms: 9000 must be shorter than server.request_timeout_ms"),
        "{t}"
    );
    assert!(t.contains("directory.uris[0]"), "{t}");
    assert!(!t.contains("cli-bind-secret"), "{t}");
}

#[test]
fn unknown_keys_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[directory]\nbind_pasword = \"oops\"\n").unwrap();
    let o = ssprd(
        dir.path(),
        &["check-config", "--config", cfg.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o).contains("bind_pasword"), "{}", text(&o));

    let o = ssprd(
        dir.path(),
        &["check-config", "--config", "/nonexistent/ssprd.toml"],
        &[],
    );
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o).contains("file not found"), "{}", text(&o));
}

#[test]
fn secrets_come_from_systemd_credentials() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::copy(
        dir.path().join("bind-password"),
        creds.join("ldap-bind-password"),
    )
    .unwrap();
    std::fs::copy(dir.path().join("server.key"), creds.join("tls-key")).unwrap();
    std::fs::copy(dir.path().join("totp-key"), creds.join("totp-key")).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[policy]\nenabled_methods = [\"security_questions\", \"authenticator_code\"]\n\
         [directory]\nbind_dn = \"cn=sspr,dc=example,dc=org\"\nbase_dn = \"dc=example,dc=org\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["check-config", "--config", cfg.to_str().unwrap()])
        .env_clear()
        .env("SSPRD_SERVER__TLS_CERT_FILE", dir.path().join("server.crt"))
        .env("SSPRD_STORE__PATH", dir.path().join("db"));
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(78));
    assert!(
        text(&o).contains("$CREDENTIALS_DIRECTORY is not set"),
        "{}",
        text(&o)
    );
    let o = cmd.env("CREDENTIALS_DIRECTORY", &creds).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// `ssprd serve` with the example config and the test files, on 127.0.0.1:0.
fn serve_cmd(dir: &Path) -> Command {
    let mut c = cmd(dir, &["serve", "--config", EXAMPLE]);
    c.env("SSPRD_SERVER__LISTEN", "127.0.0.1:0");
    // The example config's management listener has a fixed port: tests run side by side.
    c.env("SSPRD_METRICS__LISTEN", "127.0.0.1:0");
    c
}

fn wait_for(path: &Path, needle: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn one_daemon_per_database_and_sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let log1 = dir.path().join("first.log");
    let mut first = serve_cmd(dir.path())
        .stdout(Stdio::from(std::fs::File::create(&log1).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("first.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    assert!(
        wait_for(&log1, "ssprd serving", 20),
        "first daemon did not start"
    );

    let o = ssprd(
        dir.path(),
        &["serve", "--config", EXAMPLE],
        &[
            ("SSPRD_SERVER__LISTEN", "127.0.0.1:0".to_string()),
            ("SSPRD_METRICS__LISTEN", "127.0.0.1:0".to_string()),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("in use by another process (is another ssprd running?)"),
        "{}",
        text(&o)
    );

    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = first.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful exit: {status}");
    assert!(wait_for(&log1, "stopped", 1));
    // Written to a file: no terminal colour codes (issue 24 item 12).
    let log = std::fs::read_to_string(&log1).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file: {log}");
}

/// The systemd notify protocol on a real datagram socket: READY=1 once serving, WATCHDOG=1
/// at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM.
#[test]
fn systemd_notify_ready_watchdog_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = serve_cmd(dir.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let mut recv = || loop {
        // A signal to the test process (another test's child exiting) interrupts recv.
        match sock.recv(&mut buf) {
            Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("a notification: {e}"),
        }
    };
    let first = recv();
    assert!(first.contains("READY=1"), "{first}");
    let mut pings = 0;
    while pings < 3 {
        let m = recv();
        assert!(m.contains("WATCHDOG=1"), "{m}");
        pings += 1;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stopping = false;
    for _ in 0..20 {
        if recv().contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 after SIGTERM");
    assert!(child.wait().unwrap().success());
}

/// `log.format = "json"`: one JSON object per line.
#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let log = dir.path().join("out.log");
    let mut child = serve_cmd(dir.path())
        .env("SSPRD_LOG__FORMAT", "json")
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(&log, "ssprd serving", 20));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("ssprd serving")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["fields"]["message"], "ssprd serving");
    assert_eq!(v["level"], "INFO");
}
