//! Secret values: passwords, answers, tokens, keys.
//!
//! [`Secret`] zeroizes its memory on drop, prints as `[REDACTED]` in `Debug` and `Display`,
//! and implements neither `Serialize` nor `Clone`-into-plain-string conversions. The only
//! way to read it is [`Secret::expose`], which makes every use greppable.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A secret string.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The secret text. Call sites are the audit trail of where secrets are used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The empty secret.
impl Default for Secret {
    fn default() -> Self {
        Secret::new("")
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self::new(self.expose().to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

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

    /// `source` as configured, else the systemd credential `name`.
    pub fn or_credential(source: &Option<SecretSource>, name: &str) -> SecretSource {
        source
            .clone()
            .unwrap_or_else(|| SecretSource::Credential(name.into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("hunter2-canary");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([REDACTED])");
        assert_eq!(s.expose(), "hunter2-canary");
    }

    #[test]
    fn credential_names_are_plain() {
        let e = SecretSource::Credential("../etc/shadow".into())
            .read()
            .unwrap_err();
        assert!(e.contains("not a plain file name"), "{e}");
    }
}
