//! Configuration: built-in defaults < TOML file < `SSPRD_*` environment (`__` nests).
//!
//! [`load`] merges the layers into a [`RawConfig`] (plain data, `deny_unknown_fields`);
//! [`RawConfig::validate`] checks every value, names the bad key and why, reads the secret
//! files, and returns a [`Config`] the rest of the daemon can trust.
//!
//! Secrets (directory bind password, TLS private key) are never written in the config itself:
//! a [`SecretSource`] names a file, or a systemd credential resolved in
//! `$CREDENTIALS_DIRECTORY` (`LoadCredential=` in the unit).

use crate::api::auth::{Access, ClientRule, Matcher, Role};
use crate::method::Method;
use crate::policy::{
    CodePolicy, MethodPolicy, Migration, PolicyContext, QuestionBank, ResetPolicy, Scope,
    SsprPolicy,
};
use crate::secret::Secret;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ssprd/ssprd.toml";

/// Where a secret comes from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// A file holding the secret (trailing newline stripped).
    File(PathBuf),
    /// A systemd credential name, read from `$CREDENTIALS_DIRECTORY/<name>`.
    Credential(String),
}

impl SecretSource {
    fn path(&self) -> Result<PathBuf, String> {
        match self {
            SecretSource::File(p) => Ok(p.clone()),
            SecretSource::Credential(name) => {
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err(format!("credential name {name:?} is not a plain file name"));
                }
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!(
                        "credential {name:?} requested but $CREDENTIALS_DIRECTORY is not set \
                         (use LoadCredential= in the systemd unit, or {{ file = \"...\" }})"
                    )
                })?;
                Ok(Path::new(&dir).join(name))
            }
        }
    }

    /// Reads the secret. World-readable files produce a warning.
    pub fn read(&self) -> Result<Secret, String> {
        let path = self.path()?;
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        warn_if_world_readable(&path);
        let mut text = String::from_utf8(bytes)
            .map_err(|_| format!("secret file {} is not UTF-8", path.display()))?;
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        Ok(Secret::new(text))
    }
}

fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is world-readable; chmod o-r it");
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The directory flavour, which decides how passwords are written and errors decoded.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    Openldap,
    ActiveDirectory,
}

/// How OpenLDAP passwords are written.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OpenldapPasswordWrite {
    /// RFC 3062 Password Modify extended operation (ppolicy checks the cleartext).
    Exop,
    /// Replace `userPassword` with an `{ARGON2}` hash computed by ssprd (servers without the exop).
    HashedArgon2,
    /// Replace `userPassword` with an `{SSHA}` hash computed by ssprd.
    HashedSsha,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub tls_cert_file: PathBuf,
    /// Default: the systemd credential `tls-key`.
    pub tls_key: Option<SecretSource>,
    /// CA whose client certificates are trusted (mutual TLS). Certificates are mapped to
    /// roles by `[[clients]]`; a certificate from another CA is refused at the handshake.
    pub client_ca_file: Option<PathBuf>,
    /// Role of clients that present no certificate: "none", "kiosk" or "portal".
    /// Default: "portal" without `client_ca_file`, "none" with it.
    pub anonymous_role: Option<Role>,
    pub reflection: bool,
    pub request_timeout_ms: u64,
    pub max_request_bytes: usize,
    pub max_concurrent_streams: u32,
    /// Requests one client (certificate, else IP address) may make per minute; 0 = no limit.
    pub per_client_requests_per_minute: u32,
    /// StartReset and SendCode answer no sooner than this many milliseconds after the request
    /// (0 = off): real and decoy flows then take the same time from outside.
    pub uniform_response_ms: u64,
    pub watchdog: bool,
    /// Open client connections at most; when full, the connection idle the longest is
    /// closed to make room. Kept below the open-file limit (`LimitNOFILE`), lowered with a
    /// warning when that is too small.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most.
    pub max_connections_per_address: usize,
    /// A client that has not finished its TLS handshake by then is disconnected.
    pub tls_handshake_timeout_ms: u64,
    /// A connection without a call for this long is closed (clients reconnect on their next
    /// call).
    pub idle_timeout_secs: u64,
    /// HTTP/2 keepalive pings on idle connections, to find dead peers.
    pub keepalive_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:50051".into(),
            tls_cert_file: "/etc/ssprd/tls/server.crt".into(),
            tls_key: None,
            client_ca_file: None,
            anonymous_role: None,
            reflection: true,
            request_timeout_ms: 5_000,
            max_request_bytes: 64 * 1024,
            max_concurrent_streams: 64,
            per_client_requests_per_minute: 600,
            uniform_response_ms: 400,
            watchdog: true,
            max_connections: 512,
            max_connections_per_address: 64,
            tls_handshake_timeout_ms: 10_000,
            idle_timeout_secs: 300,
            keepalive_secs: 30,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub path: PathBuf,
    pub sweep_interval_secs: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            path: "/var/lib/ssprd/db".into(),
            sweep_interval_secs: 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDirectory {
    pub flavour: Flavour,
    /// Tried in order; the next one is used when a server cannot be reached.
    pub uris: Vec<String>,
    /// CA bundle (PEM) trusted for the directory's certificate. Empty: the system roots.
    pub ca_file: Option<PathBuf>,
    /// Upgrade `ldap://` URIs with StartTLS.
    pub starttls: bool,
    /// Allow plain `ldap://` without TLS for lookups (never for password writes or binds as users).
    pub allow_insecure: bool,
    pub bind_dn: String,
    /// Default: the systemd credential `ldap-bind-password`.
    pub bind_password: Option<SecretSource>,
    pub base_dn: String,
    /// OpenLDAP: where groups are searched for nested membership (default: base_dn).
    pub group_base_dn: String,
    /// Extra filter ANDed into the user search, e.g. `(objectClass=inetOrgPerson)`.
    pub user_filter: String,
    /// Attribute users type as their login name (`uid`, `sAMAccountName`, `mail`...).
    pub login_attribute: String,
    pub timeout_ms: u64,
    /// After a write, bind as the user with the new password to prove it works.
    pub verify_after_write: bool,
    /// Require a change at next sign-in after a self-service reset (`pwdReset` / `pwdLastSet=0`).
    pub require_change_after_reset: bool,
    pub openldap_password_write: OpenldapPasswordWrite,
    /// AD: send the LDAP_SERVER_POLICY_HINTS control so history applies to resets.
    /// Samba 4.17 does not support it.
    pub ad_policy_hints: bool,
    /// OpenLDAP: the default ppolicy entry (the overlay's olcPPolicyDefault), read to tell
    /// clients the directory's rules; users with pwdPolicySubentry use theirs.
    pub ppolicy_dn: String,
}

impl Default for RawDirectory {
    fn default() -> Self {
        Self {
            flavour: Flavour::Openldap,
            uris: vec!["ldaps://localhost:636".into()],
            ca_file: None,
            starttls: false,
            allow_insecure: false,
            bind_dn: String::new(),
            bind_password: None,
            base_dn: String::new(),
            group_base_dn: String::new(),
            user_filter: String::new(),
            login_attribute: String::new(),
            timeout_ms: 3_000,
            verify_after_write: true,
            require_change_after_reset: false,
            openldap_password_write: OpenldapPasswordWrite::Exop,
            ad_policy_hints: false,
            ppolicy_dn: String::new(),
        }
    }
}

/// How ssprd talks TLS to the SMTP server (always TLS).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server lacks it.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEmail {
    /// SMTP server; empty = email disabled.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// CA bundle (PEM) for the SMTP server's certificate, added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user; empty = no authentication.
    pub username: String,
    pub password: Option<SecretSource>,
    /// Sender, e.g. `"Example IT <no-reply@example.org>"`.
    pub from: String,
    /// Shown in messages.
    pub organization: String,
    /// Directory with `<template>.{subject,txt,html}` overrides (reset_code, confirm_contact,
    /// method_changed, account_recovered).
    pub templates_dir: Option<PathBuf>,
    pub timeout_ms: u64,
}

impl Default for RawEmail {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: String::new(),
            password: None,
            from: String::new(),
            organization: "ssprd".into(),
            templates_dir: None,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    /// HTTPS endpoint receiving SMS and voice messages; empty = disabled.
    pub url: String,
    /// CA bundle (PEM) for the endpoint, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// HMAC-SHA256 key signing every request. Default: the systemd credential
    /// `gateway-secret`.
    pub secret: Option<SecretSource>,
    pub timeout_ms: u64,
    /// Retries after a network error, HTTP 429 or 5xx (exponential backoff from 200 ms).
    pub retries: u32,
}

impl Default for RawGateway {
    fn default() -> Self {
        Self {
            url: String::new(),
            ca_file: None,
            secret: None,
            timeout_ms: 5_000,
            retries: 2,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuthenticator {
    /// Issuer shown in the authenticator app.
    pub issuer: String,
    /// Key sealing TOTP secrets at rest (32 bytes, hex or base64). Default: the systemd
    /// credential `totp-key`. Keep it outside the database and back it up separately.
    pub key: Option<SecretSource>,
}

impl Default for RawAuthenticator {
    fn default() -> Self {
        Self {
            issuer: "ssprd".into(),
            key: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCodes {
    /// Digits of emailed / SMS / voice codes (6-10).
    pub length: u32,
    /// Minutes a code stays valid (1-10).
    pub lifetime_minutes: u64,
    /// Wrong tries before a code is invalidated (1-10).
    pub max_tries: u32,
    /// Codes one flow may send (resends included).
    pub max_sends_per_flow: u32,
    /// Codes one account may be sent within `account_window_minutes` before self-service is
    /// blocked for `policy.block_hours` (Entra: 10 in 10 minutes).
    pub max_sends_per_account: u32,
    pub account_window_minutes: u64,
}

impl Default for RawCodes {
    fn default() -> Self {
        Self {
            length: 8,
            lifetime_minutes: 5,
            max_tries: 5,
            max_sends_per_flow: 5,
            max_sends_per_account: 10,
            account_window_minutes: 10,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawCustomQuestion {
    pub id: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuestions {
    pub register_count: u32,
    pub reset_count: u32,
    /// Offer the built-in bank (custom questions are always offered).
    pub use_predefined: bool,
    pub custom: Vec<RawCustomQuestion>,
    /// Concurrent argon2 hashes (each ~19 MiB); 0 = number of CPUs.
    pub max_concurrent_hashes: usize,
}

impl Default for RawQuestions {
    fn default() -> Self {
        Self {
            register_count: 3,
            reset_count: 3,
            use_predefined: true,
            custom: Vec::new(),
            max_concurrent_hashes: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    /// Who may use SSPR: "none", "selected" (members of `scope_groups`, nested membership
    /// counts) or "all".
    pub scope: Scope,
    /// Group DNs for scope "selected".
    pub scope_groups: Vec<String>,
    /// The SSPR policy's methods: security_questions, email, mobile_sms, mobile_voice,
    /// office_voice, authenticator_code (governs reset before and during migration).
    pub enabled_methods: Vec<String>,
    /// The unified authentication methods policy's enabled methods.
    pub unified_methods: Vec<String>,
    /// "pre_migration" (enabled_methods count), "in_progress" (either list counts) or
    /// "complete" (unified_methods only).
    pub migration: Migration,
    /// Administrators need two methods and may not use security questions.
    pub admin_policy: bool,
    /// Members (nested) of these groups are administrators.
    pub admin_groups: Vec<String>,
    /// AD: `adminCount=1` accounts are administrators.
    pub admin_count_is_admin: bool,
    /// Users in scope must register: portals are told after a login.
    pub require_registration: bool,
    /// Ask users to re-confirm their methods every N days (0-730; 0 = never).
    pub reconfirm_days: u32,
    /// Tell every administrator (`admin_notify_emails`) when an administrator's password
    /// is reset.
    pub notify_admins_on_admin_reset: bool,
    pub admin_notify_emails: Vec<String>,
    /// Distinct methods to prove before a reset (1 or 2).
    pub methods_required: u32,
    /// Security questions never count as the only method proved.
    pub questions_not_only_method: bool,
    /// An SMS code alone is not enough.
    pub sms_alone_not_allowed: bool,
    /// Hours before a method added or changed by an already-registered user can be used
    /// for reset (0-720; 0 = at once). The old channels are told at once.
    pub new_method_cooloff_hours: u64,
    /// Tell users on their confirmed contacts when their password was reset or their
    /// account unlocked through self-service (never with the password).
    pub notify_on_reset: bool,
    pub codes: RawCodes,
    pub reset_session_minutes: u64,
    pub registration_token_minutes: u64,
    /// Wrong answers allowed within one flow before it is closed.
    pub attempts_per_flow: u32,
    /// Failed verifications per account within `failure_window_hours` that block SSPR.
    pub max_failed_verifications: u32,
    pub failure_window_hours: u64,
    pub block_hours: u64,
    pub security_questions: RawQuestions,
}

impl Default for RawPolicy {
    fn default() -> Self {
        Self {
            scope: Scope::All,
            scope_groups: Vec::new(),
            enabled_methods: vec![
                "security_questions".into(),
                "email".into(),
                "authenticator_code".into(),
            ],
            unified_methods: Vec::new(),
            migration: Migration::PreMigration,
            admin_policy: true,
            admin_groups: Vec::new(),
            admin_count_is_admin: true,
            require_registration: false,
            reconfirm_days: 180,
            notify_admins_on_admin_reset: true,
            admin_notify_emails: Vec::new(),
            methods_required: 1,
            questions_not_only_method: true,
            sms_alone_not_allowed: false,
            new_method_cooloff_hours: 24,
            notify_on_reset: true,
            codes: RawCodes::default(),
            reset_session_minutes: 15,
            registration_token_minutes: 10,
            attempts_per_flow: 3,
            max_failed_verifications: 5,
            failure_window_hours: 24,
            block_hours: 24,
            security_questions: RawQuestions::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPassword {
    /// Local minimum length (the directory's own rules apply on top).
    pub min_length: usize,
    /// Longest password accepted (64-256).
    pub max_length: usize,
    /// Words refused in passwords, matched case- and substitution-insensitively and with one
    /// typo (`p@ssw0rd` matches "password").
    pub banned_terms: Vec<String>,
    /// Refuse the 10,000 most common passwords carried in the binary and the organisation's
    /// names (`[email] organization`, `[authenticator] issuer`), whole or around a short run
    /// of digits and symbols (`Welcome2026!`), with the banned terms' normalisation and one
    /// typo.
    pub common_passwords: bool,
    /// Refuse passwords containing the login name or a part of the display name.
    pub reject_names: bool,
    /// Minimum zxcvbn score (0-4); unset = not checked.
    pub min_strength: Option<u8>,
    /// Sorted SHA-1 breached-password file (HASH:COUNT or PREFIX:SUFFIX:COUNT lines).
    pub breached_file: Option<PathBuf>,
}

impl Default for RawPassword {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            banned_terms: Vec::new(),
            common_passwords: true,
            reject_names: true,
            min_strength: None,
            breached_file: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    /// Days audit records are kept (0 = forever). Older records are pruned from the start of
    /// the hash chain; the chain stays verifiable from the last pruned record.
    pub retention_days: u64,
    /// Also copy every record to "syslog" or "journald" as it is appended (unset: no).
    pub forward: Option<crate::audit::ForwardKind>,
    /// The socket to send to (default: /dev/log, or journald's /run/systemd/journal/socket).
    pub forward_socket: Option<PathBuf>,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: 365,
            forward: None,
            forward_socket: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `ssprd=debug,info`. `RUST_LOG` wins.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Directory attributes `ssprd admin prefill` copies into users' contacts (empty: skip).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrefill {
    pub email: String,
    pub mobile: String,
    pub office: String,
    /// e.g. AD `otherMailbox`; not set by default.
    pub alternate_email: String,
}

impl Default for RawPrefill {
    fn default() -> Self {
        Self {
            email: "mail".into(),
            mobile: "mobile".into(),
            office: "telephoneNumber".into(),
            alternate_email: String::new(),
        }
    }
}

/// Delivery of notifications from the durable outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutbox {
    /// Longest wait between two delivery attempts (the wait doubles from 1 s; 1-3600).
    pub max_retry_interval_secs: u64,
    /// Undelivered notifications are dropped after this many hours (1-720).
    pub give_up_hours: u64,
}

impl Default for RawOutbox {
    fn default() -> Self {
        Self {
            max_retry_interval_secs: 300,
            give_up_hours: 72,
        }
    }
}

/// The sign-in guard: every check of a user's current password (a bind as the user) stays
/// below the directory's own lockout threshold (see `lockout`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSignIn {
    /// ssprd stops this many failed binds short of the directory's lockout threshold
    /// (ppolicy `pwdMaxFailure`, AD `lockoutThreshold` or the user's fine-grained policy),
    /// read for each sign-in (1-10).
    pub lockout_margin: u32,
    /// Failed sign-ins per account when the directory never locks accounts (1-100).
    pub max_failures: u32,
    /// Shortest block after the failures are used up, in minutes; also how long ssprd counts
    /// a failure when the directory counts them until a successful bind (1-10080).
    pub block_minutes: u64,
}

impl Default for RawSignIn {
    fn default() -> Self {
        Self {
            lockout_margin: 1,
            max_failures: 5,
            block_minutes: 30,
        }
    }
}

/// A client known by its certificate (`[[clients]]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClient {
    /// Name used in audit records and quotas.
    pub name: String,
    /// Recognised by the certificate's subject common name...
    pub common_name: Option<String>,
    /// ...or by a DNS, email or URI subject alternative name.
    pub san: Option<String>,
    /// kiosk, portal, helpdesk or admin.
    pub role: Option<Role>,
    /// This client's own quota (requests per minute); default: the server's per-client limit.
    pub requests_per_minute: Option<u32>,
}

/// The configuration as written, before validation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub store: RawStore,
    pub directory: RawDirectory,
    pub policy: RawPolicy,
    pub email: RawEmail,
    pub gateway: RawGateway,
    pub authenticator: RawAuthenticator,
    pub password: RawPassword,
    pub audit: RawAudit,
    pub log: RawLog,
    pub prefill: RawPrefill,
    pub outbox: RawOutbox,
    pub sign_in: RawSignIn,
    pub clients: Vec<RawClient>,
}

/// An error loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// The configuration's sections (what `SSPRD_<SECTION>__…` may set).
const SECTIONS: &[&str] = &[
    "server",
    "store",
    "directory",
    "policy",
    "email",
    "gateway",
    "authenticator",
    "password",
    "audit",
    "log",
    "prefill",
    "outbox",
    "sign_in",
];

/// Loads defaults < `path` (if it exists, or always when `required`) < `SSPRD_*` environment.
pub fn load(path: &Path, required: bool) -> Result<RawConfig, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
    if path.exists() {
        fig = fig.merge(Toml::file_exact(path));
    } else if required {
        return Err(ConfigError::Parse {
            path: path.display().to_string(),
            message: "file not found".into(),
        });
    }
    // Only `SSPRD_<SECTION>__<KEY>` variables are configuration; others with the prefix
    // (`SSPRD_CONFIG`, `SSPRD_ADMIN_*` for the CLI, a test runner's own) are not.
    fig = fig.merge(
        Env::prefixed("SSPRD_")
            .filter(|k| {
                k.as_str().split_once("__").is_some_and(|(section, _)| {
                    SECTIONS.contains(&section.to_ascii_lowercase().as_str())
                })
            })
            .split("__"),
    );
    fig.extract().map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The `[policy]` key of an [`SsprPolicy`] field.
fn config_key(field: &str) -> &str {
    match field {
        "reset_methods" => "enabled_methods",
        "questions_to_register" => "security_questions.register_count",
        "questions_to_answer" => "security_questions.reset_count",
        "notify_users" => "notify_on_reset",
        "notify_admins" => "notify_admins_on_admin_reset",
        other => other,
    }
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls_cert_pem: Vec<u8>,
    pub tls_key_pem: Secret,
    pub client_ca_pem: Option<Vec<u8>>,
    /// Client certificates → roles, and the role of clients without one.
    pub access: Access,
    pub reflection: bool,
    pub request_timeout: Duration,
    pub max_request_bytes: usize,
    pub max_concurrent_streams: u32,
    pub per_client_requests_per_minute: u32,
    pub uniform_response: Duration,
    pub watchdog: bool,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub tls_handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub keepalive: Duration,
}

/// Validated directory settings.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub flavour: Flavour,
    pub uris: Vec<String>,
    pub ca_pem: Option<Vec<u8>>,
    pub starttls: bool,
    pub allow_insecure: bool,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub base_dn: String,
    pub group_base_dn: String,
    pub user_filter: String,
    pub login_attribute: String,
    pub timeout: Duration,
    pub verify_after_write: bool,
    pub require_change_after_reset: bool,
    pub openldap_password_write: OpenldapPasswordWrite,
    pub ad_policy_hints: bool,
    pub ppolicy_dn: String,
}

/// Validated email settings.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca_pem: Option<Vec<u8>>,
    pub credentials: Option<(String, Secret)>,
    pub from: lettre::message::Mailbox,
    pub organization: String,
    pub templates: crate::delivery::smtp::Templates,
    pub timeout: Duration,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store_path: PathBuf,
    pub sweep_interval: Duration,
    pub directory: DirectoryConfig,
    pub reset: ResetPolicy,
    pub bank: QuestionBank,
    pub max_concurrent_hashes: usize,
    /// Code, cool-off and notification settings (the enabled methods and the number
    /// required come from `sspr` per user).
    pub methods: MethodPolicy,
    /// The administrator's SSPR policy as configured (the stored one wins once set).
    pub sspr: SsprPolicy,
    /// What the daemon can deliver: policy updates are validated against it.
    pub policy_context: PolicyContext,
    pub email: Option<EmailConfig>,
    pub gateway: Option<crate::delivery::gateway::GatewayConfig>,
    /// Issuer and sealing key text for authenticator apps (when enabled).
    pub authenticator: Option<(String, Secret)>,
    /// Audit records older than this are pruned (`None`: kept forever).
    pub audit_retention: Option<Duration>,
    /// Where audit records are copied as they are appended.
    pub audit_forward: Option<(crate::audit::ForwardKind, PathBuf)>,
    pub password: std::sync::Arc<crate::password::PasswordRules>,
    pub prefill: crate::service::admin::PrefillMap,
    pub outbox: crate::service::OutboxPolicy,
    pub sign_in: crate::lockout::SignInPolicy,
    pub log: RawLog,
}

impl RawConfig {
    /// Checks every value and reads the secret files. All problems are reported at once,
    /// each naming its key.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut errs: Vec<String> = Vec::new();
        let mut bad = |key: &str, why: String| errs.push(format!("{key}: {why}"));

        // [server]
        let s = &self.server;
        let listen = s.listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            bad(
                "server.listen",
                format!("{:?} is not an address:port ({e})", s.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let tls_cert_pem = read_pem(&s.tls_cert_file, "CERTIFICATE").unwrap_or_else(|e| {
            bad("server.tls_cert_file", e);
            Vec::new()
        });
        let tls_key_pem = s
            .tls_key
            .clone()
            .unwrap_or_else(|| SecretSource::Credential("tls-key".into()))
            .read()
            .unwrap_or_else(|e| {
                bad("server.tls_key", e);
                Secret::new("")
            });
        if !tls_key_pem.is_empty() && !tls_key_pem.expose().contains("PRIVATE KEY-----") {
            bad("server.tls_key", "does not hold a PEM private key".into());
        }
        let client_ca_pem = s.client_ca_file.as_ref().and_then(|p| {
            read_pem(p, "CERTIFICATE")
                .map_err(|e| bad("server.client_ca_file", e))
                .ok()
        });
        if !(100..=600_000).contains(&s.request_timeout_ms) {
            bad(
                "server.request_timeout_ms",
                format!("{} is outside 100..=600000", s.request_timeout_ms),
            );
        }
        if !(1024..=4 * 1024 * 1024).contains(&s.max_request_bytes) {
            bad(
                "server.max_request_bytes",
                format!("{} is outside 1024..=4194304", s.max_request_bytes),
            );
        }
        if s.max_concurrent_streams == 0 {
            bad("server.max_concurrent_streams", "must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&s.max_connections) {
            bad(
                "server.max_connections",
                format!("{} is outside 1..=1000000", s.max_connections),
            );
        }
        if s.max_connections_per_address == 0 || s.max_connections_per_address > s.max_connections {
            bad(
                "server.max_connections_per_address",
                format!(
                    "{} must be 1..=max_connections ({})",
                    s.max_connections_per_address, s.max_connections
                ),
            );
        }
        if !(100..=120_000).contains(&s.tls_handshake_timeout_ms) {
            bad(
                "server.tls_handshake_timeout_ms",
                format!("{} is outside 100..=120000", s.tls_handshake_timeout_ms),
            );
        }
        if !(1..=86_400).contains(&s.idle_timeout_secs) {
            bad(
                "server.idle_timeout_secs",
                format!("{} is outside 1..=86400", s.idle_timeout_secs),
            );
        }
        if !(1..=3_600).contains(&s.keepalive_secs) {
            bad(
                "server.keepalive_secs",
                format!("{} is outside 1..=3600", s.keepalive_secs),
            );
        }
        if s.uniform_response_ms >= s.request_timeout_ms {
            bad(
                "server.uniform_response_ms",
                format!(
                    "{} must be shorter than server.request_timeout_ms ({})",
                    s.uniform_response_ms, s.request_timeout_ms
                ),
            );
        }
        let anonymous = s.anonymous_role.unwrap_or(if s.client_ca_file.is_some() {
            Role::None
        } else {
            Role::Portal
        });
        if matches!(anonymous, Role::Admin | Role::Helpdesk) {
            bad(
                "server.anonymous_role",
                format!(
                    "{:?}: clients without a certificate may be none, kiosk or portal",
                    anonymous.name()
                ),
            );
        }

        // [[clients]]
        if !self.clients.is_empty() && s.client_ca_file.is_none() {
            bad(
                "clients",
                "client certificates are mapped to roles only under mutual TLS: set server.client_ca_file"
                    .into(),
            );
        }
        let mut client_rules: Vec<ClientRule> = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = format!("clients[{i}]");
            let name = c.name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                bad(
                    &format!("{key}.name"),
                    "1-64 characters without control characters".into(),
                );
            } else if client_rules.iter().any(|r| r.name == name) {
                bad(&format!("{key}.name"), format!("{name:?} is used twice"));
            }
            let matcher = match (&c.common_name, &c.san) {
                (Some(cn), None) if !cn.trim().is_empty() => Matcher::CommonName(cn.trim().into()),
                (None, Some(san)) if !san.trim().is_empty() => Matcher::San(san.trim().into()),
                _ => {
                    bad(
                        &key,
                        "set exactly one of common_name or san (not empty)".into(),
                    );
                    Matcher::CommonName(String::new())
                }
            };
            let role = c.role.unwrap_or_else(|| {
                bad(
                    &format!("{key}.role"),
                    "required: kiosk, portal, helpdesk or admin".into(),
                );
                Role::None
            });
            if c.requests_per_minute == Some(0) {
                bad(
                    &format!("{key}.requests_per_minute"),
                    "must be at least 1 (leave it out for the server default)".into(),
                );
            }
            client_rules.push(ClientRule {
                name: name.to_string(),
                matcher,
                role,
                requests_per_minute: c.requests_per_minute,
            });
        }

        // [store]
        if self.store.path.as_os_str().is_empty() {
            bad("store.path", "must not be empty".into());
        }
        if self.store.sweep_interval_secs == 0 {
            bad("store.sweep_interval_secs", "must be at least 1".into());
        }

        // [directory]
        let d = &self.directory;
        if d.uris.is_empty() {
            bad("directory.uris", "at least one URI is required".into());
        }
        for (i, uri) in d.uris.iter().enumerate() {
            let key = format!("directory.uris[{i}]");
            match uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
                Some(scheme) if scheme == "ldaps" => {}
                Some(scheme) if scheme == "ldap" => {
                    if !d.starttls && !d.allow_insecure {
                        bad(
                            &key,
                            format!(
                                "{uri:?} is plain LDAP: set directory.starttls = true, use ldaps://, \
                                 or (lookups only, never password writes) directory.allow_insecure = true"
                            ),
                        );
                    }
                }
                _ => bad(&key, format!("{uri:?} must start with ldaps:// or ldap://")),
            }
        }
        let ca_pem = d.ca_file.as_ref().and_then(|p| {
            read_pem(p, "CERTIFICATE")
                .map_err(|e| bad("directory.ca_file", e))
                .ok()
        });
        if d.bind_dn.trim().is_empty() {
            bad(
                "directory.bind_dn",
                "the service account DN (or AD user principal name) is required".into(),
            );
        }
        let bind_password = d
            .bind_password
            .clone()
            .unwrap_or_else(|| SecretSource::Credential("ldap-bind-password".into()))
            .read()
            .unwrap_or_else(|e| {
                bad("directory.bind_password", e);
                Secret::new("")
            });
        if d.base_dn.trim().is_empty() {
            bad(
                "directory.base_dn",
                "the search base for users is required".into(),
            );
        }
        let parenthesised = d.user_filter.starts_with('(') && d.user_filter.ends_with(')');
        if !d.user_filter.is_empty() && !parenthesised {
            bad(
                "directory.user_filter",
                format!("{:?} must be a parenthesised LDAP filter", d.user_filter),
            );
        }
        let login_attribute = if d.login_attribute.is_empty() {
            match d.flavour {
                Flavour::Openldap => "uid".to_string(),
                Flavour::ActiveDirectory => "sAMAccountName".to_string(),
            }
        } else {
            d.login_attribute.clone()
        };
        if !login_attribute
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
            || !login_attribute.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            bad(
                "directory.login_attribute",
                format!("{login_attribute:?} is not an attribute name"),
            );
        }
        if !(100..=60_000).contains(&d.timeout_ms) {
            bad(
                "directory.timeout_ms",
                format!("{} is outside 100..=60000", d.timeout_ms),
            );
        }
        if d.timeout_ms >= s.request_timeout_ms {
            bad(
                "directory.timeout_ms",
                format!(
                    "{} must be shorter than server.request_timeout_ms ({}) so a slow directory \
                     answers UNAVAILABLE instead of a client-side deadline",
                    d.timeout_ms, s.request_timeout_ms
                ),
            );
        }
        if d.flavour == Flavour::ActiveDirectory
            && d.openldap_password_write != OpenldapPasswordWrite::Exop
        {
            bad(
                "directory.openldap_password_write",
                "applies to flavour = \"openldap\" only".into(),
            );
        }

        // [policy]
        let p = &self.policy;
        let q = &p.security_questions;
        let mut parse_methods = |key: &str, names: &[String]| {
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match Method::ALL.iter().find(|m| m.name() == name) {
                    Some(m) if !out.contains(m) => out.push(*m),
                    Some(_) => bad(
                        &format!("policy.{key}[{i}]"),
                        format!("{name:?} is listed twice"),
                    ),
                    None => bad(
                        &format!("policy.{key}[{i}]"),
                        format!(
                            "{name:?} is not a method ({})",
                            Method::ALL.map(Method::name).join(", ")
                        ),
                    ),
                }
            }
            out.sort();
            out
        };
        let reset_methods = parse_methods("enabled_methods", &p.enabled_methods);
        let unified_methods = parse_methods("unified_methods", &p.unified_methods);
        // Providers are set up for every method either list names (or when configured),
        // so an administrator can enable them at run time.
        let mut enabled: Vec<Method> = reset_methods.clone();
        enabled.extend(unified_methods.iter().copied());
        enabled.sort();
        enabled.dedup();
        if p.new_method_cooloff_hours > 720 {
            bad(
                "policy.new_method_cooloff_hours",
                format!("{} is outside 0..=720", p.new_method_cooloff_hours),
            );
        }
        let c = &p.codes;
        if !(6..=10).contains(&c.length) {
            bad(
                "policy.codes.length",
                format!("{} is outside 6..=10", c.length),
            );
        }
        if !(1..=10).contains(&c.lifetime_minutes) {
            bad(
                "policy.codes.lifetime_minutes",
                format!("{} is outside 1..=10", c.lifetime_minutes),
            );
        }
        if !(1..=10).contains(&c.max_tries) {
            bad(
                "policy.codes.max_tries",
                format!("{} is outside 1..=10", c.max_tries),
            );
        }
        if !(1..=100).contains(&c.max_sends_per_account) {
            bad(
                "policy.codes.max_sends_per_account",
                format!("{} is outside 1..=100", c.max_sends_per_account),
            );
        }
        if !(1..=1440).contains(&c.account_window_minutes) {
            bad(
                "policy.codes.account_window_minutes",
                format!("{} is outside 1..=1440", c.account_window_minutes),
            );
        }
        if !(1..=20).contains(&c.max_sends_per_flow) {
            bad(
                "policy.codes.max_sends_per_flow",
                format!("{} is outside 1..=20", c.max_sends_per_flow),
            );
        }

        // [email]
        let e = &self.email;
        let email = if enabled.contains(&Method::Email) || !e.host.trim().is_empty() {
            if e.host.trim().is_empty() {
                bad(
                    "email.host",
                    "required when the email method is enabled".into(),
                );
            }
            let from = e
                .from
                .parse::<lettre::message::Mailbox>()
                .unwrap_or_else(|_| {
                    bad(
                        "email.from",
                        format!(
                            "{:?} is not a mailbox like \"IT <no-reply@example.org>\"",
                            e.from
                        ),
                    );
                    "invalid@invalid.invalid".parse().expect("valid literal")
                });
            let ca_pem = e.ca_file.as_ref().and_then(|p| {
                read_pem(p, "CERTIFICATE")
                    .map_err(|er| bad("email.ca_file", er))
                    .ok()
            });
            let credentials = if e.username.is_empty() {
                None
            } else {
                match &e.password {
                    None => {
                        bad("email.password", "required with email.username".into());
                        None
                    }
                    Some(src) => src
                        .read()
                        .map_err(|er| bad("email.password", er))
                        .ok()
                        .map(|pw| (e.username.clone(), pw)),
                }
            };
            let templates = crate::delivery::smtp::Templates::load(e.templates_dir.as_deref())
                .unwrap_or_else(|er| {
                    bad("email.templates_dir", er);
                    crate::delivery::smtp::Templates::load(None).expect("built-in templates")
                });
            if !(100..=60_000).contains(&e.timeout_ms) {
                bad(
                    "email.timeout_ms",
                    format!("{} is outside 100..=60000", e.timeout_ms),
                );
            }
            Some(EmailConfig {
                host: e.host.trim().to_string(),
                port: e.port,
                tls: e.tls,
                ca_pem,
                credentials,
                from,
                organization: e.organization.clone(),
                templates,
                timeout: Duration::from_millis(e.timeout_ms),
            })
        } else {
            None
        };

        // [gateway]
        let g = &self.gateway;
        let needs_gateway = !g.url.is_empty()
            || enabled.iter().any(|m| {
                matches!(
                    m,
                    Method::MobileSms | Method::MobileVoice | Method::OfficeVoice
                )
            });
        let gateway = if needs_gateway {
            if !g.url.starts_with("https://") {
                bad(
                    "gateway.url",
                    format!(
                        "{:?}: an https:// URL is required when SMS or voice methods are enabled",
                        g.url
                    ),
                );
            }
            let secret = g
                .secret
                .clone()
                .unwrap_or_else(|| SecretSource::Credential("gateway-secret".into()))
                .read()
                .map_err(|er| bad("gateway.secret", er))
                .ok();
            if secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
                bad("gateway.secret", "use at least 16 characters".into());
            }
            let ca_pem = g.ca_file.as_ref().and_then(|p| {
                read_pem(p, "CERTIFICATE")
                    .map_err(|er| bad("gateway.ca_file", er))
                    .ok()
            });
            if !(100..=60_000).contains(&g.timeout_ms) {
                bad(
                    "gateway.timeout_ms",
                    format!("{} is outside 100..=60000", g.timeout_ms),
                );
            }
            if g.retries > 5 {
                bad("gateway.retries", format!("{} is outside 0..=5", g.retries));
            }
            secret.map(|secret| crate::delivery::gateway::GatewayConfig {
                url: g.url.clone(),
                ca_pem,
                secret,
                timeout: Duration::from_millis(g.timeout_ms),
                retries: g.retries,
                organization: e.organization.clone(),
            })
        } else {
            None
        };

        // [password]
        let pw = &self.password;
        if !(1..=256).contains(&pw.min_length) {
            bad(
                "password.min_length",
                format!("{} is outside 1..=256", pw.min_length),
            );
        }
        if !(64..=256).contains(&pw.max_length) || pw.max_length < pw.min_length {
            bad(
                "password.max_length",
                format!(
                    "{} must be 64..=256 (NIST: accept at least 64) and at least min_length",
                    pw.max_length
                ),
            );
        }
        if pw.min_strength.is_some_and(|s| s > 4) {
            bad("password.min_strength", "zxcvbn scores are 0..=4".into());
        }
        let banned: Vec<String> = pw
            .banned_terms
            .iter()
            .map(|t| crate::password::normalise(t.trim()))
            .filter(|t| !t.is_empty())
            .collect();
        if banned.iter().any(|t| t.chars().count() < 4) {
            bad(
                "password.banned_terms",
                "terms shorter than 4 characters would refuse too much (one typo is allowed)"
                    .into(),
            );
        }
        let breached = pw.breached_file.as_ref().and_then(|p| {
            crate::password::BreachedList::open(p)
                .map_err(|er| bad("password.breached_file", er))
                .ok()
        });

        // [authenticator]
        let authenticator =
            if enabled.contains(&Method::AuthenticatorCode) || self.authenticator.key.is_some() {
                let key = self
                    .authenticator
                    .key
                    .clone()
                    .unwrap_or_else(|| SecretSource::Credential("totp-key".into()))
                    .read()
                    .and_then(|k| crate::method::totp::Sealer::from_key_text(&k).map(|_| k))
                    .map_err(|er| bad("authenticator.key", er))
                    .ok();
                if self.authenticator.issuer.trim().is_empty() {
                    bad("authenticator.issuer", "must not be empty".into());
                }
                key.map(|k| (self.authenticator.issuer.trim().to_string(), k))
            } else {
                None
            };
        if !(5..=60).contains(&p.reset_session_minutes) {
            bad(
                "policy.reset_session_minutes",
                format!("{} is outside 5..=60", p.reset_session_minutes),
            );
        }
        if !(1..=60).contains(&p.registration_token_minutes) {
            bad(
                "policy.registration_token_minutes",
                format!("{} is outside 1..=60", p.registration_token_minutes),
            );
        }
        if !(1..=10).contains(&p.attempts_per_flow) {
            bad(
                "policy.attempts_per_flow",
                format!("{} is outside 1..=10", p.attempts_per_flow),
            );
        }
        if !(1..=50).contains(&p.max_failed_verifications) {
            bad(
                "policy.max_failed_verifications",
                format!("{} is outside 1..=50", p.max_failed_verifications),
            );
        }
        if !(1..=168).contains(&p.failure_window_hours) {
            bad(
                "policy.failure_window_hours",
                format!("{} is outside 1..=168", p.failure_window_hours),
            );
        }
        if !(1..=168).contains(&p.block_hours) {
            bad(
                "policy.block_hours",
                format!("{} is outside 1..=168", p.block_hours),
            );
        }
        let bank = QuestionBank::build(q.use_predefined, &q.custom).unwrap_or_else(|es| {
            for (key, why) in es {
                bad(&format!("policy.security_questions.{key}"), why);
            }
            QuestionBank::empty()
        });
        let sspr = SsprPolicy {
            version: 0,
            scope: p.scope,
            scope_groups: p
                .scope_groups
                .iter()
                .map(|g| g.trim().to_string())
                .collect(),
            methods_required: p.methods_required,
            reset_methods,
            unified_methods,
            migration: p.migration,
            questions_to_register: q.register_count,
            questions_to_answer: q.reset_count,
            questions_not_only_method: p.questions_not_only_method,
            sms_alone_not_allowed: p.sms_alone_not_allowed,
            admin_policy: p.admin_policy,
            admin_groups: p
                .admin_groups
                .iter()
                .map(|g| g.trim().to_string())
                .collect(),
            admin_count_is_admin: p.admin_count_is_admin,
            require_registration: p.require_registration,
            reconfirm_days: p.reconfirm_days,
            notify_users: p.notify_on_reset,
            notify_admins: p.notify_admins_on_admin_reset,
            admin_notify_emails: p.admin_notify_emails.clone(),
            updated_at: 0,
            updated_by: "configuration".into(),
        };
        let policy_context = PolicyContext {
            email_configured: email.is_some(),
            gateway_configured: gateway.is_some(),
            authenticator_configured: authenticator.is_some(),
            bank_size: bank.len(),
        };
        for (field, why) in sspr.problems(&policy_context) {
            bad(&format!("policy.{}", config_key(&field)), why);
        }

        // [prefill]
        for (key, attr) in [
            ("prefill.email", &self.prefill.email),
            ("prefill.mobile", &self.prefill.mobile),
            ("prefill.office", &self.prefill.office),
            ("prefill.alternate_email", &self.prefill.alternate_email),
        ] {
            let ok = attr.is_empty()
                || (attr.starts_with(|c: char| c.is_ascii_alphabetic())
                    && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !ok {
                bad(key, format!("{attr:?} is not an attribute name"));
            }
        }
        // [outbox]
        if !(1..=3600).contains(&self.outbox.max_retry_interval_secs) {
            bad(
                "outbox.max_retry_interval_secs",
                format!(
                    "{} is outside 1..=3600",
                    self.outbox.max_retry_interval_secs
                ),
            );
        }
        if !(1..=720).contains(&self.outbox.give_up_hours) {
            bad(
                "outbox.give_up_hours",
                format!("{} is outside 1..=720", self.outbox.give_up_hours),
            );
        }

        // [sign_in]
        let si = &self.sign_in;
        if !(1..=10).contains(&si.lockout_margin) {
            bad(
                "sign_in.lockout_margin",
                format!(
                    "{} is outside 1..=10 (0 would let the last failure lock the account)",
                    si.lockout_margin
                ),
            );
        }
        if !(1..=100).contains(&si.max_failures) {
            bad(
                "sign_in.max_failures",
                format!("{} is outside 1..=100", si.max_failures),
            );
        }
        if !(1..=10_080).contains(&si.block_minutes) {
            bad(
                "sign_in.block_minutes",
                format!("{} is outside 1..=10080", si.block_minutes),
            );
        }

        // [log]
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bad(
                "log.level",
                format!("{:?} is not a tracing filter directive", self.log.level),
            );
        }

        if !errs.is_empty() {
            return Err(ConfigError::Invalid(errs));
        }
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Config {
            server: ServerConfig {
                listen,
                tls_cert_pem,
                tls_key_pem,
                client_ca_pem,
                access: Access {
                    clients: client_rules,
                    anonymous,
                },
                reflection: s.reflection,
                request_timeout: Duration::from_millis(s.request_timeout_ms),
                max_request_bytes: s.max_request_bytes,
                max_concurrent_streams: s.max_concurrent_streams,
                per_client_requests_per_minute: s.per_client_requests_per_minute,
                uniform_response: Duration::from_millis(s.uniform_response_ms),
                watchdog: s.watchdog,
                max_connections: s.max_connections,
                max_connections_per_address: s.max_connections_per_address,
                tls_handshake_timeout: Duration::from_millis(s.tls_handshake_timeout_ms),
                idle_timeout: Duration::from_secs(s.idle_timeout_secs),
                keepalive: Duration::from_secs(s.keepalive_secs),
            },
            store_path: self.store.path.clone(),
            sweep_interval: Duration::from_secs(self.store.sweep_interval_secs),
            directory: DirectoryConfig {
                flavour: d.flavour,
                uris: d.uris.clone(),
                ca_pem,
                starttls: d.starttls,
                allow_insecure: d.allow_insecure,
                bind_dn: d.bind_dn.clone(),
                bind_password,
                base_dn: d.base_dn.clone(),
                group_base_dn: d.group_base_dn.trim().to_string(),
                user_filter: d.user_filter.clone(),
                login_attribute,
                timeout: Duration::from_millis(d.timeout_ms),
                verify_after_write: d.verify_after_write,
                require_change_after_reset: d.require_change_after_reset,
                openldap_password_write: d.openldap_password_write,
                ad_policy_hints: d.ad_policy_hints,
                ppolicy_dn: d.ppolicy_dn.clone(),
            },
            reset: ResetPolicy {
                methods_required: p.methods_required,
                session_ttl_secs: p.reset_session_minutes * 60,
                registration_ttl_secs: p.registration_token_minutes * 60,
                attempts_per_flow: p.attempts_per_flow,
                max_failed_verifications: p.max_failed_verifications,
                failure_window_secs: p.failure_window_hours * 3600,
                block_secs: p.block_hours * 3600,
            },
            bank,
            max_concurrent_hashes: if q.max_concurrent_hashes == 0 {
                cpus
            } else {
                q.max_concurrent_hashes
            },
            methods: MethodPolicy {
                enabled: sspr.effective_methods(),
                required: p.methods_required,
                questions_not_only: p.questions_not_only_method,
                sms_alone_not_allowed: p.sms_alone_not_allowed,
                cooloff_secs: p.new_method_cooloff_hours * 3600,
                notify_on_reset: p.notify_on_reset,
                codes: CodePolicy {
                    length: p.codes.length as usize,
                    ttl_secs: p.codes.lifetime_minutes * 60,
                    max_tries: p.codes.max_tries,
                    max_sends_per_flow: p.codes.max_sends_per_flow,
                    max_sends_per_account: p.codes.max_sends_per_account,
                    account_window_secs: p.codes.account_window_minutes * 60,
                },
            },
            sspr,
            policy_context,
            email,
            gateway,
            authenticator,
            password: std::sync::Arc::new(crate::password::PasswordRules {
                min_length: pw.min_length,
                max_length: pw.max_length,
                banned,
                common: pw.common_passwords.then(|| {
                    let mut names = vec![self.email.organization.clone()];
                    if self.authenticator.issuer != self.email.organization {
                        names.push(self.authenticator.issuer.clone());
                    }
                    crate::password::common::CommonPasswords::new(&names)
                }),
                reject_names: pw.reject_names,
                min_strength: pw.min_strength,
                breached,
            }),
            audit_forward: self.audit.forward.map(|k| {
                (
                    k,
                    self.audit
                        .forward_socket
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(k.default_socket())),
                )
            }),
            audit_retention: (self.audit.retention_days > 0)
                .then(|| Duration::from_secs(self.audit.retention_days * 86_400)),
            prefill: crate::service::admin::PrefillMap {
                email: self.prefill.email.clone(),
                mobile: self.prefill.mobile.clone(),
                office: self.prefill.office.clone(),
                alternate_email: self.prefill.alternate_email.clone(),
            },
            outbox: crate::service::OutboxPolicy {
                max_retry_interval_secs: self.outbox.max_retry_interval_secs,
                give_up_after_secs: self.outbox.give_up_hours * 3600,
            },
            sign_in: crate::lockout::SignInPolicy {
                lockout_margin: si.lockout_margin,
                max_failures: si.max_failures,
                block_secs: si.block_minutes * 60,
            },
            log: self.log.clone(),
        })
    }
}

fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let marker = format!("-----BEGIN {label}-----");
    if !String::from_utf8_lossy(&bytes).contains(&marker) {
        return Err(format!("{} holds no PEM {label}", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fail_with_named_keys() {
        // The built-in defaults point at files that do not exist here: each is named.
        let err = RawConfig::default().validate().unwrap_err().to_string();
        assert!(err.contains("server.tls_cert_file"), "{err}");
        assert!(err.contains("directory.bind_dn"), "{err}");
        assert!(err.contains("directory.base_dn"), "{err}");
    }

    #[test]
    fn question_counts_are_checked() {
        let mut raw = RawConfig::default();
        raw.policy.security_questions.register_count = 3;
        raw.policy.security_questions.reset_count = 4;
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.contains("policy.security_questions.reset_count: 4 exceeds the number of questions to register (3)"),
            "{err}"
        );
        raw.policy.security_questions.register_count = 6;
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.contains("policy.security_questions.register_count: 6 is outside 3..=5"),
            "{err}"
        );
    }

    #[test]
    fn plain_ldap_needs_an_explicit_switch() {
        let mut raw = RawConfig::default();
        raw.directory.uris = vec!["ldap://dc1:389".into()];
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains("directory.uris[0]"), "{err}");
        raw.directory.starttls = true;
        let err = raw.validate().unwrap_err().to_string();
        assert!(!err.contains("directory.uris[0]"), "{err}");
    }

    #[test]
    fn credential_names_are_plain() {
        let e = SecretSource::Credential("../etc/shadow".into())
            .read()
            .unwrap_err();
        assert!(e.contains("not a plain file name"), "{e}");
    }
}
