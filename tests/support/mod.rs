//! Test harness: the daemon in-process on 127.0.0.1:0 behind real gRPC over TLS, real
//! directories (slapd via `ssprd_testbed`, Samba AD DC via `samba`), and the end-to-end
//! scenarios both directories run.
#![allow(dead_code)]

pub mod browser;
pub mod gateway;
pub mod samba;
pub mod scenarios;
pub mod terminal;

use ssprd::api::pb::{
    self, registration_service_client::RegistrationServiceClient,
    reset_service_client::ResetServiceClient,
};
use ssprd::config::{RawConfig, RawDirectory, SecretSource};
use ssprd_testbed::{Slapd, TestCa, write_private};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_types::StatusExt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Installs the process-wide rustls provider (idempotent).
pub fn init() {
    ssprd::tls::install_crypto_provider();
}

/// A directory the scenarios can run against.
#[async_trait::async_trait]
pub trait TestDirectory: Send + Sync {
    fn name(&self) -> &'static str;
    /// The `[directory]` section for the daemon (bind password in a file under `dir`).
    fn directory_config(&self, dir: &Path) -> RawDirectory;
    /// Creates a user who may use SSPR; returns nothing, panics on failure.
    async fn create_user(&self, login: &str, password: &str);
    /// A simple bind as the user over LDAPS.
    async fn can_bind(&self, login: &str, password: &str) -> bool;
    /// Locks the account by failed binds.
    async fn lock(&self, login: &str);
    async fn stop(&mut self);
    async fn start(&mut self);
    /// True when the directory will make the user change `password` at next sign-in
    /// (OpenLDAP `pwdReset: TRUE`, AD bind refused with `data 773`).
    async fn must_change(&self, login: &str, password: &str) -> bool;
    /// Makes the user's current password, `password`, expired now, with no grace binds.
    /// A password set afterwards is valid again: on OpenLDAP for 2 s (the policy's maximum
    /// age), on AD for two days.
    async fn expire_password(&self, login: &str, password: &str);
    /// True when the directory refuses a bind with `password` because it has expired
    /// (OpenLDAP: refused under the expiring policy; AD: `data 532`).
    async fn expired(&self, login: &str, password: &str) -> bool;
    /// The DN of a user made by `create_user`.
    fn user_dn(&self, login: &str) -> String;
    /// Creates a group holding `members` (DNs of users or groups); returns its DN.
    async fn create_group(&self, name: &str, members: &[String]) -> String;
    /// Whether the service account may replace `attr` of a user with `value` (a bind as
    /// the service account and a modify).
    async fn service_may_write(&self, login: &str, attr: &str, value: &str) -> bool;
    /// Sets a directory attribute of a user (e.g. `mail`, `mobile`, `adminCount`).
    async fn set_attribute(&self, login: &str, attr: &str, value: &str);
    /// The directory's own policy for ordinary users: (min length, history, complexity).
    fn expected_policy(&self) -> (u32, u32, bool);
    /// (new password, expected ErrorInfo reason) pairs the directory's policy refuses,
    /// given that the user's current password is `current`.
    fn refusals(&self, current: &str) -> Vec<(String, &'static str)>;
    /// The lockout threshold of ordinary users (the directory's default policy).
    fn default_lockout_threshold(&self) -> u32;
    /// Gives the user a policy of its own that locks after `n` failed binds (OpenLDAP: a
    /// ppolicy subentry; AD: a fine-grained password settings object).
    async fn set_lockout_threshold(&self, login: &str, n: u32);
    /// Whether the directory has locked the account (`pwdAccountLockedTime`,
    /// `lockoutTime`), read as the directory's administrator.
    async fn locked_out(&self, login: &str) -> bool;
    /// The failed binds the directory counts against the user now (`pwdFailureTime`
    /// values, `badPwdCount`).
    async fn failed_binds(&self, login: &str) -> u32;
}

/// Client certificates of one test: a CA the daemon trusts and one certificate per role,
/// plus one from that CA that no `[[clients]]` entry names.
pub struct Certs {
    pub ca: TestCa,
    pub admin: ssprd_testbed::CertPair,
    pub helpdesk: ssprd_testbed::CertPair,
    pub kiosk: ssprd_testbed::CertPair,
    pub portal: ssprd_testbed::CertPair,
    pub unmapped: ssprd_testbed::CertPair,
    pub ca_file: PathBuf,
}

impl Certs {
    /// Makes the certificates and maps them in `raw` (mutual TLS on; clients without a
    /// certificate keep the portal role so the plain [`Clients`] still work).
    pub fn install(raw: &mut RawConfig, dir: &Path) -> Self {
        use ssprd::api::auth::Role;
        let ca = TestCa::new("ssprd test client CA").unwrap();
        let ca_file = dir.join("clients-ca.crt");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        raw.server.client_ca_file = Some(ca_file.clone());
        raw.server.anonymous_role = Some(Role::Portal);
        let entry = |name: &str, role: Role| ssprd::config::RawClient {
            name: name.into(),
            common_name: Some(format!("{name}.example.org")),
            role: Some(role),
            ..Default::default()
        };
        raw.clients = vec![
            entry("ops-admin", Role::Admin),
            entry("helpdesk-1", Role::Helpdesk),
            entry("lobby-kiosk", Role::Kiosk),
            entry("web-portal", Role::Portal),
        ];
        Self {
            admin: ca.client_cert("ops-admin.example.org").unwrap(),
            helpdesk: ca.client_cert("helpdesk-1.example.org").unwrap(),
            kiosk: ca.client_cert("lobby-kiosk.example.org").unwrap(),
            portal: ca.client_cert("web-portal.example.org").unwrap(),
            unmapped: ca.client_cert("someone-else.example.org").unwrap(),
            ca,
            ca_file,
        }
    }
}

/// `[email]` for a test's SMTP sink: STARTTLS with the sink's CA, organisation "Example Test".
pub fn email_to(smtp: &ssprd_testbed::SmtpSink) -> ssprd::config::RawEmail {
    ssprd::config::RawEmail {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: ssprd::config::SmtpTls::Starttls,
        ca_file: Some(smtp.ca_file.clone()),
        from: "Example IT <no-reply@example.org>".into(),
        organization: "Example Test".into(),
        timeout_ms: 3_000,
        ..ssprd::config::RawEmail::default()
    }
}

/// Turns authenticator apps on in `raw`: a sealing key written under `dir`, issuer
/// "Example Test" (the policy's enabled methods are the caller's to set).
pub fn authenticator_in(raw: &mut RawConfig, dir: &Path) {
    let key = dir.join("totp-key");
    ssprd_testbed::write_private(&key, &"5a".repeat(32)).unwrap();
    raw.authenticator.key = Some(SecretSource::File(key));
    raw.authenticator.issuer = "Example Test".into();
}

/// The daemon under test.
pub struct Daemon {
    pub addr: std::net::SocketAddr,
    pub ca_pem: String,
    pub dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ssprd::server::ServeError>>>,
}

impl Daemon {
    /// Writes TLS files and returns a config for a daemon on 127.0.0.1:0 with its store in `dir`.
    pub fn config(dir: &Path, directory: RawDirectory) -> (RawConfig, String) {
        std::fs::create_dir_all(dir).unwrap();
        let ca = TestCa::new("ssprd test gRPC CA").unwrap();
        let server = ca.server_cert(&[]).unwrap();
        std::fs::write(dir.join("server.crt"), &server.cert_pem).unwrap();
        write_private(&dir.join("server.key"), &server.key_pem).unwrap();
        let mut raw = RawConfig::default();
        raw.server.listen = "127.0.0.1:0".into();
        raw.server.tls_cert_file = dir.join("server.crt");
        raw.server.tls_key = Some(SecretSource::File(dir.join("server.key")));
        raw.store.path = dir.join("db");
        raw.store.sweep_interval_secs = 1;
        // Response padding is measured in tests/timing.rs; elsewhere it would only slow
        // the suite down.
        raw.server.uniform_response_ms = 0;
        raw.directory = directory;
        // The spine scenarios use security questions alone; method tests enable more.
        raw.policy.enabled_methods = vec!["security_questions".into()];
        raw.policy.questions_not_only_method = false;
        // The directory's own refusals are under test there: local rules step aside.
        raw.password.min_length = 1;
        raw.password.common_passwords = false;
        (raw, ca.pem())
    }

    /// [`Daemon::config`] for `dir` on a fixed free port, written to `<work>/ssprd.toml`
    /// (for daemons run as the real binary, and for the CLI): (config, CA PEM, port, file).
    pub fn config_file(work: &Path, dir: &dyn TestDirectory) -> (RawConfig, String, u16, PathBuf) {
        let (mut raw, ca) = Self::config(work, dir.directory_config(&work.join("dir")));
        let port = ssprd_testbed::free_port().unwrap();
        raw.server.listen = format!("127.0.0.1:{port}");
        let file = work.join("ssprd.toml");
        std::fs::write(&file, toml::to_string(&raw).unwrap()).unwrap();
        (raw, ca, port, file)
    }

    pub async fn start(raw: RawConfig, ca_pem: String) -> Self {
        Self::start_with_clock(raw, ca_pem, ssprd::service::system_clock()).await
    }

    pub async fn start_with_clock(
        raw: RawConfig,
        ca_pem: String,
        clock: ssprd::service::Clock,
    ) -> Self {
        let cfg = raw.validate().expect("valid test config");
        let dir = raw.store.path.parent().unwrap().to_path_buf();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(ssprd::server::serve_with_clock(
            cfg,
            listener,
            async move {
                let _ = rx.await;
            },
            clock,
        ));
        // Ready when a TLS connection works.
        let d = Self {
            addr,
            ca_pem,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        };
        let mut d = d;
        for _ in 0..300 {
            if d.channel().await.is_ok() {
                return d;
            }
            if d.task.as_ref().is_some_and(|t| t.is_finished()) {
                let ended = d.task.take().unwrap().await;
                panic!("the daemon stopped while starting: {ended:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("daemon did not come up within 15 s");
    }

    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&self.ca_pem))
                    .domain_name("localhost"),
            )?
            .connect()
            .await
    }

    /// A lazily connected channel, presenting `identity` (a client certificate) if given.
    pub fn channel_as(&self, identity: Option<&ssprd_testbed::CertPair>) -> Channel {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if let Some(id) = identity {
            tls = tls.identity(tonic::transport::Identity::from_pem(
                &id.cert_pem,
                &id.key_pem,
            ));
        }
        Channel::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy()
    }

    /// An AdminService client presenting `cert`.
    pub fn admin(
        &self,
        cert: &ssprd_testbed::CertPair,
    ) -> pb::admin_service_client::AdminServiceClient<Channel> {
        pb::admin_service_client::AdminServiceClient::new(self.channel_as(Some(cert)))
    }

    pub async fn clients(&self) -> Clients {
        let ch = self.channel().await.expect("channel");
        Clients {
            reg: RegistrationServiceClient::new(ch.clone()),
            reset: ResetServiceClient::new(ch),
        }
    }

    /// Waits (up to `within`) for the daemon to stop by itself; its result.
    pub async fn finished(
        mut self,
        within: std::time::Duration,
    ) -> Option<Result<(), ssprd::server::ServeError>> {
        let task = self.task.take()?;
        tokio::time::timeout(within, task)
            .await
            .ok()
            .map(|r| r.expect("serve task"))
    }

    /// Stops the daemon; fails the test when it takes longer than a stop may (the unit's
    /// `TimeoutStopSec` is 20 s) rather than hang the suite.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(20), t)
                .await
                .expect("the daemon did not stop within 20 s of being asked")
                .unwrap()
                .unwrap();
        }
    }
}

pub struct Clients {
    pub reg: RegistrationServiceClient<Channel>,
    pub reset: ResetServiceClient<Channel>,
}

/// A clock the test can step: system time plus an offset.
#[derive(Clone, Default)]
pub struct TestClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    pub fn clock(&self) -> ssprd::service::Clock {
        let offset = self.0.clone();
        std::sync::Arc::new(move || {
            let off = offset.load(std::sync::atomic::Ordering::SeqCst);
            ssprd::service::now().saturating_add_signed(off)
        })
    }

    pub fn now(&self) -> u64 {
        (self.clock())()
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The reason in the status's `google.rpc.ErrorInfo`.
pub fn reason(s: &tonic::Status) -> String {
    s.get_details_error_info()
        .map(|i| {
            assert_eq!(i.domain, "ssprd");
            i.reason
        })
        .unwrap_or_else(|| format!("<no ErrorInfo: {:?} {}>", s.code(), s.message()))
}

/// The test's answer to a question: distinct per question.
pub fn answer_for(question_id: &str) -> String {
    format!("Answer to {}", question_id.rsplit('.').next().unwrap())
}

pub const QUESTIONS: [&str; 3] = ["bank.first_pet", "bank.birth_city", "bank.first_car"];

impl Clients {
    /// BeginRegistration: the registration token.
    pub async fn begin(&mut self, login: &str, password: &str) -> String {
        self.reg
            .begin_registration(pb::BeginRegistrationRequest {
                username: login.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .expect("BeginRegistration")
            .into_inner()
            .registration_token
    }

    /// AddContact for `email` in registration session `token`, then ConfirmContact with the
    /// code the SMTP sink received.
    pub async fn add_confirmed_email(
        &mut self,
        token: &str,
        email: &str,
        smtp: &ssprd_testbed::SmtpSink,
    ) {
        self.reg
            .add_contact(pb::AddContactRequest {
                registration_token: token.into(),
                kind: pb::ContactKind::Email as i32,
                value: email.into(),
                voice: false,
            })
            .await
            .expect("AddContact");
        let code = smtp.last_code(email, 8).expect("confirmation code");
        self.reg
            .confirm_contact(pb::ConfirmContactRequest {
                registration_token: token.into(),
                kind: pb::ContactKind::Email as i32,
                code,
            })
            .await
            .expect("ConfirmContact");
    }

    /// BeginRegistration + SetSecurityQuestions with [`QUESTIONS`] / [`answer_for`].
    pub async fn register(&mut self, login: &str, password: &str) {
        let token = self.begin(login, password).await;
        let answers = QUESTIONS
            .iter()
            .map(|q| pb::QuestionAnswer {
                question_id: q.to_string(),
                answer: answer_for(q),
            })
            .collect();
        let st = self
            .reg
            .set_security_questions(pb::SetSecurityQuestionsRequest {
                registration_token: token,
                answers,
            })
            .await
            .expect("SetSecurityQuestions")
            .into_inner();
        assert_eq!(st.status.unwrap().security_question_ids.len(), 3);
    }

    pub async fn start(&mut self, login: &str) -> pb::StartResetResponse {
        self.reset
            .start_reset(pb::StartResetRequest {
                username: login.into(),
            })
            .await
            .expect("StartReset")
            .into_inner()
    }

    /// Answers the questions of `challenge` with `answer(question_id)`.
    pub async fn verify_with(
        &mut self,
        flow_id: &str,
        challenge: &[pb::MethodChallenge],
        answer: impl Fn(&str) -> String,
    ) -> Result<pb::VerifyMethodResponse, tonic::Status> {
        let answers = question_ids(challenge)
            .iter()
            .map(|q| pb::QuestionAnswer {
                question_id: q.clone(),
                answer: answer(q),
            })
            .collect();
        self.reset
            .verify_method(pb::VerifyMethodRequest {
                flow_id: flow_id.into(),
                proof: Some(pb::verify_method_request::Proof::SecurityAnswers(
                    pb::SecurityAnswers { answers },
                )),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// StartReset + correct answers: a verified flow id.
    pub async fn verified_flow(&mut self, login: &str) -> String {
        let s = self.start(login).await;
        let v = self
            .verify_with(&s.flow_id, &s.methods, answer_for)
            .await
            .expect("VerifyMethod");
        assert!(v.verified, "correct answers must verify");
        s.flow_id
    }

    pub async fn complete(
        &mut self,
        flow_id: &str,
        new_password: &str,
        unlock: bool,
    ) -> Result<pb::CompleteResetResponse, tonic::Status> {
        self.reset
            .complete_reset(pb::CompleteResetRequest {
                flow_id: flow_id.into(),
                new_password: new_password.into(),
                unlock,
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// The question ids asked in a challenge list.
pub fn question_ids(challenge: &[pb::MethodChallenge]) -> Vec<String> {
    challenge
        .iter()
        .flat_map(|c| match &c.challenge {
            Some(pb::method_challenge::Challenge::SecurityQuestions(q)) => {
                q.questions.iter().map(|q| q.id.clone()).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Polls `probe` every 50 ms until it yields a value; panics after 15 s.
pub async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(std::time::Instant::now() < until, "gave up waiting");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The value of the series whose line starts with `series` (name and labels as rendered)
/// in a Prometheus text exposition.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// GET `path` over plain HTTP/1.1 on `addr`, naming `host`: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str, host: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Runs `ssprd check-directory` (the real binary) on `raw` written to `<work>/check.toml`,
/// with `extra` arguments: (exit code, stdout).
pub fn check_directory(raw: &RawConfig, work: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let file = work.join("check.toml");
    std::fs::write(&file, toml::to_string(raw).unwrap()).unwrap();
    let mut args = vec!["check-directory", "--config", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ssprd"))
        .args(&args)
        .env_remove("SSPRD_CONFIG")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

/// The line of a `check-directory` report for `right` (its description's start).
pub fn report_line(out: &str, right: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with(right))
        .unwrap_or_else(|| panic!("no {right:?} line in:\n{out}"))
        .to_string()
}

/// A unique login for one scenario.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}{}", hex::encode(b))
}

// ------------------------------------------------------------------ OpenLDAP ----

/// The testbed slapd as a [`TestDirectory`].
pub struct OpenLdap {
    pub slapd: Slapd,
    _dir: tempfile::TempDir,
}

impl OpenLdap {
    pub async fn start() -> Self {
        Self::start_with(ssprd_testbed::PasswordHash::Strongest).await
    }

    /// A slapd that hashes passwords with `hash`.
    pub async fn start_with(hash: ssprd_testbed::PasswordHash) -> Self {
        assert!(
            Slapd::available(),
            "slapd is not installed: run scripts/install-test-deps.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let slapd = Slapd::start_with(dir.path(), hash)
            .await
            .expect("slapd starts");
        Self { slapd, _dir: dir }
    }

    fn dn(login: &str) -> String {
        format!("uid={login},{}", ssprd_testbed::PEOPLE)
    }

    /// Makes the user's current password expired now, with `grace` grace binds left (see
    /// [`TestDirectory::expire_password`]).
    pub async fn expire_password_with_grace(&self, login: &str, password: &str, grace: u32) {
        // Under a policy with a maximum age of 2 s, the password set again by the manager
        // (which starts the clock: pwdChangedTime) is expired 3 s later.
        self.expiring_policy(login, 2, grace).await;
        let mut root = self.slapd.root_bind().await.unwrap();
        root.modify(
            &Self::dn(login),
            vec![ldap3::Mod::Replace("userPassword", [password].into())],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = root.unbind().await;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }

    /// Puts the user under a password policy whose passwords expire `secs` seconds after
    /// they are set, with `grace` grace binds (`cn=expire-<secs>-<grace>,ou=policies`,
    /// created once). The clock starts at the user's next password change.
    async fn expiring_policy(&self, login: &str, secs: u32, grace: u32) {
        let mut root = self.slapd.root_bind().await.unwrap();
        let cn = format!("expire-{secs}-{grace}");
        let policy = format!("cn={cn},ou=policies,{}", ssprd_testbed::SUFFIX);
        let age = secs.to_string();
        let grace = grace.to_string();
        let added = root
            .add(
                &policy,
                vec![
                    ("objectClass", ["top", "device", "pwdPolicy"].into()),
                    ("cn", [cn.as_str()].into()),
                    ("pwdAttribute", ["userPassword"].into()),
                    ("pwdMaxAge", [age.as_str()].into()),
                    ("pwdGraceAuthNLimit", [grace.as_str()].into()),
                    ("pwdInHistory", ["5"].into()),
                    ("pwdLockout", ["TRUE"].into()),
                    ("pwdMaxFailure", ["3"].into()),
                ],
            )
            .await
            .unwrap();
        // 68: it exists already.
        assert!(added.rc == 0 || added.rc == 68, "{added:?}");
        root.modify(
            &Self::dn(login),
            vec![ldap3::Mod::Replace(
                "pwdPolicySubentry",
                [policy.as_str()].into(),
            )],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = root.unbind().await;
    }

    /// A bind over LDAPS with the harness's own ldap3 connection.
    pub async fn bind(&self, dn: &str, password: &str) -> Result<(), BoxError> {
        let tls = client_tls(&self.slapd.ca_pem);
        let settings = ldap3::LdapConnSettings::new()
            .set_config(tls)
            .set_conn_timeout(std::time::Duration::from_secs(2));
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::with_settings(settings, &self.slapd.ldaps_uri()).await?;
        ldap3::drive!(conn);
        let res = ldap.simple_bind(dn, password).await?;
        let _ = ldap.unbind().await;
        res.success()?;
        Ok(())
    }
}

pub fn client_tls(ca_pem: &str) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[async_trait::async_trait]
impl TestDirectory for OpenLdap {
    fn name(&self) -> &'static str {
        "openldap"
    }

    fn directory_config(&self, dir: &Path) -> RawDirectory {
        std::fs::create_dir_all(dir).unwrap();
        let pw = dir.join("bind-password");
        write_private(&pw, self.slapd.service_password.expose()).unwrap();
        RawDirectory {
            uris: vec![self.slapd.ldaps_uri()],
            ca_file: Some(self.slapd.ca_file.clone()),
            bind_dn: ssprd_testbed::SERVICE_DN.into(),
            bind_password: Some(SecretSource::File(pw)),
            base_dn: ssprd_testbed::PEOPLE.into(),
            user_filter: "(objectClass=inetOrgPerson)".into(),
            login_attribute: "uid".into(),
            ppolicy_dn: format!("cn=default,ou=policies,{}", ssprd_testbed::SUFFIX),
            group_base_dn: format!("ou=groups,{}", ssprd_testbed::SUFFIX),
            timeout_ms: 2_000,
            ..RawDirectory::default()
        }
    }

    async fn create_user(&self, login: &str, password: &str) {
        self.slapd
            .add_user(login, &format!("Test {login}"), password)
            .await
            .expect("add user");
    }

    async fn can_bind(&self, login: &str, password: &str) -> bool {
        self.bind(&Self::dn(login), password).await.is_ok()
    }

    async fn lock(&self, login: &str) {
        for i in 0..3 {
            let _ = self.bind(&Self::dn(login), &format!("wrong-{i}")).await;
        }
    }

    async fn expire_password(&self, login: &str, password: &str) {
        self.expire_password_with_grace(login, password, 0).await;
    }

    async fn expired(&self, login: &str, password: &str) -> bool {
        // slapd says only "invalid credentials" (49) to an expired password without grace.
        !self.can_bind(login, password).await
    }

    async fn must_change(&self, login: &str, password: &str) -> bool {
        // The user's own bind with the ppolicy request control: slapd answers success with
        // a response control whose error is changeAfterReset (2) — "must be changed".
        let tls = client_tls(&self.slapd.ca_pem);
        let settings = ldap3::LdapConnSettings::new().set_config(tls);
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::with_settings(settings, &self.slapd.ldaps_uri())
                .await
                .unwrap();
        ldap3::drive!(conn);
        let res = ldap
            .with_controls(vec![ldap3::controls::RawControl {
                ctype: "1.3.6.1.4.1.42.2.27.8.5.1".into(),
                crit: false,
                val: None,
            }])
            .simple_bind(&Self::dn(login), password)
            .await
            .unwrap();
        let _ = ldap.unbind().await;
        let change_after_reset = res.rc == 0
            && res.ctrls.iter().any(|c| {
                c.1.ctype == "1.3.6.1.4.1.42.2.27.8.5.1"
                    && c.1
                        .val
                        .as_deref()
                        .is_some_and(|v| v.windows(3).any(|w| w == [0x81, 0x01, 0x02]))
            });
        let mut ldap = self.slapd.root_bind().await.unwrap();
        let (entries, _) = ldap
            .search(
                &Self::dn(login),
                ldap3::Scope::Base,
                "(objectClass=*)",
                vec!["pwdReset"],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        let _ = ldap.unbind().await;
        let pwd_reset = entries
            .into_iter()
            .map(ldap3::SearchEntry::construct)
            .any(|e| e.attrs.get("pwdReset").is_some_and(|v| v == &["TRUE"]));
        assert_eq!(
            change_after_reset, pwd_reset,
            "the bind's ppolicy control and pwdReset agree"
        );
        pwd_reset
    }

    fn user_dn(&self, login: &str) -> String {
        Self::dn(login)
    }

    async fn create_group(&self, name: &str, members: &[String]) -> String {
        let dn = format!("cn={name},ou=groups,{}", ssprd_testbed::SUFFIX);
        let mut ldap = self.slapd.root_bind().await.unwrap();
        let members: std::collections::HashSet<&str> = members.iter().map(String::as_str).collect();
        ldap.add(
            &dn,
            vec![
                (
                    "objectClass",
                    std::collections::HashSet::from(["groupOfNames"]),
                ),
                ("cn", std::collections::HashSet::from([name])),
                ("member", members),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = ldap.unbind().await;
        dn
    }

    async fn service_may_write(&self, login: &str, attr: &str, value: &str) -> bool {
        let tls = client_tls(&self.slapd.ca_pem);
        let settings = ldap3::LdapConnSettings::new().set_config(tls);
        let (conn, mut ldap) =
            ldap3::LdapConnAsync::with_settings(settings, &self.slapd.ldaps_uri())
                .await
                .unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(
            ssprd_testbed::SERVICE_DN,
            self.slapd.service_password.expose(),
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let res = ldap
            .modify(
                &Self::dn(login),
                vec![ldap3::Mod::Replace(
                    attr,
                    std::collections::HashSet::from([value]),
                )],
            )
            .await
            .unwrap();
        let _ = ldap.unbind().await;
        res.rc == 0
    }

    async fn set_attribute(&self, login: &str, attr: &str, value: &str) {
        let mut ldap = self.slapd.root_bind().await.unwrap();
        ldap.modify(
            &Self::dn(login),
            vec![ldap3::Mod::Replace(
                attr,
                std::collections::HashSet::from([value]),
            )],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = ldap.unbind().await;
    }

    async fn stop(&mut self) {
        self.slapd.stop();
    }

    async fn start(&mut self) {
        self.slapd.restart().await.expect("slapd restarts");
    }

    fn expected_policy(&self) -> (u32, u32, bool) {
        (8, 5, false)
    }

    fn refusals(&self, current: &str) -> Vec<(String, &'static str)> {
        vec![
            ("Sh0rt!".into(), "PASSWORD_TOO_SHORT"),
            // ppolicy pwdInHistory: the current password counts as history.
            (current.into(), "PASSWORD_IN_HISTORY"),
        ]
    }

    fn default_lockout_threshold(&self) -> u32 {
        3
    }

    async fn set_lockout_threshold(&self, login: &str, n: u32) {
        let name = format!("lockout-{n}");
        let dn = format!("cn={name},ou=policies,{}", ssprd_testbed::SUFFIX);
        let mut ldap = self.slapd.root_bind().await.unwrap();
        let n = n.to_string();
        let res = ldap
            .add(
                &dn,
                vec![
                    (
                        "objectClass",
                        std::collections::HashSet::from(["top", "device", "pwdPolicy"]),
                    ),
                    ("cn", std::collections::HashSet::from([name.as_str()])),
                    (
                        "pwdAttribute",
                        std::collections::HashSet::from(["userPassword"]),
                    ),
                    ("pwdLockout", std::collections::HashSet::from(["TRUE"])),
                    (
                        "pwdMaxFailure",
                        std::collections::HashSet::from([n.as_str()]),
                    ),
                    ("pwdMinLength", std::collections::HashSet::from(["8"])),
                    ("pwdInHistory", std::collections::HashSet::from(["5"])),
                ],
            )
            .await
            .unwrap();
        assert!(res.rc == 0 || res.rc == 68, "policy entry: {res:?}");
        ldap.modify(
            &Self::dn(login),
            vec![ldap3::Mod::Replace(
                "pwdPolicySubentry",
                std::collections::HashSet::from([dn.as_str()]),
            )],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = ldap.unbind().await;
    }

    async fn locked_out(&self, login: &str) -> bool {
        !self
            .operational(login, "pwdAccountLockedTime")
            .await
            .is_empty()
    }

    async fn failed_binds(&self, login: &str) -> u32 {
        self.operational(login, "pwdFailureTime").await.len() as u32
    }
}

impl OpenLdap {
    /// The values of an operational attribute of a user, read as the rootDN.
    async fn operational(&self, login: &str, attr: &str) -> Vec<String> {
        let mut ldap = self.slapd.root_bind().await.unwrap();
        let (entries, _) = ldap
            .search(
                &Self::dn(login),
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
            .flat_map(|e| e.attrs.get(attr).cloned().unwrap_or_default())
            .collect()
    }
}
