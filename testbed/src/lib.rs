//! The testbed: what ssprd's tests, benchmarks and demo run against, kept out of the daemon.
//!
//! A throwaway OpenLDAP (slapd) on 127.0.0.1 in a private directory, with its own TLS CA,
//! ppolicy, memberof and a least-privilege service account — the directory `ssprd demo`
//! runs against and the integration tests start. Also: an SMTP sink ([`SmtpSink`]) and
//! test CAs and certificates (rcgen).
//!
//! This crate knows nothing of ssprd (the daemon's optional `demo` feature and its tests
//! depend on it, never the reverse), so `rcgen` and `tempfile` stay out of the product.
//!
//! Nothing outside the work directory is written; the system's `/etc/ldap/schema` is read.
//! slapd is stopped by PID when the [`Slapd`] is dropped.

use ldap3::{LdapConnAsync, LdapConnSettings};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A generated password (the test directory's root and service accounts). `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// 128 random bits, hex.
    fn random() -> Self {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("OS random source");
        Self(hex::encode(b))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A private certificate authority for tests and the demo.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// PEM certificate and key.
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Result<Self, BoxError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate()?)?,
        })
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and `127.0.0.1` (plus `extra` names).
    pub fn server_cert(&self, extra: &[&str]) -> Result<CertPair, BoxError> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(extra.iter().map(|s| s.to_string()));
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    /// A client certificate with the given common name.
    pub fn client_cert(&self, cn: &str) -> Result<CertPair, BoxError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    fn sign(&self, p: CertificateParams) -> Result<CertPair, BoxError> {
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `contents` to `path` with mode 0600.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const SERVICE_DN: &str = "cn=sspr,ou=services,dc=example,dc=org";
/// A second service account that may read users, groups and policies but write nothing
/// (same password as [`SERVICE_DN`]): the account an administrator got wrong, for the
/// rights check's tests.
pub const READ_ONLY_SERVICE_DN: &str = "cn=sspr-readonly,ou=services,dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
const MODULE_DIR: &str = "/usr/lib/ldap";
const SCHEMA_DIR: &str = "/etc/ldap/schema";

/// How slapd hashes the passwords it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordHash {
    /// argon2 when the module is installed, else `{SSHA}`.
    Strongest,
    /// `{SSHA}`: cheap, so that a benchmark measures what is around the directory.
    Ssha,
}

/// A running slapd.
pub struct Slapd {
    pub dir: PathBuf,
    pub ldap_port: u16,
    pub ldaps_port: u16,
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub root_password: Password,
    pub service_password: Password,
    child: Option<Child>,
    tls: Arc<rustls::ClientConfig>,
}

impl Slapd {
    /// True when slapd and slapadd are installed.
    pub fn available() -> bool {
        Path::new("/usr/sbin/slapd").exists() && Path::new("/usr/sbin/slapadd").exists()
    }

    /// Sets up a private cn=config and database in `dir` and starts slapd; passwords are
    /// hashed with argon2 when the module is installed.
    pub async fn start(dir: &Path) -> Result<Self, BoxError> {
        Self::start_with(dir, PasswordHash::Strongest).await
    }

    /// [`Slapd::start`] with the given password hash.
    pub async fn start_with(dir: &Path, password_hash: PasswordHash) -> Result<Self, BoxError> {
        let dir = dir.to_path_buf();
        for sub in ["slapd.d", "data", "tls"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let ca = TestCa::new("ssprd test LDAP CA")?;
        let server = ca.server_cert(&[])?;
        let ca_file = dir.join("tls/ca.crt");
        std::fs::write(&ca_file, ca.pem())?;
        std::fs::write(dir.join("tls/server.crt"), &server.cert_pem)?;
        write_private(&dir.join("tls/server.key"), &server.key_pem)?;

        let root_password = Password::random();
        let service_password = Password::random();
        let has_argon2 = Path::new(MODULE_DIR).join("argon2.so").exists()
            || Path::new(MODULE_DIR).join("argon2.la").exists();
        let d = dir.display();
        let (modload, hash) = if has_argon2 && password_hash == PasswordHash::Strongest {
            ("olcModuleLoad: argon2\n", "{ARGON2}")
        } else {
            ("", "{SSHA}")
        };
        let config = format!(
            r#"dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcArgsFile: {d}/slapd.args
olcTLSCACertificateFile: {d}/tls/ca.crt
olcTLSCertificateFile: {d}/tls/server.crt
olcTLSCertificateKeyFile: {d}/tls/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: memberof
{modload}
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://{SCHEMA_DIR}/core.ldif

include: file://{SCHEMA_DIR}/cosine.ldif

include: file://{SCHEMA_DIR}/nis.ldif

include: file://{SCHEMA_DIR}/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcPasswordHash: {hash}
olcAccess: {{0}}to dn.base="" by * read
olcAccess: {{1}}to dn.base="cn=subschema" by * read

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {d}/data
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {root}
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,cn eq
olcDbIndex: member eq
olcAccess: {{0}}to attrs=userPassword
  by self write
  by dn.exact="{SERVICE_DN}" =w
  by anonymous auth
  by * none
olcAccess: {{1}}to attrs=pwdAccountLockedTime,pwdReset,pwdFailureTime
  by dn.exact="{SERVICE_DN}" manage
  by * none
olcAccess: {{2}}to dn.subtree="{PEOPLE}"
  by dn.exact="{SERVICE_DN}" read
  by dn.exact="{READ_ONLY_SERVICE_DN}" read
  by self read
  by * none
olcAccess: {{3}}to dn.subtree="ou=policies,{SUFFIX}"
  by dn.exact="{SERVICE_DN}" read
  by dn.exact="{READ_ONLY_SERVICE_DN}" read
  by * none
olcAccess: {{4}}to dn.subtree="ou=groups,{SUFFIX}"
  by dn.exact="{SERVICE_DN}" read
  by dn.exact="{READ_ONLY_SERVICE_DN}" read
  by users read
  by * none
olcAccess: {{5}}to * by self read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{1}}ppolicy
olcPPolicyDefault: cn=default,ou=policies,{SUFFIX}
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE

dn: olcDatabase={{2}}monitor,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{2}}monitor
olcAccess: {{0}}to * by dn.exact="{ROOT_DN}" read by * none
"#,
            root = root_password.expose(),
        );
        let base = format!(
            r#"dn: {SUFFIX}
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{SUFFIX}
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdMinLength: 8
pwdCheckQuality: 2
pwdInHistory: 5
pwdLockout: TRUE
pwdMaxFailure: 3
pwdLockoutDuration: 0
pwdFailureCountInterval: 0
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
pwdSafeModify: FALSE

dn: cn=service-accounts,ou=policies,{SUFFIX}
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: service-accounts
pwdAttribute: userPassword
pwdLockout: FALSE

dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: sspr
description: ssprd service account (own policy: no lockout)
userPassword: {svc}
pwdPolicySubentry: cn=service-accounts,ou=policies,{SUFFIX}

dn: {READ_ONLY_SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: sspr-readonly
description: a service account without write rights (tests of the rights check)
userPassword: {svc}
pwdPolicySubentry: cn=service-accounts,ou=policies,{SUFFIX}
"#,
            svc = service_password.expose(),
        );
        write_private(&dir.join("config.ldif"), &config)?;
        write_private(&dir.join("base.ldif"), &base)?;
        let slapd_d = dir.join("slapd.d");
        run(
            "slapadd",
            &[
                "-n0",
                "-F",
                path(&slapd_d),
                "-l",
                path(&dir.join("config.ldif")),
            ],
        )?;
        run(
            "slapadd",
            &[
                "-q",
                "-n1",
                "-F",
                path(&slapd_d),
                "-l",
                path(&dir.join("base.ldif")),
            ],
        )?;
        // The cleartext passwords are not needed on disk once loaded.
        std::fs::remove_file(dir.join("config.ldif"))?;
        std::fs::remove_file(dir.join("base.ldif"))?;

        let mut roots = rustls::RootCertStore::empty();
        for c in
            <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
                ca.pem().as_bytes(),
            )
        {
            roots.add(c?)?;
        }
        let tls = Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let mut s = Self {
            ldap_port: free_port()?,
            ldaps_port: free_port()?,
            ca_pem: ca.pem(),
            ca_file,
            root_password,
            service_password,
            child: None,
            tls,
            dir,
        };
        s.launch().await?;
        Ok(s)
    }

    pub fn ldaps_uri(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    pub fn ldap_uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    async fn launch(&mut self) -> Result<(), BoxError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("slapd.log"))?;
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap_port, self.ldaps_port
        );
        let child = Command::new("/usr/sbin/slapd")
            .args([
                "-d",
                "stats",
                "-F",
                path(&self.dir.join("slapd.d")),
                "-h",
                &urls,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.root_bind().await.is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                let log = std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                return Err(format!("slapd exited ({status}):\n{tail}").into());
            }
            if Instant::now() > deadline {
                return Err("slapd not ready after 15 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An LDAPS connection bound as the rootDN (for seeding and inspecting test data).
    pub async fn root_bind(&self) -> Result<ldap3::Ldap, BoxError> {
        let settings = LdapConnSettings::new()
            .set_config(self.tls.clone())
            .set_conn_timeout(Duration::from_secs(2));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.ldaps_uri()).await?;
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, self.root_password.expose())
            .await?
            .success()?;
        Ok(ldap)
    }

    /// How many connections slapd has accepted since it started (`cn=Monitor`), counting
    /// the one this asks on.
    pub async fn connections_total(&self) -> Result<u64, BoxError> {
        self.monitor_counter("cn=Total,cn=Connections,cn=Monitor", "monitorCounter")
            .await
    }

    /// Operations slapd completed since it started, every kind (`cn=Operations,cn=Monitor`);
    /// each call completes a bind and a search of its own.
    pub async fn operations_total(&self) -> Result<u64, BoxError> {
        self.monitor_counter("cn=Operations,cn=Monitor", "monitorOpCompleted")
            .await
    }

    async fn monitor_counter(&self, dn: &str, attr: &str) -> Result<u64, BoxError> {
        let mut ldap = self.root_bind().await?;
        let (entries, _) = ldap
            .search(dn, ldap3::Scope::Base, "(objectClass=*)", vec![attr])
            .await?
            .success()?;
        let _ = ldap.unbind().await;
        let entry =
            ldap3::SearchEntry::construct(entries.into_iter().next().ok_or("no cn=Monitor entry")?);
        let n = entry
            .attrs
            .get(attr)
            .and_then(|v| v.first())
            .ok_or_else(|| format!("no {attr}"))?;
        Ok(n.parse()?)
    }

    /// Adds an inetOrgPerson under ou=people (online, so ppolicy hashes the password).
    pub async fn add_user(&self, uid: &str, cn: &str, password: &str) -> Result<String, BoxError> {
        let dn = format!("uid={uid},{PEOPLE}");
        let sn = cn.split_whitespace().last().unwrap_or(cn);
        let mut ldap = self.root_bind().await?;
        let attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from([cn])),
            ("sn", HashSet::from([sn])),
            ("userPassword", HashSet::from([password])),
        ];
        ldap.add(&dn, attrs).await?.success()?;
        let _ = ldap.unbind().await;
        Ok(dn)
    }

    /// Stops slapd (see [`terminate`]).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    /// Starts slapd again on the same ports and data.
    pub async fn restart(&mut self) -> Result<(), BoxError> {
        self.stop();
        self.launch().await
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops a server by its PID: SIGTERM, then SIGKILL if it has not exited after 5 s.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn run(cmd: &str, args: &[&str]) -> Result<(), BoxError> {
    let out = Command::new(format!("/usr/sbin/{cmd}"))
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

/// A real SMTP server on loopback for tests and the demo: aiosmtpd (Debian's
/// python3-aiosmtpd) offering STARTTLS with a certificate from its own CA, delivering every
/// message into a Maildir. Stopped by PID on drop.
pub struct SmtpSink {
    dir: tempfile::TempDir,
    pub port: u16,
    pub ca_file: PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    /// Starts aiosmtpd on a free port with a fresh CA; mail lands in `<dir>/maildir/new`.
    pub async fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new().prefix("ssprd-smtp.").tempdir()?;
        Self::start_in(dir).await
    }

    /// True when Debian's python3 has aiosmtpd.
    pub fn available() -> bool {
        Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    async fn start_in(dir: tempfile::TempDir) -> Result<Self, BoxError> {
        let ca = TestCa::new("ssprd test SMTP CA")?;
        let cert = ca.server_cert(&[])?;
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem())?;
        std::fs::write(dir.path().join("smtp.crt"), &cert.cert_pem)?;
        write_private(&dir.path().join("smtp.key"), &cert.key_pem)?;
        let mut s = Self {
            port: free_port()?,
            ca_file,
            child: None,
            dir,
        };
        s.launch().await?;
        Ok(s)
    }

    async fn launch(&mut self) -> Result<(), BoxError> {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("aiosmtpd.log"))?;
        // Debian's python has aiosmtpd; a pyenv/venv python on PATH may not.
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
            ])
            .arg("--tlscert")
            .arg(d.join("smtp.crt"))
            .arg("--tlskey")
            .arg(d.join("smtp.key"))
            .args(["--no-requiretls", "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(d.join("maildir"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::AsyncReadExt;
                let mut b = [0u8; 3];
                if s.read_exact(&mut b).await.is_ok() && &b == b"220" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("aiosmtpd.log")).unwrap_or_default();
                return Err(format!("aiosmtpd not ready: {log}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where delivered messages are written (one file each).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir/new")
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await.expect("aiosmtpd restarts");
    }

    /// All delivered messages (raw RFC 5322 text), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Messages to `to` (the `X-RcptTo` aiosmtpd records).
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.starts_with("X-RcptTo:") && l.contains(to))
            })
            .collect()
    }

    /// Waits (up to 15 s) for a message to `to` whose raw text (quoted-printable soft
    /// breaks removed) or decoded subject and parts ([`Mail`]) contain every one of
    /// `needles`; notifications go through the daemon's outbox, so they arrive shortly
    /// after the call that caused them.
    pub async fn wait_for(&self, to: &str, needles: &[&str]) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(m) = self
                .messages_to(to)
                .into_iter()
                .map(|m| {
                    let mail = Mail::parse(&m);
                    let raw = m.replace("=\r\n", "").replace("=\n", "");
                    format!("{raw}\n{}\n{}\n{}", mail.subject, mail.text, mail.html)
                })
                .find(|m| needles.iter().all(|n| m.contains(n)))
            {
                return Some(m);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `len`-digit code in the newest message to `to` (the digits after "code is").
    pub fn last_code(&self, to: &str, len: usize) -> Option<String> {
        code_in(&self.messages_to(to).pop()?, len)
    }

    /// The `len`-digit code of the first message to `to` that carries one, after the first
    /// `seen` messages: a notification (which the outbox sends in its own time) may arrive
    /// before or after it.
    pub fn code_since(&self, to: &str, len: usize, seen: usize) -> Option<String> {
        self.messages_to(to)
            .iter()
            .skip(seen)
            .find_map(|m| code_in(m, len))
    }
}

/// The `len`-digit code in a message: the first word of exactly `len` digits in its
/// decoded text part, whatever its language (a login with digits is not such a word).
fn code_in(message: &str, len: usize) -> Option<String> {
    let text = Mail::parse(message).text;
    text.split(|c: char| !c.is_alphanumeric())
        .find(|w| w.len() == len && w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// A message as its reader sees it: the subject and the parts, decoded (RFC 2047 words,
/// quoted-printable, base64, charsets) by mail-parser.
#[derive(Debug, Default, Clone)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Self {
        let Some(m) = mail_parser::MessageParser::default().parse(raw.as_bytes()) else {
            return Self::default();
        };
        Self {
            subject: m.subject().unwrap_or_default().to_string(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real headless browser for tests: Debian's chromedriver (which starts Debian's
/// chromium for each WebDriver session) on a free loopback port, with its own TMPDIR and
/// HOME in a temp dir, so browser profiles and crash reports stay there. Stopped by
/// `/shutdown` (which quits every session's browser), then by PID, then every chromium
/// process whose profile is in that temp dir.
pub struct Chromedriver {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Chromedriver {
    /// Whether chromedriver and chromium are installed (`scripts/install-test-deps.sh`).
    pub fn available() -> bool {
        Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists()
    }

    pub async fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new().prefix("ssprd-chrome.").tempdir()?;
        std::fs::create_dir_all(dir.path().join("tmp"))?;
        std::fs::create_dir_all(dir.path().join("home"))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("chromedriver.out"))?;
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                path(&dir.path().join("chromedriver.log"))
            ))
            .env("TMPDIR", dir.path().join("tmp"))
            .env("HOME", dir.path().join("home"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut d = Self {
            dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(status) = d.get("/status").await
                && status.contains("\"ready\":true")
            {
                return Ok(d);
            }
            if Instant::now() > deadline {
                let out = std::fs::read_to_string(d.dir.path().join("chromedriver.out"))
                    .unwrap_or_default();
                d.stop();
                return Err(format!("chromedriver not ready after 20 s: {out}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where screenshots and other test output may go (kept until the driver stops).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A plain HTTP/1.0 GET to chromedriver; the response body.
    async fn get(&self, path: &str) -> Result<String, BoxError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        // Read until the connection closes or the JSON body is complete.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(e.into()),
            }
            if out.ends_with(b"}") {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The chromium processes whose profile is in this driver's temp dir.
    fn own_browsers(&self) -> Vec<u32> {
        let marker = self.dir.path().join("tmp");
        let marker = marker.to_string_lossy();
        std::fs::read_dir("/proc")
            .map(|r| {
                r.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| {
                        std::fs::read(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker.as_ref()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn stop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        // `/shutdown` quits the browsers of open sessions; a bare SIGTERM would leave them.
        let port = self.port;
        let _ = std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET /shutdown HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let _ = s.read_to_end(&mut Vec::new());
            }
        })
        .join();
        terminate(child);
        for pid in self.own_browsers() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.stop();
    }
}
