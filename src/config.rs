//! Configuration: built-in defaults < TOML file < `SSPRD_*` environment (`__` nests).
//!
//! Each module owns its section — its raw form (plain data, `deny_unknown_fields`), its
//! defaults, and its validation into a [`Problems`] list shared by all sections:
//!
//! | section | owner |
//! |---|---|
//! | `[server]`, `[[clients]]` | [`crate::grpc::settings`] |
//! | `[store]` | [`crate::store`] |
//! | `[directory]` | [`crate::directory::settings`] |
//! | `[policy]` | [`crate::policy::settings`] |
//! | `[email]`, `[gateway]` | [`crate::delivery::settings`] |
//! | `[authenticator]` | [`crate::method::totp`] |
//! | `[password]` | [`crate::password::settings`] |
//! | `[audit]` | [`crate::audit`] |
//! | `[log]` | [`crate::logging`] |
//! | `[prefill]` | [`crate::service::admin`] |
//! | `[outbox]` | `crate::service::notify` |
//! | `[sign_in]` | [`crate::lockout`] |
//! | `[metrics]` | [`crate::management`] |
//! | `[portal]` | [`crate::portal::settings`] |
//!
//! This module only composes them: [`load`] merges the layers into a [`RawConfig`];
//! [`RawConfig::validate`] runs every section's check in a fixed order — so every bad key is
//! reported at once, each named with why — reads the secret files, and returns a [`Config`]
//! the rest of the daemon can trust. Nothing below imports it.
//!
//! Secrets (directory bind password, TLS private key) are never written in the config itself:
//! a [`SecretSource`] names a file, or a systemd credential resolved in
//! `$CREDENTIALS_DIRECTORY` (`LoadCredential=` in the unit).

pub use crate::audit::RawAudit;
pub use crate::delivery::settings::{EmailConfig, RawEmail, RawGateway, SmtpTls};
pub use crate::directory::settings::{
    DirectoryConfig, Flavour, OpenldapPasswordWrite, RawDirectory,
};
pub use crate::grpc::settings::{RawClient, RawServer, ServerConfig};
pub use crate::lockout::RawSignIn;
pub use crate::logging::{LogFormat, RawLog};
pub use crate::management::{MetricsSettings, RawMetrics};
pub use crate::method::totp::RawAuthenticator;
pub use crate::password::settings::RawPassword;
pub use crate::policy::settings::{RawCodes, RawCustomQuestion, RawPolicy, RawQuestions};
pub use crate::portal::settings::{PortalConfig, RawPortal};
pub use crate::problems::Problems;
pub use crate::secret::SecretSource;
pub use crate::service::RawOutbox;
pub use crate::service::admin::RawPrefill;
pub use crate::store::RawStore;

use crate::method::Method;
use crate::policy::settings::Deliverable;
use crate::policy::{MethodLimits, PolicyContext, QuestionBank, ResetPolicy, SsprPolicy};
use crate::secret::Secret;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ssprd/ssprd.toml";

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
    pub metrics: RawMetrics,
    pub portal: RawPortal,
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
    "metrics",
    "portal",
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

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store: crate::store::StoreConfig,
    pub directory: DirectoryConfig,
    pub reset: ResetPolicy,
    pub bank: QuestionBank,
    pub max_concurrent_hashes: usize,
    /// Code, cool-off and notification settings (the enabled methods and the number
    /// required come from `sspr` per user).
    pub limits: MethodLimits,
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
    /// The management listener and the readiness checks.
    pub metrics: MetricsSettings,
    /// The web portal, when enabled.
    pub portal: Option<PortalConfig>,
}

impl RawConfig {
    /// Checks every section and reads the secret files. All problems are reported at once,
    /// each naming its key, in the order of the sections below.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut p = Problems::new();
        let server = self.server.validate(&self.clients, &mut p);
        let store = self.store.validate(&mut p);
        let directory = self
            .directory
            .validate(&mut p, self.server.request_timeout_ms);
        // The deliveries are set up for every method the policy names, and the policy is
        // then checked against what can be delivered.
        let methods = self.policy.methods(&mut p);
        let phone = [Method::MobileSms, Method::MobileVoice, Method::OfficeVoice];
        let texts = self.email.texts(&mut p);
        let email = self
            .email
            .validate(&mut p, methods.names(Method::Email), texts.clone());
        let gateway = self.gateway.validate(
            &mut p,
            phone.into_iter().any(|m| methods.names(m)),
            &self.email.organization,
            texts,
        );
        let mut organisation = vec![self.email.organization.clone()];
        if self.authenticator.issuer != self.email.organization {
            organisation.push(self.authenticator.issuer.clone());
        }
        let password = self.password.validate(&mut p, &organisation);
        let authenticator = self
            .authenticator
            .validate(&mut p, methods.names(Method::AuthenticatorCode));
        let policy = self.policy.validate(
            &mut p,
            methods,
            Deliverable {
                email: email.is_some(),
                gateway: gateway.is_some(),
                authenticator: authenticator.is_some(),
            },
        );
        let prefill = self.prefill.validate(&mut p);
        let outbox = self.outbox.validate(&mut p);
        let sign_in = self.sign_in.validate(&mut p);
        self.log.validate(&mut p);
        let metrics = self.metrics.validate(&mut p);
        let portal = self.portal.validate(
            &mut p,
            crate::portal::settings::Fallbacks {
                tls_cert_file: &self.server.tls_cert_file,
                tls_key: &self.server.tls_key,
                organization: &self.email.organization,
            },
        );
        let audit = self.audit.settings();

        if !p.is_empty() {
            return Err(ConfigError::Invalid(p.into_vec()));
        }
        Ok(Config {
            server,
            store,
            directory,
            reset: policy.reset,
            bank: policy.bank,
            max_concurrent_hashes: policy.max_concurrent_hashes,
            limits: policy.limits,
            sspr: policy.sspr,
            policy_context: policy.context,
            email,
            gateway,
            authenticator,
            audit_retention: audit.retention,
            audit_forward: audit.forward,
            password: std::sync::Arc::new(password),
            prefill,
            outbox,
            sign_in,
            log: self.log.clone(),
            metrics,
            portal,
        })
    }
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
    fn the_message_language_is_one_ssprd_speaks() {
        let mut raw = RawConfig::default();
        for ok in ["en", "de", "fr"] {
            raw.email.language = ok.into();
            let err = raw.validate().unwrap_err().to_string();
            assert!(!err.contains("email.language"), "{ok}: {err}");
        }
        for bad in ["es", "de-CH", ""] {
            raw.email.language = bad.into();
            let err = raw.validate().unwrap_err().to_string();
            assert!(
                err.contains(&format!("email.language: {bad:?} is not one of en, de, fr")),
                "{bad}: {err}"
            );
        }
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
}
