//! The `[directory]` section: which directory, how to reach it, how passwords are written.

use crate::problems::Problems;
use crate::secret::{Secret, SecretSource};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Connections kept open to the directory: this many bound as the service account, and
    /// as many again for binds with users' passwords.
    pub pool_size: usize,
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
            pool_size: 8,
            verify_after_write: true,
            require_change_after_reset: false,
            openldap_password_write: OpenldapPasswordWrite::Exop,
            ad_policy_hints: false,
            ppolicy_dn: String::new(),
        }
    }
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
    pub pool_size: usize,
    pub verify_after_write: bool,
    pub require_change_after_reset: bool,
    pub openldap_password_write: OpenldapPasswordWrite,
    pub ad_policy_hints: bool,
    pub ppolicy_dn: String,
}

impl RawDirectory {
    /// Checks the section into `p` and reads the bind password; `request_timeout_ms` is the
    /// server's, which a directory operation must fit in.
    pub fn validate(&self, p: &mut Problems, request_timeout_ms: u64) -> DirectoryConfig {
        let d = self;
        if d.uris.is_empty() {
            p.bad("directory.uris", "at least one URI is required");
        }
        for (i, uri) in d.uris.iter().enumerate() {
            let key = format!("directory.uris[{i}]");
            match uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
                Some(scheme) if scheme == "ldaps" => {}
                Some(scheme) if scheme == "ldap" => {
                    if !d.starttls && !d.allow_insecure {
                        p.bad(
                            &key,
                            format!(
                                "{uri:?} is plain LDAP: set directory.starttls = true, use ldaps://, \
                                 or (lookups only, never password writes) directory.allow_insecure = true"
                            ),
                        );
                    }
                }
                _ => p.bad(&key, format!("{uri:?} must start with ldaps:// or ldap://")),
            }
        }
        let ca_pem = d.ca_file.as_ref().and_then(|f| {
            crate::tls::read_pem(f, "CERTIFICATE")
                .map_err(|e| p.bad("directory.ca_file", e))
                .ok()
        });
        if d.bind_dn.trim().is_empty() {
            p.bad(
                "directory.bind_dn",
                "the service account DN (or AD user principal name) is required",
            );
        }
        let bind_password = SecretSource::or_credential(&d.bind_password, "ldap-bind-password")
            .read()
            .unwrap_or_else(|e| {
                p.bad("directory.bind_password", e);
                Secret::new("")
            });
        if d.base_dn.trim().is_empty() {
            p.bad("directory.base_dn", "the search base for users is required");
        }
        let parenthesised = d.user_filter.starts_with('(') && d.user_filter.ends_with(')');
        if !d.user_filter.is_empty() && !parenthesised {
            p.bad(
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
            p.bad(
                "directory.login_attribute",
                format!("{login_attribute:?} is not an attribute name"),
            );
        }
        p.in_range("directory.timeout_ms", d.timeout_ms, 100, 60_000);
        p.in_range("directory.pool_size", d.pool_size, 1, 256);
        if d.timeout_ms >= request_timeout_ms {
            p.bad(
                "directory.timeout_ms",
                format!(
                    "{} must be shorter than server.request_timeout_ms ({}) so a slow directory \
                     answers UNAVAILABLE instead of a client-side deadline",
                    d.timeout_ms, request_timeout_ms
                ),
            );
        }
        if d.flavour == Flavour::ActiveDirectory
            && d.openldap_password_write != OpenldapPasswordWrite::Exop
        {
            p.bad(
                "directory.openldap_password_write",
                "applies to flavour = \"openldap\" only",
            );
        }
        DirectoryConfig {
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
            pool_size: d.pool_size,
            verify_after_write: d.verify_after_write,
            require_change_after_reset: d.require_change_after_reset,
            openldap_password_write: d.openldap_password_write,
            ad_policy_hints: d.ad_policy_hints,
            ppolicy_dn: d.ppolicy_dn.clone(),
        }
    }
}
