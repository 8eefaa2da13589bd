//! The `[email]` and `[gateway]` sections: how codes and notifications leave the daemon.

use super::gateway::GatewayConfig;
use super::text::Texts;
use crate::problems::Problems;
use crate::secret::{Secret, SecretSource};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// Directory with `[<lang>/]<template>.{subject,txt,html}` overrides (reset_code,
    /// confirm_contact, method_changed, account_recovered, admin_reset, admin_alert).
    pub templates_dir: Option<PathBuf>,
    /// Language of messages (email, SMS, calls) to users who chose none: en, de or fr.
    pub language: String,
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
            language: "en".into(),
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
    pub texts: Arc<Texts>,
    pub timeout: Duration,
}

impl RawEmail {
    /// The texts of messages: the built-in ones of each language with the templates of
    /// `templates_dir` (checked into `p` whether or not email is enabled: SMS and calls
    /// use them too).
    pub fn texts(&self, p: &mut Problems) -> Arc<Texts> {
        let default = crate::language::supported(&self.language)
            .filter(|l| *l == self.language)
            .unwrap_or_else(|| {
                p.bad(
                    "email.language",
                    format!(
                        "{:?} is not one of {}",
                        self.language,
                        crate::language::LANGUAGES.join(", ")
                    ),
                );
                "en"
            });
        let texts = Texts::load(self.templates_dir.as_deref(), default).unwrap_or_else(|er| {
            p.bad("email.templates_dir", er);
            Texts::load(None, default).expect("built-in texts")
        });
        Arc::new(texts)
    }

    /// Checks the section into `p` when email is configured or `enabled` (a policy names
    /// the email method); `None` when neither.
    pub fn validate(
        &self,
        p: &mut Problems,
        enabled: bool,
        texts: Arc<Texts>,
    ) -> Option<EmailConfig> {
        let e = self;
        if !enabled && e.host.trim().is_empty() {
            return None;
        }
        if e.host.trim().is_empty() {
            p.bad("email.host", "required when the email method is enabled");
        }
        let from = e
            .from
            .parse::<lettre::message::Mailbox>()
            .unwrap_or_else(|_| {
                p.bad(
                    "email.from",
                    format!(
                        "{:?} is not a mailbox like \"IT <no-reply@example.org>\"",
                        e.from
                    ),
                );
                "invalid@invalid.invalid".parse().expect("valid literal")
            });
        let ca_pem = e.ca_file.as_ref().and_then(|f| {
            crate::tls::read_pem(f, "CERTIFICATE")
                .map_err(|er| p.bad("email.ca_file", er))
                .ok()
        });
        let credentials = if e.username.is_empty() {
            None
        } else {
            match &e.password {
                None => {
                    p.bad("email.password", "required with email.username");
                    None
                }
                Some(src) => src
                    .read()
                    .map_err(|er| p.bad("email.password", er))
                    .ok()
                    .map(|pw| (e.username.clone(), pw)),
            }
        };
        p.in_range("email.timeout_ms", e.timeout_ms, 100, 60_000);
        Some(EmailConfig {
            host: e.host.trim().to_string(),
            port: e.port,
            tls: e.tls,
            ca_pem,
            credentials,
            from,
            organization: e.organization.clone(),
            texts,
            timeout: Duration::from_millis(e.timeout_ms),
        })
    }
}

impl RawGateway {
    /// Checks the section into `p` when a gateway is configured or `enabled` (a policy names
    /// an SMS or voice method); `None` when neither, or without a usable secret.
    /// `organization` names the sender in messages.
    pub fn validate(
        &self,
        p: &mut Problems,
        enabled: bool,
        organization: &str,
        texts: Arc<Texts>,
    ) -> Option<GatewayConfig> {
        let g = self;
        if !enabled && g.url.is_empty() {
            return None;
        }
        if !g.url.starts_with("https://") {
            p.bad(
                "gateway.url",
                format!(
                    "{:?}: an https:// URL is required when SMS or voice methods are enabled",
                    g.url
                ),
            );
        }
        let secret = SecretSource::or_credential(&g.secret, "gateway-secret")
            .read()
            .map_err(|er| p.bad("gateway.secret", er))
            .ok();
        if secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
            p.bad("gateway.secret", "use at least 16 characters");
        }
        let ca_pem = g.ca_file.as_ref().and_then(|f| {
            crate::tls::read_pem(f, "CERTIFICATE")
                .map_err(|er| p.bad("gateway.ca_file", er))
                .ok()
        });
        p.in_range("gateway.timeout_ms", g.timeout_ms, 100, 60_000);
        p.in_range("gateway.retries", g.retries, 0, 5);
        secret.map(|secret| GatewayConfig {
            url: g.url.clone(),
            ca_pem,
            secret,
            timeout: Duration::from_millis(g.timeout_ms),
            retries: g.retries,
            organization: organization.to_string(),
            texts,
        })
    }
}
