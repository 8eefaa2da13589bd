//! The `[password]` section: the local rules a new password must pass.

use super::{BreachedList, PasswordRules, common::CommonPasswords, normalise};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

impl RawPassword {
    /// Checks the section into `p` and opens the breached-password file. `organisation`
    /// names (`[email] organization`, `[authenticator] issuer`) join the common passwords.
    pub fn validate(&self, p: &mut Problems, organisation: &[String]) -> PasswordRules {
        let pw = self;
        p.in_range("password.min_length", pw.min_length, 1, 256);
        if !(64..=256).contains(&pw.max_length) || pw.max_length < pw.min_length {
            p.bad(
                "password.max_length",
                format!(
                    "{} must be 64..=256 (NIST: accept at least 64) and at least min_length",
                    pw.max_length
                ),
            );
        }
        if pw.min_strength.is_some_and(|s| s > 4) {
            p.bad("password.min_strength", "zxcvbn scores are 0..=4");
        }
        let banned: Vec<String> = pw
            .banned_terms
            .iter()
            .map(|t| normalise(t.trim()))
            .filter(|t| !t.is_empty())
            .collect();
        if banned.iter().any(|t| t.chars().count() < 4) {
            p.bad(
                "password.banned_terms",
                "terms shorter than 4 characters would refuse too much (one typo is allowed)",
            );
        }
        let breached = pw.breached_file.as_ref().and_then(|f| {
            BreachedList::open(f)
                .map_err(|er| p.bad("password.breached_file", er))
                .ok()
        });
        PasswordRules {
            min_length: pw.min_length,
            max_length: pw.max_length,
            banned,
            common: pw
                .common_passwords
                .then(|| CommonPasswords::new(organisation)),
            reject_names: pw.reject_names,
            min_strength: pw.min_strength,
            breached,
        }
    }
}
