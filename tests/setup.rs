//! `ssprd setup` driven on a pseudo-terminal against the test slapd: a first run that
//! writes a configuration the daemon then serves with (and `ssprd admin status` reaches
//! with the certificates it generated), a second run that keeps every key unless told,
//! and a service account that lacks a right, which stops it before anything is written.
//! (Samba AD: `tests/samba_ad.rs`.)

mod support;

use ssprd::config::RawConfig;
use ssprd_testbed::{PEOPLE, READ_ONLY_SERVICE_DN, SERVICE_DN, SUFFIX};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::terminal::{exit_code, reply, setup_on_a_terminal, setup_without_terminal};
use support::{OpenLdap, TestDirectory};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `ssprd serve` on the written configuration, with the credentials as the unit hands them
/// over; killed on drop.
struct Served(std::process::Child, PathBuf);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn serve(config: &Path, work: &Path, port: u16) -> Served {
    let etc = config.parent().unwrap();
    let creds = work.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    for (name, file) in [
        ("ldap-bind-password", "ldap-bind-password"),
        ("tls-key", "tls/server.key"),
        ("totp-key", "totp-key"),
    ] {
        std::os::unix::fs::symlink(etc.join(file), creds.join(name)).unwrap();
    }
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("SSPRD_CONFIG")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("SSPRD_STORE__PATH", work.join("db"))
        .env("SSPRD_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("SSPRD_METRICS__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    Served(child, creds)
}

/// `ssprd admin status` with nothing but `--config` and the server address: the CA and
/// the admin certificate are the ones the setup wrote.
fn admin_status(config: &Path, port: u16) -> std::process::Output {
    Command::new(BIN)
        .args(["admin", "--config", config.to_str().unwrap()])
        .args(["--server", &format!("https://localhost:{port}"), "status"])
        .env_remove("SSPRD_CONFIG")
        .env_remove("SSPRD_ADMIN_CA")
        .env_remove("SSPRD_ADMIN_CERT")
        .env_remove("SSPRD_ADMIN_KEY")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_first_run_on_a_terminal_gives_a_daemon_an_admin_can_reach_and_a_second_keeps_the_keys() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let etc = work.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    // The package makes /etc/ssprd root:ssprd; what the daemon reads gets that group.
    // (As root, as the suite runs; another user cannot give a directory away.)
    const GROUP: u32 = 65534;
    let grouped = std::os::unix::fs::chown(&etc, None, Some(GROUP)).is_ok();
    let config = etc.join("ssprd.toml");
    let slapd = &ldap.slapd;
    ldap.create_user(&support::unique("setup"), "Setup-Pass-1234")
        .await;

    let mut p = setup_on_a_terminal(&config, &[]);
    reply(
        &mut p,
        "Directory: openldap or active-directory (also Samba AD) [openldap]:",
        "",
    );
    reply(&mut p, "Directory URIs", &slapd.ldaps_uri());
    reply(
        &mut p,
        "CA certificate of the directory",
        slapd.ca_file.to_str().unwrap(),
    );
    reply(&mut p, "Service account DN", SERVICE_DN);
    // The password file does not exist yet: it is asked for, without echo.
    let default_file = format!("[{}]:", etc.join("ldap-bind-password").display());
    reply(&mut p, &default_file, "");
    reply(
        &mut p,
        &format!("Password of {SERVICE_DN} (not shown):"),
        slapd.service_password.expose(),
    );
    // The naming context and the one password policy are found and proposed.
    reply(
        &mut p,
        &format!("Where users are searched (base DN) [{SUFFIX}]:"),
        PEOPLE,
    );
    reply(
        &mut p,
        &format!(
            "Default password policy entry (ppolicy; \"none\" for none) [cn=default,ou=policies,{SUFFIX}]:"
        ),
        "",
    );
    for right in [
        "bind as the service account",
        "find users",
        "read the password policy",
        "set passwords",
        "unlock accounts",
        "require a change at next sign-in",
    ] {
        let (_, line) = p.exp_regex(&format!("{right} +[^\r\n]*")).unwrap();
        assert!(line.ends_with(" ok"), "{line}");
    }
    reply(
        &mut p,
        "Host names clients use to reach ssprd",
        "sspr.test.internal",
    );
    let portal_port = ssprd_testbed::free_port().unwrap();
    reply(
        &mut p,
        "The web portal's address users open in a browser, https://host[:port]/ (\"none\": no portal) [https://sspr.test.internal:8443/]:",
        &format!("https://portal.test.internal:{portal_port}/"),
    );
    reply(
        &mut p,
        "Organisation name, shown in emails and authenticator apps [example.org]:",
        "Example Test",
    );
    reply(
        &mut p,
        "SMTP server for email codes, host[:port] (\"none\": no email) [none]:",
        "mail.test.internal:465",
    );
    reply(
        &mut p,
        "Sender of the emails [Example Test <no-reply@example.org>]:",
        "",
    );
    reply(&mut p, "CA certificate of the SMTP server", "");
    reply(
        &mut p,
        "Who may reset their password: all, none (not yet), or group DNs separated by \";\" [all]:",
        "cn=sspr-pilot,ou=groups,dc=example,dc=org",
    );
    reply(&mut p, "[ssprd-admin]:", "");
    p.exp_string("configuration is valid").unwrap();
    p.exp_string("Done. Next:").unwrap();
    let (code, rest) = exit_code(&mut p);
    assert_eq!(code, 0, "{rest}");
    assert!(rest.contains("systemctl enable --now ssprd"), "{rest}");

    // The files, with their modes.
    for (file, want) in [
        ("ssprd.toml", 0o640),
        ("ldap-bind-password", 0o600),
        ("totp-key", 0o600),
        ("tls/ca.key", 0o600),
        ("tls/ca.crt", 0o644),
        ("tls/server.key", 0o600),
        ("tls/server.crt", 0o644),
        ("admin/admin.key", 0o600),
        ("admin/admin.crt", 0o600),
        ("admin", 0o700),
    ] {
        assert_eq!(mode(&etc.join(file)), want, "{file}");
    }
    if grouped {
        use std::os::unix::fs::MetadataExt;
        for file in [
            "ssprd.toml",
            "tls",
            "tls/server.crt",
            "tls/ca.crt",
            "totp-key",
        ] {
            assert_eq!(
                std::fs::metadata(etc.join(file)).unwrap().gid(),
                GROUP,
                "{file}"
            );
        }
    }
    assert_eq!(
        read(etc.join("ldap-bind-password")),
        slapd.service_password.expose().as_bytes()
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let raw: RawConfig = toml::from_str(&text).unwrap();
    assert_eq!(raw.directory.uris, vec![slapd.ldaps_uri()]);
    assert_eq!(raw.directory.base_dn, PEOPLE);
    assert_eq!(raw.directory.bind_dn, SERVICE_DN);
    assert_eq!(raw.email.host, "mail.test.internal");
    assert_eq!(raw.authenticator.issuer, "Example Test");
    assert!(raw.portal.enabled);
    assert_eq!(raw.portal.listen, format!("0.0.0.0:{portal_port}"));
    assert!(
        text.contains("# Least-privilege service account"),
        "the comments stay"
    );

    // The daemon runs with it, and `ssprd admin` reaches it with the generated CA, server
    // certificate (localhost among its names) and admin client certificate.
    let port = ssprd_testbed::free_port().unwrap();
    let daemon = serve(&config, work.path(), port);
    let status = support::wait_for(|| {
        let o = admin_status(&config, port);
        o.status.success().then_some(o)
    })
    .await;
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("client certificates (mTLS)"), "{out}");
    assert!(
        out.contains("selected groups: cn=sspr-pilot,ou=groups,dc=example,dc=org"),
        "{out}"
    );
    assert!(
        out.contains(&format!("https://portal.test.internal:{portal_port}")),
        "{out}"
    );
    // The portal answers at its address, with the server certificate, which names it.
    let ca = reqwest::Certificate::from_pem(&read(etc.join("tls/ca.crt"))).unwrap();
    let page = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("portal.test.internal", ([127, 0, 0, 1], portal_port).into())
        .build()
        .unwrap()
        .get(format!("https://portal.test.internal:{portal_port}/"))
        .send()
        .await
        .expect("the portal answers over TLS with the setup's certificate");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Example Test"));
    drop(daemon);

    // A second run with every answer as a flag, on the terminal: only the keys and
    // certificates are asked about. Yes to the server certificate, no to the rest.
    let before = |f: &str| read(etc.join(f));
    let (ca, totp, admin, server) = (
        before("tls/ca.crt"),
        before("totp-key"),
        before("admin/admin.crt"),
        before("tls/server.crt"),
    );
    let uri = slapd.ldaps_uri();
    let ca_file = slapd.ca_file.to_str().unwrap().to_string();
    let pw = etc.join("ldap-bind-password").to_str().unwrap().to_string();
    let mut p = setup_on_a_terminal(
        &config,
        &[
            "--flavour",
            "openldap",
            "--uri",
            &uri,
            "--ca-file",
            &ca_file,
            "--bind-dn",
            SERVICE_DN,
            "--bind-password-file",
            &pw,
            "--base-dn",
            PEOPLE,
            "--ppolicy-dn",
            "none",
            "--host",
            "sspr.test.internal",
            "--organization",
            "Example Test",
            "--smtp",
            "none",
            "--admin-name",
            "ssprd-admin",
            "--scope",
            "none",
            "--portal-url",
            "none",
        ],
    );
    reply(
        &mut p,
        "The CA exists. Clients must then trust the new CA and get new certificates. Replace it? (y/N):",
        "",
    );
    reply(
        &mut p,
        "The server certificate exists. Replace it? (y/N):",
        "y",
    );
    reply(
        &mut p,
        "The admin client certificate exists. Replace it? (y/N):",
        "n",
    );
    reply(
        &mut p,
        "The authenticator sealing key exists. Every registered authenticator app would stop working (users enrol again). Replace it? (y/N):",
        "",
    );
    let (code, rest) = exit_code(&mut p);
    assert_eq!(code, 0, "{rest}");
    assert_eq!(before("tls/ca.crt"), ca);
    assert_eq!(before("totp-key"), totp);
    assert_eq!(before("admin/admin.crt"), admin);
    assert_ne!(before("tls/server.crt"), server, "replaced, as asked");
    let raw: RawConfig = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(!raw.policy.enabled_methods.iter().any(|m| m == "email"));
    assert_eq!(raw.policy.scope, ssprd::policy::Scope::None);
    assert_eq!(raw.clients.len(), 1, "the admin entry is not added twice");
    assert!(
        etc.join("ssprd.toml.bak").exists(),
        "the previous file is kept"
    );

    // A kiosk's certificate from the same CA, with its entry.
    let issue = |name: &str, role: &str| {
        Command::new(BIN)
            .args(["client-cert", name, "--role", role, "--config"])
            .arg(&config)
            .env_remove("SSPRD_CONFIG")
            .output()
            .unwrap()
    };
    let o = issue("kiosk-01", "kiosk");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kiosk = etc.join("clients/kiosk-01");
    assert_eq!(mode(&kiosk.join("kiosk-01.key")), 0o600);
    assert_eq!(read(kiosk.join("ca.crt")), ca);
    let raw: RawConfig = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(raw.clients.iter().any(|c| c.name == "kiosk-01"));
    // Not twice, and never another role for the same name.
    assert_eq!(issue("kiosk-01", "kiosk").status.code(), Some(73));
    assert_eq!(issue("kiosk-01", "admin").status.code(), Some(65));

    // The renewed server certificate is still trusted through the same CA, and the kiosk
    // may reset (a StartReset is answered) but not administer.
    let daemon = serve(&config, work.path(), port);
    support::wait_for(|| admin_status(&config, port).status.success().then_some(())).await;
    let tls = tonic::transport::ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
        .identity(tonic::transport::Identity::from_pem(
            read(kiosk.join("kiosk-01.crt")),
            read(kiosk.join("kiosk-01.key")),
        ));
    let channel = tonic::transport::Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reset = ssprd::api::pb::reset_service_client::ResetServiceClient::new(channel.clone());
    reset
        .start_reset(ssprd::api::pb::StartResetRequest {
            username: "nobody-here".into(),
        })
        .await
        .expect("the kiosk role may start a reset");
    let mut admin = ssprd::api::pb::admin_service_client::AdminServiceClient::new(channel);
    let denied = admin
        .get_setup_status(ssprd::api::pb::GetSetupStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    drop(daemon);
}

#[tokio::test]
async fn a_service_account_without_the_write_rights_stops_the_setup_before_it_writes() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let etc = work.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let config = etc.join("ssprd.toml");
    ldap.create_user(&support::unique("setup"), "Setup-Pass-1234")
        .await;
    let pw = work.path().join("pw");
    std::fs::write(&pw, ldap.slapd.service_password.expose()).unwrap();
    let (uri, ca_file) = (
        ldap.slapd.ldaps_uri(),
        ldap.slapd.ca_file.to_str().unwrap().to_string(),
    );
    let flags = [
        "--flavour",
        "openldap",
        "--uri",
        &uri,
        "--ca-file",
        &ca_file,
        "--bind-dn",
        READ_ONLY_SERVICE_DN,
        "--bind-password-file",
        pw.to_str().unwrap(),
        "--base-dn",
        PEOPLE,
    ];

    // On a terminal: the report names what is missing, and the admin says no.
    let mut p = setup_on_a_terminal(&config, &flags);
    reply(&mut p, "Default password policy entry", "");
    let (_, line) = p.exp_regex("set passwords +[^\r\n]*").unwrap();
    assert!(
        line.contains("MISSING") && line.contains("userPassword"),
        "{line}"
    );
    reply(&mut p, "Write the configuration anyway? (y/N):", "");
    let (code, rest) = exit_code(&mut p);
    assert_eq!(code, 77, "{rest}");
    assert!(rest.contains("nothing was written"), "{rest}");
    assert_eq!(
        std::fs::read_dir(&etc).unwrap().count(),
        0,
        "nothing written"
    );

    // Without a terminal: the same stop, nothing asked.
    let o = setup_without_terminal(&config, &flags);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(77), "{out}");
    assert!(
        support::report_line(&out, "unlock accounts").contains("MISSING"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(&etc).unwrap().count(),
        0,
        "nothing written"
    );

    // A missing answer without a terminal is named.
    let o = setup_without_terminal(&config, &[]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--uri is required"));

    // A configuration that is not TOML is named before any question, and left alone.
    std::fs::write(&config, "[directory\n").unwrap();
    let mut p = setup_on_a_terminal(&config, &[]);
    let (code, rest) = exit_code(&mut p);
    assert_eq!(code, 78, "{rest}");
    assert!(rest.contains("is not valid TOML"), "{rest}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "[directory\n");
}
