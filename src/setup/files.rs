//! What the setup writes and how: which files exist, which to create or replace (a key or
//! certificate is replaced only when the admin says so), and the writes themselves — a
//! new file beside the old one with its mode and group set before anything is in it,
//! synced, then renamed over, so a crash leaves the old file or the new one, never half.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where everything goes, under the configuration file's directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// The layout in the directory of the configuration file `config`.
    pub fn beside(config: &Path) -> Self {
        Self {
            dir: match config.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }

    pub fn tls(&self) -> PathBuf {
        self.dir.join("tls")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.tls().join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.tls().join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.tls().join("server.crt")
    }
    /// The systemd credential `tls-key`.
    pub fn server_key(&self) -> PathBuf {
        self.tls().join("server.key")
    }
    pub fn admin(&self) -> PathBuf {
        self.dir.join("admin")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.admin().join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.admin().join("admin.key")
    }
    /// The systemd credential `totp-key`.
    pub fn sealing_key(&self) -> PathBuf {
        self.dir.join("totp-key")
    }
    /// The systemd credential `ldap-bind-password`.
    pub fn bind_password(&self) -> PathBuf {
        self.dir.join("ldap-bind-password")
    }
    /// The credentials the unit loads: (name, file).
    pub fn credentials(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("ldap-bind-password", self.bind_password()),
            ("tls-key", self.server_key()),
            ("totp-key", self.sealing_key()),
        ]
    }
}

/// Something the setup generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Artifact {
    /// The CA clients trust for the daemon, and the daemon for clients.
    Ca,
    /// The daemon's certificate and key.
    ServerCertificate,
    /// The first admin client certificate and key.
    AdminCertificate,
    /// The authenticator sealing key. Replacing it makes every registered authenticator
    /// unusable: users must enrol again.
    SealingKey,
}

impl Artifact {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Ca => "the CA",
            Self::ServerCertificate => "the server certificate",
            Self::AdminCertificate => "the admin client certificate",
            Self::SealingKey => "the authenticator sealing key",
        }
    }
}

/// What happens to one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    Create,
    Replace,
}

/// Which artifacts exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Existing {
    pub ca: bool,
    pub server: bool,
    pub admin: bool,
    pub sealing_key: bool,
}

impl Existing {
    pub fn on_disk(l: &Layout) -> Self {
        Self {
            ca: l.ca_cert().exists() && l.ca_key().exists(),
            server: l.server_cert().exists() && l.server_key().exists(),
            admin: l.admin_cert().exists() && l.admin_key().exists(),
            sealing_key: l.sealing_key().exists(),
        }
    }
}

/// The action per artifact, in the order [CA, server, admin, sealing key].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub ca: Action,
    pub server: Action,
    pub admin: Action,
    pub sealing_key: Action,
}

/// Decides what to write. `replace` is asked only about artifacts that exist and would
/// otherwise be kept. A new CA makes a new admin certificate (the old one would not be
/// trusted any more); the server certificate follows a replaced CA, but one that exists
/// without a CA of ours may be the site's own, so it is asked about. Pure apart from
/// `replace`.
pub fn plan(e: Existing, mut replace: impl FnMut(Artifact) -> bool) -> Plan {
    let mut decide = |exists: bool, a: Artifact| match exists {
        false => Action::Create,
        true if replace(a) => Action::Replace,
        true => Action::Keep,
    };
    let ca = decide(e.ca, Artifact::Ca);
    let server = match (ca, e.server) {
        (Action::Replace, true) => Action::Replace,
        (_, exists) => decide(exists, Artifact::ServerCertificate),
    };
    let admin = match (ca, e.admin) {
        (Action::Keep, exists) => decide(exists, Artifact::AdminCertificate),
        (_, true) => Action::Replace,
        (_, false) => Action::Create,
    };
    let sealing_key = decide(e.sealing_key, Artifact::SealingKey);
    Plan {
        ca,
        server,
        admin,
        sealing_key,
    }
}

/// The group files the daemon reads get: the configuration directory's (the package
/// makes it `root:ssprd`).
pub fn group_of(dir: &Path) -> Option<u32> {
    std::fs::metadata(dir).ok().map(|m| m.gid())
}

/// Creates `dir` with `mode` unless it exists.
pub fn ensure_dir(dir: &Path, mode: u32, gid: Option<u32>) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::os::unix::fs::chown(dir, None, gid)
        .map_err(|e| format!("cannot set the group of {}: {e}", dir.display()))
}

/// Writes `contents` to `path` with `mode` and group `gid`, replacing what is there.
pub fn write(path: &Path, contents: &[u8], mode: u32, gid: Option<u32>) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).expect("the system's random source");
    let tmp = path.with_file_name(format!(".{name}.{}", hex::encode(nonce)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| fail("create", e))?;
        std::os::unix::fs::fchown(&f, None, gid).map_err(|e| fail("set the group of", e))?;
        f.write_all(contents).map_err(|e| fail("write", e))?;
        f.sync_all().map_err(|e| fail("sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("replace", e))?;
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| fail("sync the directory of", e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(e: bool) -> Existing {
        Existing {
            ca: e,
            server: e,
            admin: e,
            sealing_key: e,
        }
    }

    #[test]
    fn a_first_run_creates_everything_and_asks_nothing() {
        let p = plan(all(false), |a| panic!("asked about {a:?}"));
        assert_eq!(
            [p.ca, p.server, p.admin, p.sealing_key],
            [Action::Create; 4]
        );
    }

    #[test]
    fn a_second_run_keeps_everything_unless_told() {
        let mut asked = Vec::new();
        let p = plan(all(true), |a| {
            asked.push(a);
            false
        });
        assert_eq!([p.ca, p.server, p.admin, p.sealing_key], [Action::Keep; 4]);
        assert_eq!(
            asked,
            [
                Artifact::Ca,
                Artifact::ServerCertificate,
                Artifact::AdminCertificate,
                Artifact::SealingKey
            ]
        );
        let p = plan(all(true), |a| a == Artifact::ServerCertificate);
        assert_eq!(
            [p.ca, p.server, p.admin, p.sealing_key],
            [Action::Keep, Action::Replace, Action::Keep, Action::Keep]
        );
    }

    #[test]
    fn a_new_ca_brings_certificates_it_signed() {
        let p = plan(all(true), |a| a == Artifact::Ca);
        assert_eq!(
            [p.ca, p.server, p.admin, p.sealing_key],
            [
                Action::Replace,
                Action::Replace,
                Action::Replace,
                Action::Keep
            ]
        );
        // The site's own server certificate with no CA of ours: asked, and kept.
        let e = Existing {
            server: true,
            admin: true,
            ..all(false)
        };
        let p = plan(e, |a| {
            assert_eq!(a, Artifact::ServerCertificate);
            false
        });
        assert_eq!(
            [p.ca, p.server, p.admin],
            [Action::Create, Action::Keep, Action::Replace]
        );
    }

    #[test]
    fn writes_replace_whole_files_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        write(&f, b"one", 0o600, None).unwrap();
        write(&f, b"two", 0o640, None).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert!(write(&dir.path().join("none/x"), b"", 0o600, None).is_err());
    }
}
