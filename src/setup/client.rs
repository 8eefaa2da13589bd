//! `ssprd client-cert NAME --role ROLE`: a client certificate from the CA `ssprd setup`
//! made, with the CA certificate to trust, and its `[[clients]]` entry.

use super::files::{self, Layout};
use super::{EX_CANTCREAT, EX_CONFIG, EX_USAGE, Stop, check_config, edit, pki, stop, write_config};
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The roles a client certificate can be given (see `[[clients]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientRole {
    /// Reset and unlock (ResetService).
    Kiosk,
    /// Reset, unlock and registration.
    Portal,
    /// Unlock users and reset their passwords (AdminService.UnlockUser, ResetUserPassword).
    Helpdesk,
    /// Everything.
    Admin,
}

impl ClientRole {
    fn name(self) -> &'static str {
        match self {
            Self::Kiosk => "kiosk",
            Self::Portal => "portal",
            Self::Helpdesk => "helpdesk",
            Self::Admin => "admin",
        }
    }
}

/// `ssprd client-cert`: a client certificate from the setup's CA, with its entry.
#[derive(clap::Args, Debug)]
pub struct ClientCertArgs {
    /// The client's name: the certificate's common name and the [[clients]] entry's name.
    pub name: String,
    #[arg(long, value_enum)]
    pub role: ClientRole,
    /// Where the certificate, its key and the CA certificate go (default:
    /// clients/<name> beside the configuration).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Issue a new certificate where one was issued under that name before.
    #[arg(long)]
    pub replace: bool,
}

/// sysexits: no CA or configuration to work with.
const EX_NOINPUT: u8 = 66;
/// The name is taken by another role.
const EX_DATAERR: u8 = 65;

/// `ssprd client-cert NAME --role ROLE`.
pub fn issue_client(config: &Path, args: ClientCertArgs) -> ExitCode {
    match client_cert(config, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop(code, message)) => {
            eprintln!("ssprd client-cert: {message}");
            ExitCode::from(code)
        }
    }
}

fn client_cert(config: &Path, args: &ClientCertArgs) -> Result<(), Stop> {
    let name = args.name.trim();
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return stop(
            EX_USAGE,
            format!("{name:?}: use 1-64 letters, digits and - _ . @, not starting with a dot"),
        );
    }
    let layout = Layout::beside(config);
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).or_else(|e| {
            stop(
                EX_NOINPUT,
                format!("{}: {e} (run `ssprd setup` first)", p.display()),
            )
        })
    };
    let ca_cert = read(layout.ca_cert())?;
    let ca_key = Secret::new(read(layout.ca_key())?);
    let text = read(config.to_path_buf())?;
    let (new_text, entry) = edit::add_client(&text, name, args.role.name())
        .or_else(|e| stop(EX_CONFIG, format!("{}: {e}", config.display())))?;
    if let edit::ClientEntry::OtherRole(r) = entry {
        return stop(
            EX_DATAERR,
            format!(
                "{}: a [[clients]] entry gives {name:?} the role {r:?}; choose another name \
                 or change the entry",
                config.display()
            ),
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| layout.dir.join("clients").join(name));
    let (cert, key) = (
        out.join(format!("{name}.crt")),
        out.join(format!("{name}.key")),
    );
    if cert.exists() && !args.replace {
        return stop(
            EX_CANTCREAT,
            format!(
                "{} exists: pass --replace to issue a new certificate",
                cert.display()
            ),
        );
    }
    let made = (|| {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let pair = pki::Ca::load(&ca_cert, ca_key.expose())?.client(name)?;
        files::write(&key, pair.key_pem.expose().as_bytes(), 0o600, None)?;
        files::write(&cert, pair.cert_pem.as_bytes(), 0o600, None)?;
        files::write(&out.join("ca.crt"), ca_cert.as_bytes(), 0o644, None)
    })();
    made.or_else(|e| stop(EX_CANTCREAT, e))?;
    println!(
        "Issued {} ({} role, {} years) and its key {}; {} is the CA to trust for the daemon.",
        cert.display(),
        args.role.name(),
        pki::LEAF_YEARS,
        key.display(),
        out.join("ca.crt").display()
    );
    write_config(config, Some(&text), &new_text)?;
    check_config(config, &layout)?;
    if entry == edit::ClientEntry::Added {
        println!(
            "The daemon reads [[clients]] when it starts: systemctl restart ssprd. Then copy \
             the three files to the client (the key privately) and remove them here."
        );
    }
    Ok(())
}
