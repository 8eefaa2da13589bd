//! `ssprd setup`: the guided first run.
//!
//! It asks for the directory (flavour, URIs, CA, service account and its password),
//! connects and proposes the search base and password policy it finds, **checks the
//! service account's rights** ([`crate::directory::rights`]) and stops before writing
//! anything when one is missing, then generates what is absent — a private CA, the
//! server certificate for the host names given, the authenticator sealing key, a first
//! admin client certificate — writes the configuration and the secret files with their
//! modes, runs `ssprd check-config` with the credentials as systemd will hand them over,
//! and prints the next steps.
//!
//! Every answer is also a flag. Without a terminal (or with `--non-interactive`) a
//! question without its flag takes the default shown, or fails when there is none. A key
//! or certificate that exists is kept unless the admin answers yes to replacing it (or
//! names it with `--replace`).
//!
//! # Layout
//! - [`edit`] — pure: the answers written into the configuration text, comments kept.
//! - [`pki`] — the CA, certificates and sealing key (rcgen on ring).
//! - [`files`] — which files to create or replace, and the writes (mode and group first).
//! - [`client`] — `ssprd client-cert`: more client certificates from the same CA.
//! - this module — the conversation: flags and prompts, the directory, the writes, the
//!   check, the next steps.

pub mod client;
pub mod edit;
pub mod files;
pub mod pki;

use crate::config::RawConfig;
use crate::directory::ldap::LdapDirectory;
use crate::directory::settings::{Flavour, RawDirectory};
use crate::secret::{Secret, SecretSource};
use edit::{Email, Rollout, Settings};
use files::{Action, Artifact, Existing, Layout};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sysexits: a required answer is missing.
const EX_USAGE: u8 = 64;
/// A file could not be written.
const EX_CANTCREAT: u8 = 73;
/// The service account lacks a right.
const EX_NOPERM: u8 = 77;
/// The written configuration does not pass `check-config`.
const EX_CONFIG: u8 = 78;

/// Directory flavours as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavourArg {
    Openldap,
    /// Active Directory, and Samba AD.
    ActiveDirectory,
}

impl From<FlavourArg> for Flavour {
    fn from(f: FlavourArg) -> Self {
        match f {
            FlavourArg::Openldap => Flavour::Openldap,
            FlavourArg::ActiveDirectory => Flavour::ActiveDirectory,
        }
    }
}

/// The answers as flags (each one asked for on a terminal when absent).
#[derive(clap::Args, Debug, Default)]
pub struct SetupArgs {
    /// Directory flavour.
    #[arg(long, value_enum)]
    pub flavour: Option<FlavourArg>,
    /// Directory URI (repeat for failover): ldaps://host, or ldap://host, which is then
    /// upgraded with StartTLS.
    #[arg(long = "uri")]
    pub uris: Vec<String>,
    /// CA certificate (PEM) of the directory's certificate; "system" for the system trust
    /// store.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The service account's DN (AD: also user@REALM).
    #[arg(long)]
    pub bind_dn: Option<String>,
    /// A file holding the service account's password (copied to the credential file the
    /// systemd unit loads). On a terminal, a file that does not exist is asked for.
    #[arg(long)]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (default: the directory's naming context).
    #[arg(long)]
    pub base_dn: Option<String>,
    /// OpenLDAP: the default password policy entry; "none" for none (default: the one
    /// found, or among several the one named cn=default).
    #[arg(long)]
    pub ppolicy_dn: Option<String>,
    /// The user the rights check uses (default: the first one found).
    #[arg(long)]
    pub check_user: Option<String>,
    /// Write the configuration even though the service account lacks a right.
    #[arg(long)]
    pub accept_missing_rights: bool,
    /// A host name or address clients use to reach the daemon (repeat). localhost and
    /// 127.0.0.1 are always added, for `ssprd admin` on this host.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// The organisation's name, shown in messages and authenticator apps.
    #[arg(long)]
    pub organization: Option<String>,
    /// The SMTP server for email codes, host[:port] (587 StartTLS, 465 implicit TLS);
    /// "none" for no email.
    #[arg(long)]
    pub smtp: Option<String>,
    /// The sender of the emails.
    #[arg(long)]
    pub mail_from: Option<String>,
    /// CA certificate (PEM) of the SMTP server; "system" for the system trust store.
    #[arg(long)]
    pub smtp_ca_file: Option<PathBuf>,
    /// The common name of the first admin client certificate.
    #[arg(long)]
    pub admin_name: Option<String>,
    /// The web portal's address, https://host[:port]/ (port 8443 when none is given:
    /// the daemon listens there); "none" for no portal.
    #[arg(long)]
    pub portal_url: Option<String>,
    /// Who may reset their password: "all", "none" (not started), or the DNs of groups
    /// separated by ";" (their members, nested membership counts).
    #[arg(long)]
    pub scope: Option<String>,
    /// Replace this existing key or certificate (repeat). Without it, and on a terminal
    /// without a yes, what exists is kept.
    #[arg(long, value_enum)]
    pub replace: Vec<Artifact>,
    /// Never ask; take defaults or fail when an answer is missing.
    #[arg(long)]
    pub non_interactive: bool,
}

/// Why the setup stopped, and its exit code.
#[derive(Debug)]
struct Stop(u8, String);

fn stop<T>(code: u8, message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop(code, message.into()))
}

/// Questions on the terminal, or nobody to ask.
struct Ask {
    interactive: bool,
}

impl Ask {
    fn line(&self, question: &str, default: Option<&str>) -> Result<String, Stop> {
        match default {
            Some(d) if !d.is_empty() => print!("{question} [{d}]: "),
            _ => print!("{question}: "),
        }
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => stop(EX_USAGE, "the input ended before the setup did"),
            Ok(_) => {
                let line = line.trim();
                Ok(if line.is_empty() {
                    default.unwrap_or("").to_string()
                } else {
                    line.to_string()
                })
            }
        }
    }

    fn yes(&self, question: &str, default: bool) -> Result<bool, Stop> {
        if !self.interactive {
            return Ok(default);
        }
        loop {
            let hint = if default { "Y/n" } else { "y/N" };
            match self
                .line(&format!("{question} ({hint})"), None)?
                .to_ascii_lowercase()
                .as_str()
            {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => println!("  Please answer y or n."),
            }
        }
    }

    /// The answer to `question`: the flag's value, else a prompt (repeated until `parse`
    /// accepts it), else the default.
    fn answer<T>(
        &self,
        flag: Option<String>,
        flag_name: &str,
        question: &str,
        default: Option<String>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Stop> {
        if let Some(v) = flag {
            return parse(&v).or_else(|e| stop(EX_USAGE, format!("--{flag_name}: {e}")));
        }
        if !self.interactive {
            return match default {
                Some(d) => {
                    // Said, so a script's log shows what was taken.
                    println!("{question}: {d}");
                    parse(&d).or_else(|e| stop(EX_USAGE, format!("--{flag_name}: {e}")))
                }
                None => stop(
                    EX_USAGE,
                    format!("--{flag_name} is required (there is no terminal to ask on)"),
                ),
            };
        }
        loop {
            let text = self.line(question, default.as_deref())?;
            match parse(&text) {
                Ok(v) => return Ok(v),
                Err(e) => println!("  {e}"),
            }
        }
    }
}

/// The values a configuration file already has, where it is not the package's template.
struct Prior(Option<RawConfig>);

impl Prior {
    fn read(text: Option<&str>) -> Self {
        let parse = |t: &str| toml::from_str::<RawConfig>(t).ok();
        let (Some(mine), Some(template)) = (text.and_then(parse), parse(edit::TEMPLATE)) else {
            return Self(None);
        };
        // A field still at the template's placeholder is not an answer.
        let mut mine = mine;
        let d = &template.directory;
        if mine.directory.bind_dn == d.bind_dn {
            mine.directory.bind_dn.clear();
        }
        if mine.directory.base_dn == d.base_dn {
            mine.directory.base_dn.clear();
        }
        if mine.directory.uris == d.uris {
            mine.directory.uris.clear();
        }
        if mine.directory.ppolicy_dn == d.ppolicy_dn {
            mine.directory.ppolicy_dn.clear();
        }
        if mine.email.host == template.email.host {
            mine.email.host.clear();
        }
        if mine.authenticator.issuer == template.authenticator.issuer {
            mine.authenticator.issuer.clear();
        }
        Self(Some(mine))
    }

    fn get(&self, f: impl Fn(&RawConfig) -> String) -> Option<String> {
        self.0.as_ref().map(f).filter(|s| !s.is_empty())
    }
}

/// `ssprd setup` with the configuration file `config`.
pub fn run(config: &Path, args: SetupArgs) -> ExitCode {
    let ask = Ask {
        interactive: !args.non_interactive && std::io::stdin().is_terminal(),
    };
    match conversation(config, &args, &ask) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop(code, message)) => {
            eprintln!("ssprd setup: {message}");
            ExitCode::from(code)
        }
    }
}

fn not_empty(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("an answer is required".into()),
        t => Ok(t.to_string()),
    }
}

/// A PEM certificate file, "system" (or nothing) for the system trust store.
fn ca_file(s: &str) -> Result<Option<PathBuf>, String> {
    match s.trim() {
        "" | "system" => Ok(None),
        p => crate::tls::read_pem(Path::new(p), "CERTIFICATE").map(|_| Some(PathBuf::from(p))),
    }
}

/// The domain named by a DN's `dc=` parts (`dc=example,dc=org` → `example.org`).
fn dn_domain(dn: &str) -> Option<String> {
    let parts: Vec<&str> = dn
        .split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case("dc").then(|| v.trim())
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn runtime() -> Result<tokio::runtime::Runtime, Stop> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_else(|e| stop(1, format!("tokio runtime: {e}")))
}

fn conversation(config: &Path, args: &SetupArgs, ask: &Ask) -> Result<(), Stop> {
    let layout = Layout::beside(config);
    let existing_text = match std::fs::read_to_string(config) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return stop(EX_CONFIG, format!("cannot read {}: {e}", config.display())),
    };
    if let Some(text) = &existing_text {
        // Said before any question: the answers could not be written into it.
        if let Err(e) = text.parse::<toml_edit::DocumentMut>() {
            return stop(
                EX_CONFIG,
                format!("{} is not valid TOML: {}", config.display(), e.message()),
            );
        }
    }
    let prior = Prior::read(existing_text.as_deref());
    println!(
        "Setting up ssprd in {} ({}).",
        config.display(),
        if existing_text.is_some() {
            "the file exists: its other settings are kept"
        } else {
            "a new file, from the package's commented template"
        }
    );
    let d = the_directory(ask, args, &prior, &layout)?;
    let site = this_server(ask, args, &prior, &d.base_dn)?;
    let plan = keys_plan(ask, args, &layout)?;
    let settings = Settings {
        flavour: d.flavour,
        uris: d.uris,
        ca_file: d.ca,
        bind_dn: d.bind_dn,
        base_dn: d.base_dn,
        ppolicy_dn: d.ppolicy_dn,
        organization: site.organization.clone(),
        email: site.email,
        tls_cert_file: layout.server_cert(),
        client_ca_file: layout.ca_cert(),
        admin_name: site.admin_name.clone(),
        rollout: site.rollout,
        portal: site.portal,
    };
    let new_text = edit::apply(
        existing_text.as_deref().unwrap_or(edit::TEMPLATE),
        &settings,
    )
    .or_else(|e| stop(EX_CONFIG, format!("{}: {e}", config.display())))?;

    write_all(
        &layout,
        &plan,
        &site.hosts,
        &site.organization,
        &site.admin_name,
        &d.password,
        &d.password_path,
    )
    .or_else(|e| stop(EX_CANTCREAT, e))?;
    write_config(config, existing_text.as_deref(), &new_text)?;

    println!("\n— Checking the configuration");
    check_config(config, &layout)?;
    next_steps(config, &layout, &settings, &d.report);
    Ok(())
}

/// The directory's answers, and the rights report they passed (or were accepted with).
struct Directory {
    flavour: Flavour,
    uris: Vec<String>,
    ca: Option<PathBuf>,
    bind_dn: String,
    password: Secret,
    /// Where the password was read from.
    password_path: PathBuf,
    base_dn: String,
    ppolicy_dn: Option<String>,
    report: crate::directory::rights::RightsReport,
}

/// The directory and its service account: asked, discovered, and the rights checked.
/// Stops (77) when a right is missing and the admin does not go on.
fn the_directory(
    ask: &Ask,
    args: &SetupArgs,
    prior: &Prior,
    layout: &Layout,
) -> Result<Directory, Stop> {
    println!("\n— The directory");

    let flavour: Flavour = ask.answer(
        args.flavour.map(|f| format!("{f:?}")),
        "flavour",
        "Directory: openldap or active-directory (also Samba AD)",
        Some(
            match prior.0.as_ref().map(|r| r.directory.flavour) {
                Some(Flavour::ActiveDirectory) => "active-directory",
                _ => "openldap",
            }
            .into(),
        ),
        |s| match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "openldap" => Ok(Flavour::Openldap),
            "activedirectory" | "active-directory" | "ad" | "samba" => Ok(Flavour::ActiveDirectory),
            other => Err(format!("{other:?}: answer openldap or active-directory")),
        },
    )?;
    let uris: Vec<String> = ask.answer(
        (!args.uris.is_empty()).then(|| args.uris.join(" ")),
        "uri",
        "Directory URIs, tried in order (ldaps://host, or ldap://host with StartTLS)",
        prior.get(|r| r.directory.uris.join(" ")),
        |s| {
            let uris: Vec<String> = s.split_whitespace().map(str::to_string).collect();
            if uris.is_empty() {
                return Err("at least one URI is required".into());
            }
            for u in &uris {
                let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                if !matches!(scheme.as_deref(), Some("ldaps" | "ldap")) {
                    return Err(format!("{u:?} must start with ldaps:// or ldap://"));
                }
            }
            Ok(uris)
        },
    )?;
    let ca = ask.answer(
        args.ca_file.as_ref().map(|p| p.display().to_string()),
        "ca-file",
        "CA certificate of the directory, a PEM file (empty: the system trust store)",
        Some(
            prior
                .get(|r| {
                    r.directory
                        .ca_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
        ),
        ca_file,
    )?;
    let bind_dn = ask.answer(
        args.bind_dn.clone(),
        "bind-dn",
        "Service account DN (AD: also user@REALM)",
        prior.get(|r| r.directory.bind_dn.clone()),
        not_empty,
    )?;
    let password_path: PathBuf = ask.answer(
        args.bind_password_file
            .as_ref()
            .map(|p| p.display().to_string()),
        "bind-password-file",
        "File holding its password (asked for next when it does not exist)",
        Some(layout.bind_password().display().to_string()),
        |s| not_empty(s).map(PathBuf::from),
    )?;
    let password = if password_path.exists() {
        SecretSource::File(password_path.clone())
            .read()
            .or_else(|e| stop(EX_USAGE, e))?
    } else if ask.interactive {
        let p = rpassword::prompt_password(format!("Password of {bind_dn} (not shown): "))
            .or_else(|e| stop(EX_USAGE, format!("cannot read the password: {e}")))?;
        Secret::new(p)
    } else {
        return stop(
            EX_USAGE,
            format!("{}: no such file", password_path.display()),
        );
    };
    if password.is_empty() {
        return stop(EX_USAGE, "the service account's password is empty");
    }

    let (filter, login) = edit::user_search(flavour);
    let raw = RawDirectory {
        flavour,
        uris: uris.clone(),
        ca_file: ca.clone(),
        starttls: uris
            .iter()
            .any(|u| u.to_ascii_lowercase().starts_with("ldap://")),
        bind_dn: bind_dn.clone(),
        // Checked for real below; the section's validation only needs one.
        base_dn: "dc=invalid".into(),
        user_filter: filter.into(),
        login_attribute: login.into(),
        bind_password: Some(SecretSource::File("/dev/null".into())),
        ..RawDirectory::default()
    };
    let mut p = crate::problems::Problems::new();
    let mut cfg = raw.validate(&mut p, 5_000);
    let problems: Vec<String> = p
        .into_vec()
        .into_iter()
        .filter(|m| !m.starts_with("directory.bind_password"))
        .collect();
    if !problems.is_empty() {
        return stop(EX_USAGE, problems.join("\n  "));
    }
    cfg.bind_password = password.clone();
    let rt = runtime()?;
    println!("Connecting to {} as {bind_dn} …", uris.join(" "));
    let found = {
        let d = LdapDirectory::new(cfg.clone()).or_else(|e| stop(EX_USAGE, e.to_string()))?;
        rt.block_on(d.discover())
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            println!("  The directory could not be read: {e}");
            Default::default()
        }
    };
    let base_dn = ask.answer(
        args.base_dn.clone(),
        "base-dn",
        "Where users are searched (base DN)",
        prior
            .get(|r| r.directory.base_dn.clone())
            .or(found.naming_context.clone()),
        not_empty,
    )?;
    let ppolicy_dn = match flavour {
        Flavour::ActiveDirectory => None,
        Flavour::Openldap => {
            if found.password_policies.len() > 1 {
                println!("  Password policies found:");
                for p in &found.password_policies {
                    println!("    {p}");
                }
            }
            // The only one, or among several the one named "default".
            let only = match found.password_policies.as_slice() {
                [one] => Some(one.clone()),
                many => many
                    .iter()
                    .find(|dn| dn.to_ascii_lowercase().starts_with("cn=default,"))
                    .cloned(),
            };
            ask.answer(
                args.ppolicy_dn.clone(),
                "ppolicy-dn",
                "Default password policy entry (ppolicy; \"none\" for none)",
                prior
                    .get(|r| r.directory.ppolicy_dn.clone())
                    .or(only)
                    .or(Some("none".into())),
                |s| {
                    Ok(match s.trim() {
                        "" | "none" => None,
                        dn => Some(dn.to_string()),
                    })
                },
            )?
        }
    };
    cfg.base_dn = base_dn.clone();
    cfg.ppolicy_dn = ppolicy_dn.clone().unwrap_or_default();

    println!("\n— The service account's rights (nothing is changed)");
    let report = {
        let d = LdapDirectory::new(cfg).or_else(|e| stop(EX_USAGE, e.to_string()))?;
        rt.block_on(d.check_rights(args.check_user.as_deref()))
    };
    print!("{}", report.render());
    if !report.complete() {
        let go_on = args.accept_missing_rights
            || ask.yes(
                "The service account lacks a right: resets will fail until it is granted. \
                 Write the configuration anyway?",
                false,
            )?;
        if !go_on {
            return stop(
                EX_NOPERM,
                "the service account lacks a right (above); nothing was written. Grant it and \
                 run the setup again (or pass --accept-missing-rights).",
            );
        }
    }

    Ok(Directory {
        flavour,
        uris,
        ca,
        bind_dn,
        password,
        password_path,
        base_dn,
        ppolicy_dn,
        report,
    })
}

/// How clients reach the daemon, and the site's answers.
struct Site {
    hosts: Vec<String>,
    organization: String,
    email: Option<Email>,
    rollout: Rollout,
    admin_name: String,
    portal: Option<edit::Portal>,
}

fn this_server(ask: &Ask, args: &SetupArgs, prior: &Prior, base_dn: &str) -> Result<Site, Stop> {
    println!("\n— This server");
    let mut hosts: Vec<String> = ask.answer(
        (!args.hosts.is_empty()).then(|| args.hosts.join(" ")),
        "host",
        "Host names clients use to reach ssprd, separated by spaces",
        Some(host_name()),
        |s| {
            let hosts: Vec<String> = s.split_whitespace().map(str::to_string).collect();
            match hosts.iter().find(|h| {
                h.parse::<std::net::IpAddr>().is_err()
                    && !h
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*')
            }) {
                Some(bad) => Err(format!("{bad:?} is not a host name or address")),
                None if hosts.is_empty() => Err("at least one host name is required".into()),
                None => Ok(hosts),
            }
        },
    )?;
    // Users need a page more than kiosks need gRPC: a first setup proposes the portal on
    // the first host name; a setup run again keeps what the configuration says.
    let proposed = match prior.get(|r| match r.portal.enabled {
        true => r.portal.public_url.clone(),
        false => "none".into(),
    }) {
        Some(earlier) => earlier,
        None => hosts
            .iter()
            .find(|h| !h.contains('*') && h.parse::<std::net::IpAddr>().is_err())
            .map_or_else(|| "none".into(), |h| format!("https://{h}:8443/")),
    };
    let portal = ask.answer(
        args.portal_url.clone(),
        "portal-url",
        "The web portal's address users open in a browser, https://host[:port]/ (\"none\": no portal)",
        Some(proposed),
        portal_url,
    )?;
    // The portal is served with the server certificate (until the admin gives it one
    // browsers trust): it names the portal's host too.
    if let Some(p) = &portal
        && let Some(host) = url::Url::parse(&p.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        && !hosts.contains(&host)
    {
        hosts.push(host);
    }
    for h in ["localhost", "127.0.0.1"] {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.into());
        }
    }
    let domain = dn_domain(base_dn);
    let organization = ask.answer(
        args.organization.clone(),
        "organization",
        "Organisation name, shown in emails and authenticator apps",
        prior
            .get(|r| r.authenticator.issuer.clone())
            .or(domain.clone())
            .or(Some("ssprd".into())),
        not_empty,
    )?;
    let smtp = ask.answer(
        args.smtp.clone(),
        "smtp",
        "SMTP server for email codes, host[:port] (\"none\": no email)",
        Some(
            prior
                .get(|r| format!("{}:{}", r.email.host, r.email.port))
                .filter(|s| !s.starts_with(':'))
                .unwrap_or_else(|| "none".into()),
        ),
        |s| match s.trim() {
            "" | "none" => Ok(None),
            hp => {
                let (host, port) = match hp.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .map_err(|_| format!("{p:?} is not a port number"))?,
                    ),
                    None => (hp, 587),
                };
                if host.is_empty() || host.contains(char::is_whitespace) {
                    return Err(format!("{hp:?} is not host[:port]"));
                }
                Ok(Some((host.to_string(), port)))
            }
        },
    )?;
    let email = match smtp {
        None => None,
        Some((host, port)) => {
            let mail_domain = domain
                .clone()
                .unwrap_or_else(|| host.split_once('.').map_or(host.clone(), |(_, d)| d.into()));
            let from = ask.answer(
                args.mail_from.clone(),
                "mail-from",
                "Sender of the emails",
                prior
                    .get(|r| r.email.from.clone())
                    .filter(|f| !f.contains("example.org"))
                    .or(Some(format!("{organization} <no-reply@{mail_domain}>"))),
                |s| match not_empty(s) {
                    Ok(f) if f.contains('@') => Ok(f),
                    Ok(f) => Err(format!("{f:?} is not an address")),
                    Err(e) => Err(e),
                },
            )?;
            let ca_file = ask.answer(
                args.smtp_ca_file.as_ref().map(|p| p.display().to_string()),
                "smtp-ca-file",
                "CA certificate of the SMTP server, a PEM file (empty: the system trust store)",
                Some(
                    prior
                        .get(|r| {
                            r.email
                                .ca_file
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default()
                        })
                        .unwrap_or_default(),
                ),
                ca_file,
            )?;
            Some(Email {
                host,
                port,
                from,
                ca_file,
            })
        }
    };
    let rollout = ask.answer(
        args.scope.clone(),
        "scope",
        "Who may reset their password: all, none (not yet), or group DNs separated by \";\"",
        Some(
            prior
                .0
                .as_ref()
                .map(|r| match r.policy.scope {
                    crate::policy::Scope::None => "none".to_string(),
                    crate::policy::Scope::All => "all".to_string(),
                    crate::policy::Scope::Selected => r.policy.scope_groups.join("; "),
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "all".into()),
        ),
        |s| match s.trim() {
            "all" => Ok(Rollout::All),
            "none" => Ok(Rollout::None),
            groups => {
                let groups: Vec<String> = groups
                    .split(';')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect();
                match groups.iter().find(|g| !g.contains('=')) {
                    _ if groups.is_empty() => Err("answer all, none or group DNs".into()),
                    Some(bad) => Err(format!(
                        "{bad:?} is not a DN (answer all, none or group DNs)"
                    )),
                    None => Ok(Rollout::Groups(groups)),
                }
            }
        },
    )?;
    let admin_name = ask.answer(
        args.admin_name.clone(),
        "admin-name",
        "Name (certificate common name) of the first administrator's client certificate",
        Some("ssprd-admin".into()),
        |s| match not_empty(s) {
            Ok(n) if n.chars().all(|c| c.is_ascii_graphic()) => Ok(n),
            Ok(n) => Err(format!(
                "{n:?}: use letters, digits and punctuation, no spaces"
            )),
            Err(e) => Err(e),
        },
    )?;

    Ok(Site {
        hosts,
        organization,
        email,
        rollout,
        admin_name,
        portal,
    })
}

/// A portal address: `none`, or https://host[:port]/ (the port it listens on: the one
/// given, else 8443).
fn portal_url(s: &str) -> Result<Option<edit::Portal>, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(None);
    }
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if u.scheme() != "https" || u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?}: give https://host[:port]/"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{s:?}: the portal is served at the root; give no path"
        ));
    }
    Ok(Some(edit::Portal {
        public_url: u.to_string(),
        port: u.port().unwrap_or(8443),
    }))
}

/// What to do with each key and certificate: kept unless the admin says otherwise.
fn keys_plan(ask: &Ask, args: &SetupArgs, layout: &Layout) -> Result<files::Plan, Stop> {
    println!("\n— Keys and certificates in {}", layout.dir.display());
    let existing = Existing::on_disk(layout);
    let mut asked = Ok(());
    let plan = files::plan(existing, |a| {
        if args.replace.contains(&a) {
            return true;
        }
        let warning = match a {
            Artifact::SealingKey => {
                " Every registered authenticator app would stop working (users enrol again)."
            }
            Artifact::Ca => " Clients must then trust the new CA and get new certificates.",
            _ => "",
        };
        match ask.yes(
            &format!("{} exists.{warning} Replace it?", capitalise(a.describe())),
            false,
        ) {
            Ok(yes) => yes,
            Err(e) => {
                asked = Err(e);
                false
            }
        }
    });
    asked?;
    Ok(plan)
}

/// Writes `new` to `config` (mode 0640, the directory's group) unless it is what is
/// there; a previous file is kept as `<name>.bak`.
fn write_config(config: &Path, old: Option<&str>, new: &str) -> Result<(), Stop> {
    let gid = config.parent().and_then(files::group_of);
    if old == Some(new) {
        println!("  {} unchanged", config.display());
        return Ok(());
    }
    if let Some(old) = old {
        let backup = config.with_extension("toml.bak");
        files::write(&backup, old.as_bytes(), 0o640, gid).or_else(|e| stop(EX_CANTCREAT, e))?;
        println!(
            "  {} (the previous one: {})",
            config.display(),
            backup.display()
        );
    } else {
        println!("  {}", config.display());
    }
    files::write(config, new.as_bytes(), 0o640, gid).or_else(|e| stop(EX_CANTCREAT, e))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Generates and writes what the plan says, and the password's credential file.
fn write_all(
    l: &Layout,
    plan: &files::Plan,
    hosts: &[String],
    organization: &str,
    admin_name: &str,
    password: &Secret,
    password_path: &Path,
) -> Result<(), String> {
    let gid = files::group_of(&l.dir);
    if !l.dir.is_dir() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o750)
            .create(&l.dir)
            .map_err(|e| format!("cannot create {}: {e}", l.dir.display()))?;
    }
    let gid = gid.or_else(|| files::group_of(&l.dir));
    files::ensure_dir(&l.tls(), 0o750, gid)?;
    files::ensure_dir(&l.admin(), 0o700, None)?;
    let said = |what: &str, path: &Path, action: Action| {
        let verb = match action {
            Action::Keep => "kept",
            Action::Create => "created",
            Action::Replace => "replaced",
        };
        println!("  {what}: {} ({verb})", path.display());
    };

    // The CA first: the certificates are signed with it.
    let ca = match plan.ca {
        Action::Keep => None,
        _ => {
            let pair = pki::new_ca(&format!("ssprd CA ({organization})"))?;
            files::write(&l.ca_key(), pair.key_pem.expose().as_bytes(), 0o600, gid)?;
            files::write(&l.ca_cert(), pair.cert_pem.as_bytes(), 0o644, gid)?;
            Some(pair)
        }
    };
    said("CA", &l.ca_cert(), plan.ca);
    let signer = || -> Result<pki::Ca, String> {
        match &ca {
            Some(pair) => pki::Ca::load(&pair.cert_pem, pair.key_pem.expose()),
            None => {
                let cert = std::fs::read_to_string(l.ca_cert())
                    .map_err(|e| format!("{}: {e}", l.ca_cert().display()))?;
                let key = Secret::new(
                    std::fs::read_to_string(l.ca_key())
                        .map_err(|e| format!("{}: {e}", l.ca_key().display()))?,
                );
                pki::Ca::load(&cert, key.expose())
            }
        }
    };
    if plan.server != Action::Keep {
        let pair = signer()?.server(hosts)?;
        files::write(
            &l.server_key(),
            pair.key_pem.expose().as_bytes(),
            0o600,
            gid,
        )?;
        files::write(&l.server_cert(), pair.cert_pem.as_bytes(), 0o644, gid)?;
    }
    said(
        &format!("server certificate for {}", hosts.join(", ")),
        &l.server_cert(),
        plan.server,
    );
    if plan.admin != Action::Keep {
        let pair = signer()?.client(admin_name)?;
        files::write(
            &l.admin_key(),
            pair.key_pem.expose().as_bytes(),
            0o600,
            None,
        )?;
        files::write(&l.admin_cert(), pair.cert_pem.as_bytes(), 0o600, None)?;
    }
    said(
        &format!("admin client certificate {admin_name:?}"),
        &l.admin_cert(),
        plan.admin,
    );
    if plan.sealing_key != Action::Keep {
        files::write(
            &l.sealing_key(),
            pki::sealing_key().expose().as_bytes(),
            0o600,
            gid,
        )?;
    }
    said(
        "authenticator sealing key",
        &l.sealing_key(),
        plan.sealing_key,
    );
    // The password the rights check used goes where the unit loads it from.
    let target = l.bind_password();
    let same = std::fs::canonicalize(password_path).ok() == std::fs::canonicalize(&target).ok()
        && target.exists();
    if !same {
        let action = if target.exists() {
            Action::Replace
        } else {
            Action::Create
        };
        files::write(&target, password.expose().as_bytes(), 0o600, gid)?;
        said("service account password", &target, action);
    } else {
        said("service account password", &target, Action::Keep);
    }
    Ok(())
}

/// Runs `ssprd check-config` on the written file, with the credentials where systemd puts
/// them (`$CREDENTIALS_DIRECTORY`, a private directory of links for the run).
fn check_config(config: &Path, l: &Layout) -> Result<(), Stop> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).expect("the system's random source");
    let creds = std::env::temp_dir().join(format!("ssprd-setup-{}", hex::encode(nonce)));
    files::ensure_dir(&creds, 0o700, None).or_else(|e| stop(EX_CANTCREAT, e))?;
    let result = (|| {
        for (name, file) in l.credentials() {
            let target = std::fs::canonicalize(&file).unwrap_or(file);
            std::os::unix::fs::symlink(&target, creds.join(name))
                .map_err(|e| format!("{}: {e}", creds.display()))?;
        }
        let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
        std::process::Command::new(exe)
            .args(["check-config", "--config"])
            .arg(config)
            .env("CREDENTIALS_DIRECTORY", &creds)
            .output()
            .map_err(|e| format!("cannot run check-config: {e}"))
    })();
    let _ = std::fs::remove_dir_all(&creds);
    let out = result.or_else(|e| stop(1, e))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if out.status.success() {
        Ok(())
    } else {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        stop(
            EX_CONFIG,
            format!(
                "{} was written but does not pass check-config (above): fix it and run \
                 `ssprd check-config` again",
                config.display()
            ),
        )
    }
}

fn next_steps(
    config: &Path,
    l: &Layout,
    s: &Settings,
    report: &crate::directory::rights::RightsReport,
) {
    let mut steps = Vec::new();
    if !report.complete() {
        steps.push(
            "Grant the service account the rights marked MISSING above, then check with \
             `ssprd check-directory`."
                .to_string(),
        );
    }
    if l.dir != Path::new("/etc/ssprd") {
        steps.push(format!(
            "The systemd unit loads its credentials from /etc/ssprd: point its \
             LoadCredential= lines at {} (`systemctl edit ssprd`).",
            l.dir.display()
        ));
    }
    steps.push("Start the daemon: systemctl enable --now ssprd".into());
    let admin_flags = if config == Path::new(crate::config::DEFAULT_CONFIG_PATH) {
        String::new()
    } else {
        format!(" --config {}", config.display())
    };
    steps.push(format!(
        "See where you stand: ssprd admin{admin_flags} status (as root; it uses {} and {})",
        l.admin_cert().display(),
        l.ca_cert().display()
    ));
    steps.push(match &s.rollout {
        Rollout::None => "Nobody may use self-service yet: when ready, `ssprd admin policy set` \
                          with a pilot group, then everyone."
            .into(),
        Rollout::Groups(g) => format!(
            "Members of {} may use self-service; widen it with `ssprd admin policy set`.",
            g.join(", ")
        ),
        Rollout::All => "Everyone in the directory's scope may use self-service; tell users \
                         to register their methods."
            .into(),
    });
    if s.email.is_none() {
        steps.push(
            "Email codes are off: set [email] (or run the setup again) to offer them.".into(),
        );
    }
    if let Some(p) = &s.portal {
        steps.push(format!(
            "The portal ({}) uses the server certificate from the setup's CA, which browsers \
             do not trust: give it one from your organisation's or a public CA ([portal] \
             tls_cert_file and tls_key), or trust {} on managed devices.",
            p.public_url,
            l.ca_cert().display()
        ));
        if url::Url::parse(&p.public_url).is_ok_and(|u| u.port().is_none()) {
            steps.push(format!(
                "The portal listens on port {}: forward 443 to it, or serve it behind your \
                 reverse proxy ([portal] trusted_proxies).",
                p.port
            ));
        }
    }
    steps.push(format!(
        "Kiosks and portals trust {} and need a client certificate from that CA: ssprd \
         client-cert{admin_flags} kiosk-01 --role kiosk",
        l.ca_cert().display()
    ));
    println!("\nDone. Next:");
    for (i, step) in steps.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_addresses_are_https_origins() {
        let p = portal_url("https://sspr.corp.test/").unwrap().unwrap();
        assert_eq!(
            (p.public_url.as_str(), p.port),
            ("https://sspr.corp.test/", 8443)
        );
        let p = portal_url("https://sspr.corp.test:9443").unwrap().unwrap();
        assert_eq!(
            (p.public_url.as_str(), p.port),
            ("https://sspr.corp.test:9443/", 9443)
        );
        assert_eq!(portal_url("none").unwrap(), None);
        for bad in [
            "http://sspr.corp.test/",
            "https://sspr.corp.test/reset",
            "sspr",
        ] {
            assert!(portal_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains_come_from_dc_parts() {
        assert_eq!(
            dn_domain("ou=people,dc=example,dc=org").as_deref(),
            Some("example.org")
        );
        assert_eq!(dn_domain("DC=corp, DC=test").as_deref(), Some("corp.test"));
        assert_eq!(dn_domain("o=corp"), None);
    }

    #[test]
    fn ca_files_are_checked_when_named() {
        assert_eq!(ca_file("").unwrap(), None);
        assert_eq!(ca_file("system").unwrap(), None);
        assert!(
            ca_file("/nonexistent.pem")
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn template_placeholders_are_no_answers() {
        let prior = Prior::read(Some(edit::TEMPLATE));
        assert_eq!(prior.get(|r| r.directory.bind_dn.clone()), None);
        assert_eq!(prior.get(|r| r.directory.uris.join(" ")), None);
        let mine = edit::TEMPLATE.replace(
            "bind_dn = \"cn=sspr,ou=services,dc=example,dc=org\"",
            "bind_dn = \"cn=me\"",
        );
        let prior = Prior::read(Some(&mine));
        assert_eq!(
            prior.get(|r| r.directory.bind_dn.clone()).as_deref(),
            Some("cn=me")
        );
    }
}
