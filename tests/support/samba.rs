//! A throwaway Samba AD DC (Samba 4.17) provisioned into a temp dir, on loopback.
//!
//! Needs root: Samba hard-codes its LDAP/LDAPS/Kerberos/SMB ports (389/636/88/445). All state
//! (smb.conf, sam.ldb, sockets, logs, TLS) lives in the temp dir; `/etc/samba` is not read.
//! Stopped by PID (and any helper that carries the private `--configfile`) on drop.

use super::{BoxError, TestDirectory, client_tls};
use ssprd::config::{Flavour, RawDirectory, SecretSource};
use ssprd_testbed::{TestCa, write_private};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "EXAMPLE.TEST";
pub const BASE: &str = "DC=example,DC=test";
pub const PEOPLE: &str = "OU=People,DC=example,DC=test";
const ADMIN_PW: &str = "Admin-Pass-123";
const SVC_PW: &str = "Sspr-Service-Pass-1";

pub struct SambaAd {
    dir: tempfile::TempDir,
    conf: PathBuf,
    ca_pem: String,
    child: Option<Child>,
}

/// Why Samba cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/samba").exists() {
        return Some("samba is not installed: run scripts/install-test-deps.sh".into());
    }
    if !is_root() {
        return Some("the Samba AD DC needs root (ports 389/636/88/445)".into());
    }
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn samba_tool(conf: &Path, args: &[&str]) -> Result<String, BoxError> {
    // samba-tool needs Debian's python (the samba module is not in pyenv/venv pythons).
    let out = Command::new("/usr/bin/python3")
        .arg("/usr/bin/samba-tool")
        .args(args)
        .arg("-s")
        .arg(conf)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "samba-tool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn port_in_use(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

impl SambaAd {
    /// Provisions a domain with a delegated reset account and starts the DC.
    pub async fn start() -> Result<Self, BoxError> {
        for p in [389, 636, 88, 445] {
            if port_in_use(p) {
                return Err(
                    format!("port {p} is in use on 127.0.0.1 (another DC or slapd?)").into(),
                );
            }
        }
        std::fs::create_dir_all("/run/samba")?;
        let dir = tempfile::Builder::new().prefix("ssprd-samba.").tempdir()?;
        let w = dir.path();
        for sub in ["run", "log", "tls"] {
            std::fs::create_dir_all(w.join(sub))?;
        }
        let ca = TestCa::new("ssprd test AD CA")?;
        let server = ca.server_cert(&["dc1.example.test"])?;
        std::fs::write(w.join("tls/ca.crt"), ca.pem())?;
        std::fs::write(w.join("tls/server.crt"), &server.cert_pem)?;
        write_private(&w.join("tls/server.key"), &server.key_pem)?;
        std::fs::write(w.join("empty.conf"), "")?;
        let d = w.display();
        let opts = [
            "interfaces=lo".to_string(),
            "bind interfaces only=yes".into(),
            format!("pid directory={d}/run"),
            format!("ncalrpc dir={d}/run/ncalrpc"),
            format!("log file={d}/log/%m.log"),
            "server services=s3fs, rpc, ldap, cldap, kdc, winbindd".into(),
            // Samba's default RPC range (49152-65535) overlaps Linux's ephemeral ports
            // (32768-60999): a client socket of an earlier test, even one in TIME_WAIT on
            // such a port, makes the DC fail to start. 61000 and up are never ephemeral.
            "rpc server dynamic port range=61000-61999".into(),
            "tls enabled=yes".into(),
            format!("tls keyfile={d}/tls/server.key"),
            format!("tls certfile={d}/tls/server.crt"),
            format!("tls cafile={d}/tls/ca.crt"),
        ];
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["/usr/bin/samba-tool", "domain", "provision", "-s"])
            .arg(w.join("empty.conf"))
            .args([
                "--server-role=dc",
                "--use-rfc2307",
                "--dns-backend=NONE",
                &format!("--realm={REALM}"),
                "--domain=EXAMPLE",
                "--host-name=dc1",
                "--host-ip=127.0.0.1",
                &format!("--adminpass={ADMIN_PW}"),
                &format!("--targetdir={d}/ad"),
            ]);
        for o in &opts {
            cmd.arg(format!("--option={o}"));
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(
                format!("provision failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        let conf = w.join("ad/etc/smb.conf");
        // Old passwords must stop working at once (default: 60 more minutes for NTLM/LDAP).
        let text = std::fs::read_to_string(&conf)?;
        let text = text.replacen("[global]", "[global]\n\told password allowed period = 0", 1);
        std::fs::write(&conf, text)?;

        samba_tool(
            &conf,
            &[
                "domain",
                "passwordsettings",
                "set",
                "--complexity=on",
                "--history-length=5",
                "--min-pwd-length=8",
                "--min-pwd-age=0",
                "--max-pwd-age=0",
                "--account-lockout-threshold=3",
                "--account-lockout-duration=30",
                "--reset-account-lockout-after=30",
            ],
        )?;
        for ou in ["OU=People", "OU=Groups", "OU=Services"] {
            samba_tool(&conf, &["ou", "add", ou])?;
        }
        samba_tool(
            &conf,
            &["user", "create", "sspr", SVC_PW, "--userou=OU=Services"],
        )?;
        samba_tool(&conf, &["user", "setexpiry", "sspr", "--noexpiry"])?;
        let show = samba_tool(&conf, &["user", "show", "sspr", "--attributes=objectSid"])?;
        let sid = show
            .lines()
            .find_map(|l| l.strip_prefix("objectSid: "))
            .ok_or("no objectSid for sspr")?
            .trim()
            .to_string();
        // Least privilege on OU=People, inherited by user objects: Reset Password,
        // write pwdLastSet, write lockoutTime.
        let user_class = "bf967aba-0de6-11d0-a285-00aa003049e2";
        for ace in [
            format!("(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;{user_class};{sid})"),
            format!("(OA;CIIO;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;{user_class};{sid})"),
            format!("(OA;CIIO;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;{user_class};{sid})"),
        ] {
            samba_tool(
                &conf,
                &[
                    "dsacl",
                    "set",
                    &format!("--objectdn={PEOPLE}"),
                    &format!("--sddl={ace}"),
                ],
            )?;
        }
        // Read on the fine-grained password policies (only domain admins may by default): the
        // sign-in guard reads the lockout threshold of the policy that applies to a user.
        samba_tool(
            &conf,
            &[
                "dsacl",
                "set",
                &format!("--objectdn=CN=Password Settings Container,CN=System,{BASE}"),
                &format!("--sddl=(A;CI;RPLCLO;;;{sid})"),
            ],
        )?;
        let mut s = Self {
            dir,
            conf,
            ca_pem: ca.pem(),
            child: None,
        };
        s.launch().await?;
        Ok(s)
    }

    async fn launch(&mut self) -> Result<(), BoxError> {
        let log = std::fs::File::create(self.dir.path().join("log/samba.out"))?;
        let child = Command::new("/usr/sbin/samba")
            .args(["-F", "--debug-stdout", "-d", "1", "-M", "single", "-s"])
            .arg(&self.conf)
            .arg("--maximum-runtime=3600")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self
                .bind(&format!("administrator@{REALM}"), ADMIN_PW)
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let out = std::fs::read_to_string(self.dir.path().join("log/samba.out"))
                    .unwrap_or_default();
                return Err(format!("samba exited ({status}): {out}").into());
            }
            if Instant::now() > deadline {
                return Err("samba not ready after 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn connect(&self) -> Result<ldap3::Ldap, BoxError> {
        let settings = ldap3::LdapConnSettings::new()
            .set_config(client_tls(&self.ca_pem))
            .set_conn_timeout(Duration::from_secs(3));
        let (conn, ldap) =
            ldap3::LdapConnAsync::with_settings(settings, "ldaps://127.0.0.1:636").await?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn bind(&self, who: &str, password: &str) -> Result<(), BoxError> {
        let mut ldap = self.connect().await?;
        let res = ldap.simple_bind(who, password).await?;
        let _ = ldap.unbind().await;
        res.success()?;
        Ok(())
    }

    fn halt(&mut self) {
        if let Some(child) = self.child.take() {
            ssprd_testbed::terminate(child);
        }
        // smbd spawns helpers (samba-dcerpcd, rpcd_*) that outlive samba; they all carry our
        // private config path on their command line.
        let pattern = format!("--configfile={}", self.conf.display());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("pkill")
                .args([signal, "-f", "--", &pattern])
                .status();
            std::thread::sleep(Duration::from_millis(200));
        }
        // Wait until the fixed ports are free again (for a restart).
        let deadline = Instant::now() + Duration::from_secs(10);
        while port_in_use(636) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SambaAd {
    fn drop(&mut self) {
        self.halt();
    }
}

fn utf16_quoted(pw: &str) -> Vec<u8> {
    format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

impl SambaAd {
    /// Applies the fine-grained password settings object `name` (created when it does not
    /// exist: maximum password age `max_age`, a negative interval in 100 ns, and a lockout
    /// after `lockout_threshold` failures, 0 for none) to the user.
    async fn apply_pso(&self, name: &str, login: &str, max_age: &str, lockout_threshold: u32) {
        let mut ldap = self.admin_bind().await;
        let dn = format!("CN={name},CN=Password Settings Container,CN=System,{BASE}");
        let thirty_minutes = "-18000000000";
        let threshold = lockout_threshold.to_string();
        let attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["msDS-PasswordSettings"])),
            ("msDS-PasswordSettingsPrecedence", HashSet::from(["1"])),
            (
                "msDS-PasswordReversibleEncryptionEnabled",
                HashSet::from(["FALSE"]),
            ),
            ("msDS-PasswordHistoryLength", HashSet::from(["5"])),
            ("msDS-PasswordComplexityEnabled", HashSet::from(["TRUE"])),
            ("msDS-MinimumPasswordLength", HashSet::from(["8"])),
            ("msDS-MinimumPasswordAge", HashSet::from(["0"])),
            ("msDS-MaximumPasswordAge", HashSet::from([max_age])),
            ("msDS-LockoutThreshold", HashSet::from([threshold.as_str()])),
            (
                "msDS-LockoutObservationWindow",
                HashSet::from([thirty_minutes]),
            ),
            ("msDS-LockoutDuration", HashSet::from([thirty_minutes])),
        ];
        let res = ldap.add(&dn, attrs).await.unwrap();
        // 68: it exists already.
        assert!(res.rc == 0 || res.rc == 68, "PSO: {res:?}");
        let user = self.user_dn(login);
        let res = ldap
            .modify(
                &dn,
                vec![ldap3::Mod::Add(
                    "msDS-PSOAppliesTo",
                    HashSet::from([user.as_str()]),
                )],
            )
            .await
            .unwrap();
        // 20: it applies to the user already.
        assert!(res.rc == 0 || res.rc == 20, "PSO for {login}: {res:?}");
        let _ = ldap.unbind().await;
    }

    /// Whether the user's bind with `password` is refused (49) with `data` in AD's text:
    /// `data 532` expired, `data 773` must change.
    async fn bind_refused_with(&self, login: &str, password: &str, data: &str) -> bool {
        let mut ldap = self.connect().await.unwrap();
        let res = ldap
            .simple_bind(&format!("{login}@example.test"), password)
            .await
            .unwrap();
        let _ = ldap.unbind().await;
        res.rc == 49 && res.text.contains(data)
    }

    /// A connection bound as the domain administrator (for seeding test data).
    async fn admin_bind(&self) -> ldap3::Ldap {
        let mut ldap = self.connect().await.unwrap();
        ldap.simple_bind(&format!("administrator@{REALM}"), ADMIN_PW)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }
}

#[async_trait::async_trait]
impl TestDirectory for SambaAd {
    fn name(&self) -> &'static str {
        "samba-ad"
    }

    fn directory_config(&self, dir: &Path) -> RawDirectory {
        std::fs::create_dir_all(dir).unwrap();
        let pw = dir.join("bind-password");
        write_private(&pw, SVC_PW).unwrap();
        let ca = dir.join("ad-ca.crt");
        std::fs::write(&ca, &self.ca_pem).unwrap();
        RawDirectory {
            flavour: Flavour::ActiveDirectory,
            uris: vec!["ldaps://127.0.0.1:636".into()],
            ca_file: Some(ca),
            bind_dn: format!("sspr@{REALM}"),
            bind_password: Some(SecretSource::File(pw)),
            base_dn: PEOPLE.into(),
            user_filter: "(&(objectCategory=person)(objectClass=user))".into(),
            login_attribute: "sAMAccountName".into(),
            timeout_ms: 3_000,
            ..RawDirectory::default()
        }
    }

    async fn create_user(&self, login: &str, password: &str) {
        let mut ldap = self.admin_bind().await;
        let dn = format!("CN={login},{PEOPLE}");
        let upn = format!("{login}@example.test");
        let pw = utf16_quoted(password);
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                b"objectClass".to_vec(),
                ["top", "person", "organizationalPerson", "user"]
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect(),
            ),
            (b"cn".to_vec(), HashSet::from([login.as_bytes().to_vec()])),
            (
                b"sAMAccountName".to_vec(),
                HashSet::from([login.as_bytes().to_vec()]),
            ),
            (
                b"userPrincipalName".to_vec(),
                HashSet::from([upn.into_bytes()]),
            ),
            (b"unicodePwd".to_vec(), HashSet::from([pw])),
            (
                b"userAccountControl".to_vec(),
                HashSet::from([b"512".to_vec()]),
            ),
        ];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }

    async fn can_bind(&self, login: &str, password: &str) -> bool {
        self.bind(&format!("{login}@example.test"), password)
            .await
            .is_ok()
    }

    async fn lock(&self, login: &str) {
        for i in 0..3 {
            let _ = self
                .bind(&format!("{login}@example.test"), &format!("Wrong-{i}-x"))
                .await;
        }
    }

    async fn expire_password(&self, login: &str, password: &str) {
        // A fine-grained password policy (PSO) for the user whose passwords expire after
        // two days (Samba treats a maximum age under one day as "never"), then the same
        // password set again with pwdLastSet three days back: over LDAP pwdLastSet takes
        // only 0 and -1, so this goes through the DC's database with the control Samba
        // uses to import passwords (DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET).
        let two_days = (-2 * 86_400 * 10_000_000i64).to_string();
        self.apply_pso(&format!("expire-{login}"), login, &two_days, 0)
            .await;
        let user = format!("CN={login},{PEOPLE}");
        let script = r#"
import sys, time, ldb, samba.param
from samba.samdb import SamDB
from samba.auth import system_session
lp = samba.param.LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
m = ldb.Message()
m.dn = ldb.Dn(db, sys.argv[2])
password = ('"%s"' % sys.stdin.read()).encode("utf-16-le")
m["unicodePwd"] = ldb.MessageElement(password, ldb.FLAG_MOD_REPLACE, "unicodePwd")
three_days_ago = int((time.time() - 3 * 86400 + 11644473600) * 10**7)
m["pwdLastSet"] = ldb.MessageElement(str(three_days_ago), ldb.FLAG_MOD_REPLACE, "pwdLastSet")
db.modify(m, controls=["local_oid:1.3.6.1.4.1.7165.4.3.20:0"])
"#;
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(&self.conf)
            .arg(&user)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "backdating pwdLastSet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn expired(&self, login: &str, password: &str) -> bool {
        self.bind_refused_with(login, password, "data 532").await
    }

    async fn must_change(&self, login: &str, password: &str) -> bool {
        self.bind_refused_with(login, password, "data 773").await
    }

    fn user_dn(&self, login: &str) -> String {
        format!("CN={login},{PEOPLE}")
    }

    async fn create_group(&self, name: &str, members: &[String]) -> String {
        let mut ldap = self.admin_bind().await;
        let dn = format!("CN={name},{PEOPLE}");
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                b"objectClass".to_vec(),
                HashSet::from([b"top".to_vec(), b"group".to_vec()]),
            ),
            (b"cn".to_vec(), HashSet::from([name.as_bytes().to_vec()])),
            (
                b"sAMAccountName".to_vec(),
                HashSet::from([name.as_bytes().to_vec()]),
            ),
            (
                b"member".to_vec(),
                members.iter().map(|m| m.as_bytes().to_vec()).collect(),
            ),
        ];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
        dn
    }

    async fn service_may_write(&self, login: &str, attr: &str, value: &str) -> bool {
        let mut ldap = self.connect().await.unwrap();
        ldap.simple_bind(&format!("sspr@{REALM}"), SVC_PW)
            .await
            .unwrap()
            .success()
            .unwrap();
        let res = ldap
            .modify(
                &format!("CN={login},{PEOPLE}"),
                vec![ldap3::Mod::Replace(attr, HashSet::from([value]))],
            )
            .await
            .unwrap();
        let _ = ldap.unbind().await;
        res.rc == 0
    }

    async fn set_attribute(&self, login: &str, attr: &str, value: &str) {
        let mut ldap = self.admin_bind().await;
        ldap.modify(
            &format!("CN={login},{PEOPLE}"),
            vec![ldap3::Mod::Replace(attr, HashSet::from([value]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = ldap.unbind().await;
    }

    async fn stop(&mut self) {
        self.halt();
    }

    async fn start(&mut self) {
        self.launch().await.expect("samba restarts");
    }

    fn expected_policy(&self) -> (u32, u32, bool) {
        (8, 5, true)
    }

    fn refusals(&self, _current: &str) -> Vec<(String, &'static str)> {
        // Samba applies no history on an admin reset (and lacks the policy-hints control).
        vec![
            ("Ab1!".into(), "PASSWORD_TOO_SHORT"),
            ("alllowercaseletters".into(), "PASSWORD_TOO_SIMPLE"),
        ]
    }

    fn default_lockout_threshold(&self) -> u32 {
        3
    }

    async fn set_lockout_threshold(&self, login: &str, n: u32) {
        // A fine-grained password settings object (PSO) applied to the user, over LDAP;
        // passwords never expire under it.
        self.apply_pso(&format!("lockout-{n}"), login, "-9223372036854775808", n)
            .await;
    }

    async fn locked_out(&self, login: &str) -> bool {
        self.admin_read(login, "msDS-User-Account-Control-Computed")
            .await
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v & 0x10 != 0)
    }

    async fn failed_binds(&self, login: &str) -> u32 {
        self.admin_read(login, "badPwdCount")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl SambaAd {
    /// One attribute of a user, read as the domain administrator.
    async fn admin_read(&self, login: &str, attr: &str) -> Option<String> {
        let mut ldap = self.admin_bind().await;
        let (entries, _) = ldap
            .search(
                &self.user_dn(login),
                ldap3::Scope::Base,
                "(objectClass=*)",
                vec![attr],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        let _ = ldap.unbind().await;
        entries
            .into_iter()
            .map(ldap3::SearchEntry::construct)
            .find_map(|e| e.attrs.get(attr).and_then(|v| v.first().cloned()))
    }
}
