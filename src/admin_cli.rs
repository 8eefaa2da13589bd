//! `ssprd admin …`: a gRPC client of a running daemon's `AdminService`, authenticated by a
//! client certificate mapped to the `admin` (or `helpdesk`) role. It never opens the
//! database (sled allows one process).
//!
//! Output is a human table by default and JSON with `--json`. Exit codes follow sysexits:
//! 0 done, 64 usage, 65 invalid input (INVALID_ARGUMENT), 66 no such user (NOT_FOUND),
//! 69 daemon or directory unavailable, 75 policy changed meanwhile (ABORTED: read, retry),
//! 77 not permitted (UNAUTHENTICATED / PERMISSION_DENIED), 70 anything else.

use crate::api::pb::{self, admin_service_client::AdminServiceClient};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// How to reach the daemon.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The daemon's gRPC address.
    #[arg(
        long,
        env = "SSPRD_ADMIN_SERVER",
        default_value = "https://localhost:50051"
    )]
    pub server: String,
    /// CA certificate (PEM) that signed the daemon's certificate.
    #[arg(long, env = "SSPRD_ADMIN_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) mapped to the admin or helpdesk role.
    #[arg(long, env = "SSPRD_ADMIN_CERT")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "SSPRD_ADMIN_KEY")]
    pub key: Option<PathBuf>,
    /// Name to expect in the daemon's certificate (default: the host of --server).
    #[arg(long)]
    pub tls_name: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    /// Where `--ca`, `--cert` and `--key` are not given: the files `ssprd setup` wrote
    /// beside the configuration `config` (its CA and the first admin certificate), when
    /// they are there and readable (as root).
    pub fn or_setup_files(mut self, config: &std::path::Path) -> Self {
        let layout = crate::setup::files::Layout::beside(config);
        let readable = |p: PathBuf| std::fs::File::open(&p).is_ok().then_some(p);
        if self.ca.is_none() {
            self.ca = readable(layout.ca_cert());
        }
        if let (None, None, Some(c), Some(k)) = (
            &self.cert,
            &self.key,
            readable(layout.admin_cert()),
            readable(layout.admin_key()),
        ) {
            self.cert = Some(c);
            self.key = Some(k);
        }
        self
    }
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// The SSPR policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// One user.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Copy contact info from directory attributes into registrations of users in scope.
    Prefill {
        /// Replace contacts users already have.
        #[arg(long)]
        overwrite: bool,
        /// Count what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Setup status: rollout, methods, registration coverage, exposure, readiness, and
    /// what to do next.
    Status,
    /// Registration coverage and event counts.
    Report {
        /// Unix time (seconds) the event counts start at.
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// Unix time they end at (0: now).
        #[arg(long, default_value_t = 0)]
        until: i64,
    },
    /// Query the audit log (oldest first).
    Audit {
        #[arg(long, default_value_t = 0)]
        since: i64,
        #[arg(long, default_value_t = 0)]
        until: i64,
        /// Exact login name.
        #[arg(long, default_value = "")]
        user: String,
        /// Event kind, or a prefix with `*` (e.g. `admin.*`).
        #[arg(long, default_value = "")]
        kind: String,
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Show the policy in force.
    Get,
    /// Change settings: `KEY=VALUE …` applied to the current policy and written if nobody
    /// changed it meanwhile. Lists take `;`-separated values (`scope_groups=cn=a,dc=x;cn=b,dc=x`),
    /// methods by name (`reset_methods=email;security_questions`).
    Set {
        #[arg(required = true)]
        settings: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Scope, admin status, registration, block and lock state.
    Show { username: String },
    /// Set a contact: email, mobile, office or alternate-email.
    SetContact {
        username: String,
        kind: String,
        value: String,
    },
    /// Clear a contact: email, mobile, office or alternate-email.
    ClearContact { username: String, kind: String },
    /// Remove registered methods (all when none is named); the user registers again.
    Revoke {
        username: String,
        methods: Vec<String>,
    },
    /// Set a new password (generated unless --password-file) requiring a change at next
    /// sign-in. A generated password is printed once.
    ResetPassword {
        username: String,
        /// Read the new password from this file (first line) instead of generating one.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Do not require a change at next sign-in.
        #[arg(long)]
        no_change_required: bool,
        /// Also clear the directory lockout.
        #[arg(long)]
        unlock: bool,
        /// Email instructions (never the password) to the user's alternate email.
        #[arg(long)]
        notify_alternate_email: bool,
    },
    /// Clear the directory lockout.
    Unlock { username: String },
    /// Lift a block from self-service.
    ClearBlock { username: String },
}

const EX_USAGE: u8 = 64;
const EX_DATAERR: u8 = 65;
const EX_NOINPUT: u8 = 66;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;
const EX_TEMPFAIL: u8 = 75;
const EX_NOPERM: u8 = 77;

/// A failure with its exit code.
struct Failure(u8, String);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code as C;
        let code = match s.code() {
            C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => EX_DATAERR,
            C::NotFound => EX_NOINPUT,
            C::Unavailable | C::DeadlineExceeded | C::ResourceExhausted => EX_UNAVAILABLE,
            C::Aborted => EX_TEMPFAIL,
            C::Unauthenticated | C::PermissionDenied => EX_NOPERM,
            _ => EX_SOFTWARE,
        };
        let reason = tonic_types::StatusExt::get_details_error_info(&s)
            .map(|i| format!(" [{}]", i.reason))
            .unwrap_or_default();
        let mut msg = format!("{:?}{reason}: {}", s.code(), s.message());
        if let Some(br) = tonic_types::StatusExt::get_details_bad_request(&s) {
            for v in br.field_violations {
                msg.push_str(&format!("\n  {}: {}", v.field, v.description));
            }
        }
        Failure(code, msg)
    }
}

async fn connect(c: &Connection) -> Result<AdminServiceClient<Channel>, Failure> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| Failure(EX_USAGE, format!("{}: {e}", p.display())))
    };
    let uri: tonic::transport::Uri = c
        .server
        .parse()
        .map_err(|e| Failure(EX_USAGE, format!("--server {:?}: {e}", c.server)))?;
    let host = c
        .tls_name
        .clone()
        .or_else(|| uri.host().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let mut tls = ClientTlsConfig::new().domain_name(host);
    tls = match &c.ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => {
            return Err(Failure(
                EX_USAGE,
                "--ca (or SSPRD_ADMIN_CA) is required: the CA certificate that signed the daemon's"
                    .into(),
            ));
        }
    };
    match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(Failure(EX_USAGE, "--cert and --key go together".into()));
        }
    }
    let channel = Channel::builder(uri)
        .tls_config(tls)
        .map_err(|e| Failure(EX_USAGE, format!("TLS settings: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| {
            Failure(
                EX_UNAVAILABLE,
                format!("cannot connect to {}: {e} ({})", c.server, source_chain(&e)),
            )
        })?;
    Ok(AdminServiceClient::new(channel))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}

/// Runs one admin command; prints its result; returns the exit code.
pub fn run(conn: Connection, command: AdminCommand) -> ExitCode {
    crate::tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(execute(&conn, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            eprintln!("ssprd admin: {msg}");
            ExitCode::from(code)
        }
    }
}

async fn execute(conn: &Connection, command: AdminCommand) -> Result<(), Failure> {
    let mut client = connect(conn).await?;
    let json = conn.json;
    match command {
        AdminCommand::Policy { command } => match command {
            PolicyCommand::Get => {
                let p = client
                    .get_policy(pb::GetPolicyRequest {})
                    .await?
                    .into_inner();
                print_policy(&p, json);
            }
            PolicyCommand::Set { settings } => {
                let current = client
                    .get_policy(pb::GetPolicyRequest {})
                    .await?
                    .into_inner();
                let version = current.version;
                let mut p = current;
                for s in &settings {
                    apply_setting(&mut p, s).map_err(|e| Failure(EX_USAGE, e))?;
                }
                let applied = client
                    .update_policy(pb::UpdatePolicyRequest {
                        policy: Some(p),
                        expected_version: version,
                    })
                    .await?
                    .into_inner();
                print_policy(&applied, json);
            }
        },
        AdminCommand::User { command } => user(&mut client, command, json).await?,
        AdminCommand::Prefill { overwrite, dry_run } => {
            let mut stream = client
                .prefill(pb::PrefillRequest { overwrite, dry_run })
                .await?
                .into_inner();
            let tty = std::io::stderr().is_terminal() && !json;
            let mut last = pb::PrefillProgress::default();
            while let Some(p) = stream.message().await? {
                progress_bar(&p, tty);
                last = p;
            }
            if tty {
                eprintln!();
            }
            if json {
                println!(
                    "{}",
                    json!({"processed": last.processed, "total": last.total,
                        "updated": last.updated, "skipped": last.skipped,
                        "dry_run": dry_run, "done": last.done})
                );
            } else {
                table(&[
                    ("users", last.total.to_string()),
                    (
                        if dry_run { "would update" } else { "updated" },
                        last.updated.to_string(),
                    ),
                    ("skipped", last.skipped.to_string()),
                ]);
            }
        }
        AdminCommand::Status => {
            let st = client
                .get_setup_status(pb::GetSetupStatusRequest {})
                .await?
                .into_inner();
            print_status(&st, json);
        }
        AdminCommand::Report { since, until } => {
            let r = client
                .get_report(pb::GetReportRequest { since, until })
                .await?
                .into_inner();
            print_report(&r, json);
        }
        AdminCommand::Audit {
            since,
            until,
            user,
            kind,
            limit,
        } => {
            let mut stream = client
                .query_audit(pb::QueryAuditRequest {
                    since,
                    until,
                    username: user,
                    kind,
                    limit,
                })
                .await?
                .into_inner();
            let mut rows = Vec::new();
            while let Some(e) = stream.message().await? {
                if json {
                    println!(
                        "{}",
                        json!({"seq": e.seq, "at": e.at, "kind": e.kind, "user": e.username,
                            "outcome": e.outcome, "reason": e.reason, "actor": e.actor})
                    );
                } else {
                    rows.push(vec![
                        e.seq.to_string(),
                        when(e.at),
                        e.kind,
                        e.username,
                        e.outcome,
                        e.reason,
                        e.actor,
                    ]);
                }
            }
            if !json {
                columns(
                    &["SEQ", "AT", "KIND", "USER", "OUTCOME", "REASON", "ACTOR"],
                    &rows,
                );
            }
        }
    }
    Ok(())
}

async fn user(
    client: &mut AdminServiceClient<Channel>,
    command: UserCommand,
    json: bool,
) -> Result<(), Failure> {
    let contact_kind = |k: &str| match k {
        "email" => Ok(pb::AdminContactKind::Email),
        "mobile" => Ok(pb::AdminContactKind::MobilePhone),
        "office" => Ok(pb::AdminContactKind::OfficePhone),
        "alternate-email" => Ok(pb::AdminContactKind::AlternateEmail),
        other => Err(Failure(
            EX_USAGE,
            format!("{other:?}: kind is email, mobile, office or alternate-email"),
        )),
    };
    let u = match command {
        UserCommand::Show { username } => client.get_user(pb::GetUserRequest { username }).await?,
        UserCommand::SetContact {
            username,
            kind,
            value,
        } => {
            client
                .set_contact(pb::SetContactRequest {
                    username,
                    kind: contact_kind(&kind)? as i32,
                    value,
                })
                .await?
        }
        UserCommand::ClearContact { username, kind } => {
            client
                .set_contact(pb::SetContactRequest {
                    username,
                    kind: contact_kind(&kind)? as i32,
                    value: String::new(),
                })
                .await?
        }
        UserCommand::Revoke { username, methods } => {
            let methods = methods
                .iter()
                .map(|m| method_by_name(m).map(|m| m as i32))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure(EX_USAGE, e))?;
            client
                .revoke_methods(pb::RevokeMethodsRequest { username, methods })
                .await?
        }
        UserCommand::ClearBlock { username } => {
            client
                .clear_block(pb::ClearBlockRequest { username })
                .await?
        }
        UserCommand::Unlock { username } => {
            client
                .unlock_user(pb::UnlockUserRequest {
                    username: username.clone(),
                })
                .await?;
            if json {
                println!("{}", json!({"username": username, "unlocked": true}));
            } else {
                println!("{username}: unlocked");
            }
            return Ok(());
        }
        UserCommand::ResetPassword {
            username,
            password_file,
            no_change_required,
            unlock,
            notify_alternate_email,
        } => {
            let new_password = match password_file {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| Failure(EX_USAGE, format!("{}: {e}", p.display())))?;
                    text.lines().next().unwrap_or_default().to_string()
                }
                None => String::new(),
            };
            let r = client
                .reset_user_password(pb::ResetUserPasswordRequest {
                    username: username.clone(),
                    new_password,
                    no_change_required,
                    unlock,
                    notify_alternate_email,
                })
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    json!({"username": username, "generated_password": r.generated_password,
                        "must_change": r.must_change, "unlocked": r.unlocked,
                        "instructions_queued": r.instructions_queued})
                );
            } else {
                let mut rows = vec![
                    ("user", username),
                    ("must change at next sign-in", yes(r.must_change)),
                    ("unlocked", yes(r.unlocked)),
                    ("instructions emailed", yes(r.instructions_queued)),
                ];
                if !r.generated_password.is_empty() {
                    rows.push(("new password (shown once)", r.generated_password));
                }
                table(&rows);
            }
            return Ok(());
        }
    };
    print_user(&u.into_inner(), json);
    Ok(())
}

/// A Unix time as RFC 3339 UTC (for tables; JSON keeps the number).
fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn method_name(v: i32) -> String {
    pb::Method::try_from(v)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("METHOD_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| v.to_string())
}

fn method_by_name(name: &str) -> Result<pb::Method, String> {
    pb::Method::from_str_name(&format!("METHOD_{}", name.to_ascii_uppercase()))
        .filter(|m| *m != pb::Method::Unspecified)
        .ok_or_else(|| format!("{name:?} is not a method"))
}

fn methods(v: &[i32]) -> Vec<String> {
    v.iter().map(|m| method_name(*m)).collect()
}

fn enum_name(s: &str, prefix: &str) -> String {
    s.trim_start_matches(prefix).to_ascii_lowercase()
}

fn policy_json(p: &pb::Policy) -> Value {
    json!({
        "version": p.version,
        "scope": enum_name(pb::Scope::try_from(p.scope).unwrap_or_default().as_str_name(), "SCOPE_"),
        "scope_groups": p.scope_groups,
        "methods_required": p.methods_required,
        "reset_methods": methods(&p.reset_methods),
        "unified_methods": methods(&p.unified_methods),
        "migration": enum_name(pb::MigrationState::try_from(p.migration).unwrap_or_default().as_str_name(), "MIGRATION_STATE_"),
        "effective_methods": methods(&p.effective_methods),
        "questions_to_register": p.questions_to_register,
        "questions_to_answer": p.questions_to_answer,
        "questions_not_only_method": p.questions_not_only_method,
        "sms_alone_not_allowed": p.sms_alone_not_allowed,
        "admin_policy": p.admin_policy,
        "admin_groups": p.admin_groups,
        "admin_count_is_admin": p.admin_count_is_admin,
        "require_registration": p.require_registration,
        "reconfirm_days": p.reconfirm_days,
        "notify_users": p.notify_users,
        "notify_admins": p.notify_admins,
        "admin_notify_emails": p.admin_notify_emails,
        "updated_at": p.updated_at,
        "updated_by": p.updated_by,
    })
}

fn print_policy(p: &pb::Policy, json: bool) {
    let v = policy_json(p);
    if json {
        println!("{v}");
        return;
    }
    let rows: Vec<(&str, String)> = v
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("; "),
                Value::String(s) => s.clone(),
                Value::Number(n) if k == "updated_at" => {
                    n.as_i64().map_or_else(|| n.to_string(), when)
                }
                other => other.to_string(),
            };
            (k.as_str(), text)
        })
        .collect();
    table(&rows);
}

/// Applies one `KEY=VALUE` to a policy.
fn apply_setting(p: &mut pb::Policy, setting: &str) -> Result<(), String> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("{setting:?}: expected KEY=VALUE"))?;
    let list = || -> Vec<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let boolean = || match value {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}: {value:?} is not true or false")),
    };
    let number = || {
        value
            .parse::<u32>()
            .map_err(|_| format!("{key}: {value:?} is not a number"))
    };
    let method_list = || -> Result<Vec<i32>, String> {
        list()
            .iter()
            .map(|m| method_by_name(m).map(|m| m as i32))
            .collect()
    };
    match key {
        "scope" => {
            p.scope = pb::Scope::from_str_name(&format!("SCOPE_{}", value.to_ascii_uppercase()))
                .filter(|s| *s != pb::Scope::Unspecified)
                .ok_or_else(|| format!("scope: {value:?} is none, selected or all"))?
                as i32
        }
        "migration" => {
            p.migration = pb::MigrationState::from_str_name(&format!(
                "MIGRATION_STATE_{}",
                value.to_ascii_uppercase()
            ))
            .filter(|s| *s != pb::MigrationState::Unspecified)
            .ok_or_else(|| {
                format!("migration: {value:?} is pre_migration, in_progress or complete")
            })? as i32
        }
        "scope_groups" => p.scope_groups = list(),
        "admin_groups" => p.admin_groups = list(),
        "admin_notify_emails" => p.admin_notify_emails = list(),
        "reset_methods" => p.reset_methods = method_list()?,
        "unified_methods" => p.unified_methods = method_list()?,
        "methods_required" => p.methods_required = number()?,
        "questions_to_register" => p.questions_to_register = number()?,
        "questions_to_answer" => p.questions_to_answer = number()?,
        "reconfirm_days" => p.reconfirm_days = number()?,
        "questions_not_only_method" => p.questions_not_only_method = boolean()?,
        "sms_alone_not_allowed" => p.sms_alone_not_allowed = boolean()?,
        "admin_policy" => p.admin_policy = boolean()?,
        "admin_count_is_admin" => p.admin_count_is_admin = boolean()?,
        "require_registration" => p.require_registration = boolean()?,
        "notify_users" => p.notify_users = boolean()?,
        "notify_admins" => p.notify_admins = boolean()?,
        other => return Err(format!("{other:?} is not a policy setting")),
    }
    Ok(())
}

fn print_user(u: &pb::User, json: bool) {
    let reg = u.registration.clone().unwrap_or_default();
    let contacts: Vec<String> = reg
        .contacts
        .iter()
        .map(|c| {
            let kind = pb::ContactKind::try_from(c.kind)
                .map(|k| enum_name(k.as_str_name(), "CONTACT_KIND_"))
                .unwrap_or_default();
            format!("{kind} {}", c.hint)
        })
        .collect();
    if json {
        println!(
            "{}",
            json!({
                "username": u.username, "display_name": u.display_name,
                "in_scope": u.in_scope, "admin": u.admin,
                "registration_complete": reg.complete,
                "registration_required": reg.registration_required,
                "reconfirm_due": reg.reconfirm_due,
                "methods_required": reg.methods_required,
                "registered_methods": methods(&reg.registered_methods),
                "enabled_methods": methods(&reg.enabled_methods),
                "contacts": contacts,
                "security_questions": reg.security_question_ids,
                "alternate_email": u.alternate_email,
                "reconfirmed_at": reg.reconfirmed_at,
                "blocked_until": u.blocked_until,
                "recent_failures": u.recent_failures,
                "directory_locked": u.directory_locked,
                "directory_disabled": u.directory_disabled,
                "sign_in_blocked_until": u.sign_in_blocked_until,
                "sign_in_failures": u.sign_in_failures,
                "language": u.language,
            })
        );
        return;
    }
    table(&[
        ("user", u.username.clone()),
        ("display name", u.display_name.clone()),
        ("in scope", yes(u.in_scope)),
        ("administrator", yes(u.admin)),
        ("registration complete", yes(reg.complete)),
        (
            "methods",
            format!(
                "{} (needs {})",
                if reg.registered_methods.is_empty() {
                    "none".to_string()
                } else {
                    methods(&reg.registered_methods).join(", ")
                },
                reg.methods_required
            ),
        ),
        ("contacts", contacts.join(", ")),
        (
            "security questions",
            reg.security_question_ids.len().to_string(),
        ),
        ("alternate email", u.alternate_email.clone()),
        ("re-confirmation due", yes(reg.reconfirm_due)),
        (
            "blocked from SSPR until",
            if u.blocked_until == 0 {
                "not blocked".into()
            } else {
                when(u.blocked_until)
            },
        ),
        ("recent failures", u.recent_failures.to_string()),
        ("directory locked", yes(u.directory_locked)),
        ("directory disabled", yes(u.directory_disabled)),
        (
            "sign-in blocked until",
            if u.sign_in_blocked_until == 0 {
                "not blocked".into()
            } else {
                when(u.sign_in_blocked_until)
            },
        ),
        ("failed sign-ins", u.sign_in_failures.to_string()),
        (
            "language of messages",
            if u.language.is_empty() {
                "not chosen (the default)".into()
            } else {
                u.language.clone()
            },
        ),
    ]);
}

fn print_status(st: &pb::SetupStatus, json: bool) {
    let scope = enum_name(
        pb::Scope::try_from(st.scope)
            .unwrap_or_default()
            .as_str_name(),
        "SCOPE_",
    );
    if json {
        let methods: Vec<Value> = st
            .methods
            .iter()
            .map(|m| {
                json!({
                    "method": method_name(m.method), "enabled": m.enabled,
                    "missing_configuration": m.missing_configuration,
                    "registered_users": m.registered_users,
                })
            })
            .collect();
        let checks: serde_json::Map<String, Value> = st
            .checks
            .iter()
            .map(|c| (c.name.clone(), json!({"ok": c.ok, "detail": c.detail})))
            .collect();
        println!(
            "{}",
            json!({
                "scope": scope, "scope_groups": st.scope_groups,
                "methods_required": st.methods_required, "methods": methods,
                "registered_users": st.registered_users,
                "complete_registrations": st.complete_registrations,
                "require_registration": st.require_registration,
                "mutual_tls": st.mutual_tls, "reflection": st.reflection,
                "metrics_listen": st.metrics_listen,
                "portal_url": st.portal_url, "portal_kiosk": st.portal_kiosk,
                "ready": st.ready, "checks": checks,
                "outbox_backlog": st.outbox_backlog,
                "outbox_oldest_seconds": st.outbox_oldest_seconds,
                "next_steps": st.next_steps,
            })
        );
        return;
    }
    let rollout = match pb::Scope::try_from(st.scope).unwrap_or_default() {
        pb::Scope::None => "not started (enabled for nobody)".to_string(),
        pb::Scope::Selected => format!("selected groups: {}", st.scope_groups.join("; ")),
        pb::Scope::All => "enabled for all users".to_string(),
        pb::Scope::Unspecified => scope,
    };
    let method_rows: Vec<(String, String)> = st
        .methods
        .iter()
        .map(|m| {
            let state = match (m.enabled, m.missing_configuration.as_str()) {
                (false, _) => "off".to_string(),
                (true, "") => format!("on, {} registered users", m.registered_users),
                (true, missing) => format!("on, NOT DELIVERABLE: no {missing} configured"),
            };
            (format!("  {}", method_name(m.method)), state)
        })
        .collect();
    let check_rows: Vec<(String, String)> = st
        .checks
        .iter()
        .map(|c| {
            let v = if c.ok {
                "ok".to_string()
            } else {
                c.detail.clone()
            };
            (format!("  {}", c.name), v)
        })
        .collect();
    let mut rows = vec![
        ("self-service password reset", rollout),
        ("methods required", st.methods_required.to_string()),
        ("methods", String::new()),
    ];
    rows.extend(method_rows.iter().map(|(k, v)| (k.as_str(), v.clone())));
    rows.extend([
        (
            "registrations",
            format!(
                "{} users, {} complete",
                st.registered_users, st.complete_registrations
            ),
        ),
        ("registration required", yes(st.require_registration)),
        ("client certificates (mTLS)", yes(st.mutual_tls)),
        ("gRPC reflection", yes(st.reflection)),
        (
            "metrics listener",
            if st.metrics_listen.is_empty() {
                "off".to_string()
            } else {
                st.metrics_listen.clone()
            },
        ),
        (
            "web portal",
            match (st.portal_url.as_str(), st.portal_kiosk) {
                ("", _) => "off".to_string(),
                (url, false) => url.to_string(),
                (url, true) => format!("{url} (kiosk)"),
            },
        ),
        ("ready", yes(st.ready)),
    ]);
    rows.extend(check_rows.iter().map(|(k, v)| (k.as_str(), v.clone())));
    rows.push((
        "outbox",
        format!(
            "{} waiting, oldest {} s",
            st.outbox_backlog, st.outbox_oldest_seconds
        ),
    ));
    table(&rows);
    println!();
    if st.next_steps.is_empty() {
        println!("Next steps: none — self-service is set up, rolled out and ready.");
    } else {
        println!("Next steps:");
        for (i, step) in st.next_steps.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
    }
}

fn print_report(r: &pb::Report, json: bool) {
    if json {
        let coverage: serde_json::Map<String, Value> = r
            .coverage
            .iter()
            .map(|c| (method_name(c.method), json!(c.users)))
            .collect();
        println!(
            "{}",
            json!({
                "registered_users": r.registered_users,
                "complete_registrations": r.complete_registrations,
                "coverage": coverage,
                "resets": r.resets, "unlocks": r.unlocks, "admin_resets": r.admin_resets,
                "blocks": r.blocks, "failed_verifications": r.failed_verifications,
                "blocked_users": r.blocked_users,
            })
        );
        return;
    }
    let mut rows = vec![
        ("registered users", r.registered_users.to_string()),
        (
            "complete registrations",
            r.complete_registrations.to_string(),
        ),
    ];
    let coverage: Vec<(String, String)> = r
        .coverage
        .iter()
        .map(|c| (format!("  {}", method_name(c.method)), c.users.to_string()))
        .collect();
    rows.extend(coverage.iter().map(|(k, v)| (k.as_str(), v.clone())));
    rows.extend([
        ("self-service resets", r.resets.to_string()),
        ("unlocks", r.unlocks.to_string()),
        ("admin resets", r.admin_resets.to_string()),
        ("SSPR blocks", r.blocks.to_string()),
        ("failed verifications", r.failed_verifications.to_string()),
        ("blocked now", r.blocked_users.join(", ")),
    ]);
    table(&rows);
}

/// Two aligned columns.
fn table(rows: &[(&str, String)]) {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<w$}  {v}");
    }
}

/// A table with a header row.
fn columns(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// A progress bar on a terminal; otherwise one line per update.
fn progress_bar(p: &pb::PrefillProgress, tty: bool) {
    let mut err = std::io::stderr().lock();
    let pct = (p.processed * 100).checked_div(p.total).unwrap_or(100);
    if tty {
        let filled = (pct / 4) as usize;
        let _ = write!(
            err,
            "\r[{}{}] {:>3}% {}/{} updated {} skipped {}",
            "#".repeat(filled),
            ".".repeat(25 - filled),
            pct,
            p.processed,
            p.total,
            p.updated,
            p.skipped
        );
        let _ = err.flush();
    } else {
        let _ = writeln!(
            err,
            "prefill: {}/{} ({pct}%) updated {} skipped {}",
            p.processed, p.total, p.updated, p.skipped
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(when(0), "1970-01-01T00:00:00Z");
        assert_eq!(when(1_767_225_600), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn settings_apply_to_a_policy() {
        let mut p = pb::Policy::default();
        apply_setting(&mut p, "scope=selected").unwrap();
        apply_setting(&mut p, "scope_groups=cn=a,dc=x; cn=b,dc=x").unwrap();
        apply_setting(&mut p, "reset_methods=email;security_questions").unwrap();
        apply_setting(&mut p, "migration=in_progress").unwrap();
        apply_setting(&mut p, "admin_policy=false").unwrap();
        apply_setting(&mut p, "reconfirm_days=30").unwrap();
        assert_eq!(p.scope, pb::Scope::Selected as i32);
        assert_eq!(p.scope_groups, ["cn=a,dc=x", "cn=b,dc=x"]);
        assert_eq!(
            p.reset_methods,
            [
                pb::Method::Email as i32,
                pb::Method::SecurityQuestions as i32
            ]
        );
        assert_eq!(p.migration, pb::MigrationState::InProgress as i32);
        assert!(!p.admin_policy);
        assert_eq!(p.reconfirm_days, 30);
        for bad in [
            "scope=some",
            "nosuch=1",
            "reset_methods=carrier_pigeon",
            "admin_policy=maybe",
            "novalue",
        ] {
            assert!(apply_setting(&mut p, bad).is_err(), "{bad}");
        }
    }
}
