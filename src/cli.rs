//! Command line: `ssprd serve`, `ssprd setup`, `ssprd client-cert`, `ssprd check-config`,
//! `ssprd check-directory`, `ssprd audit`, `ssprd backup`, `ssprd admin` (see
//! [`crate::admin_cli`]), `ssprd demo`.

use crate::config::{self, Config, DEFAULT_CONFIG_PATH};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "ssprd", version, about = "Self-service password reset daemon")]
pub struct Cli {
    /// Configuration file (TOML). `SSPRD_*` environment variables override it.
    #[arg(long, short, global = true, env = "SSPRD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Serve,
    /// Validate the configuration (and read the secret files) and exit.
    CheckConfig,
    /// Check the service account's rights in the directory without changing anything:
    /// bind, find users, read the password policy, set passwords, unlock, require a change.
    /// Reads only `[directory]`. Exit codes: 0 every right granted, 77 one is missing, 78
    /// the section is invalid.
    CheckDirectory {
        /// Check against this user (default: the first user found other than the service
        /// account).
        #[arg(long)]
        user: Option<String>,
    },
    /// Guided first run: asks for the directory and its service account, checks the
    /// account's rights, generates the CA, server and admin certificates and the sealing
    /// key that are missing, writes the configuration and secret files, runs check-config
    /// and prints the next steps. Every answer is also a flag. Exit codes: 64 an answer is
    /// missing, 73 a file could not be written, 77 the service account lacks a right
    /// (nothing written), 78 the result does not pass check-config.
    Setup(crate::setup::SetupArgs),
    /// Issue a client certificate (kiosk, portal, helpdesk or admin) from the CA `ssprd
    /// setup` made, and add its [[clients]] entry. Exit codes: 65 the name has another
    /// role, 66 no CA or configuration (run setup first), 73 a file could not be written
    /// or the certificate exists (--replace), 78 the result does not pass check-config.
    ClientCert(crate::setup::client::ClientCertArgs),
    /// Audit log tools. They open the database: stop the daemon first (or work on a copy).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Back up or restore the database. They open it: stop the daemon first.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Administer a running daemon over gRPC (client certificate with the admin or helpdesk
    /// role). Exit codes: 65 invalid input, 66 no such user, 69 unavailable, 75 changed
    /// meanwhile (retry), 77 not permitted.
    Admin {
        #[command(flatten)]
        connection: crate::admin_cli::Connection,
        #[command(subcommand)]
        command: crate::admin_cli::AdminCommand,
    },
    /// Start a throwaway OpenLDAP with a demo user and run the daemon against it.
    #[cfg(feature = "demo")]
    Demo {
        /// gRPC port on 127.0.0.1.
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Keep the demo directory and database after exit (printed at start).
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Copy every record to a new file (mode 0600; it holds the server keys and answer
    /// hashes: keep it as safe as the database).
    Create {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into `store.path`, which must be empty or absent (move a damaged
    /// database away first).
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain; prints the record count and the head hash. Exit 65 when broken.
    Verify,
    /// Print the records as JSON lines (after verifying the chain).
    Export {
        /// Only records at or after this Unix time.
        #[arg(long)]
        since: Option<u64>,
    },
}

/// Exit codes: 0 ok, 1 runtime failure, 2 usage, 65 audit chain broken (EX_DATAERR),
/// 78 configuration error (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
const EXIT_DATAERR: u8 = 65;
/// A right the directory does not grant (sysexits EX_NOPERM).
const EXIT_NOPERM: u8 = 77;

fn load(path: &std::path::Path) -> Result<Config, String> {
    let raw = config::load(path, true).map_err(|e| e.to_string())?;
    raw.validate().map_err(|e| e.to_string())
}

/// `ssprd check-directory`: the rights report of the `[directory]` section's account.
fn check_directory(path: &std::path::Path, user: Option<&str>) -> ExitCode {
    let raw = match config::load(path, true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut p = crate::problems::Problems::new();
    let dir = raw
        .directory
        .validate(&mut p, raw.server.request_timeout_ms);
    if !p.is_empty() {
        for problem in p.into_vec() {
            eprintln!("  - {problem}");
        }
        return ExitCode::from(EXIT_CONFIG);
    }
    let (uris, bind_dn) = (dir.uris.join(" "), dir.bind_dn.clone());
    let directory = match crate::directory::ldap::LdapDirectory::new(dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let report = runtime().block_on(directory.check_rights(user));
    println!("directory {uris} as {bind_dn}");
    print!("{}", report.render());
    if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOPERM)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Admin {
            connection,
            command,
        } => crate::admin_cli::run(connection.or_setup_files(&cli.config), command),
        Command::CheckConfig => match load(&cli.config) {
            Ok(_) => {
                println!("{}: configuration is valid", cli.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Setup(args) => crate::setup::run(&cli.config, args),
        Command::ClientCert(args) => crate::setup::client::issue_client(&cli.config, args),
        Command::CheckDirectory { user } => check_directory(&cli.config, user.as_deref()),
        Command::Serve => {
            let cfg = match load(&cli.config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            crate::logging::init(cfg.log.format, &cfg.log.level);
            let rt = runtime();
            let code = rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(cfg.server.listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(listen = %cfg.server.listen, error = %e, "cannot listen");
                        return ExitCode::FAILURE;
                    }
                };
                match crate::serve(cfg, listener, crate::server::shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "ssprd stopped");
                        eprintln!("ssprd: {e}");
                        ExitCode::FAILURE
                    }
                }
            });
            // Blocking work still running (a flush, a backup) gets a moment, not forever: a
            // stop must end inside the unit's TimeoutStopSec.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            code
        }
        Command::Audit { command } => {
            // Only the store path is needed: no secrets, no TLS files.
            let raw = match config::load(&cli.config, true) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            runtime().block_on(audit(&raw.store.path, command))
        }
        Command::Backup { command } => {
            let raw = match config::load(&cli.config, true) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            backup(&raw.store.path, command)
        }
        #[cfg(feature = "demo")]
        Command::Demo { port, keep } => {
            crate::logging::init(crate::logging::LogFormat::Text, "info");
            runtime().block_on(crate::demo::demo(port, keep))
        }
    }
}

fn backup(path: &std::path::Path, command: BackupCommand) -> ExitCode {
    use crate::store::sled::SledStore;
    let result = match &command {
        BackupCommand::Create { out } => {
            if !path.exists() {
                eprintln!("ssprd backup: no database at {}", path.display());
                return ExitCode::FAILURE;
            }
            SledStore::backup(path, out).map(|n| {
                println!("{n} records written to {}", out.display());
            })
        }
        BackupCommand::Restore { from } => SledStore::restore(from, path).map(|n| {
            println!(
                "{n} records restored into {}; check the audit log with `ssprd audit verify`",
                path.display()
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssprd backup: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn audit(path: &std::path::Path, command: AuditCommand) -> ExitCode {
    use crate::store::AuditLog;
    let store = match crate::store::sled::SledStore::open(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ssprd audit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (anchor, records) = match store.audit_log().await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ssprd audit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verified = match crate::audit::verify(&anchor, records.iter().cloned()) {
        Ok(v) => v,
        Err(broken) => {
            eprintln!("{broken}");
            return ExitCode::from(EXIT_DATAERR);
        }
    };
    match command {
        AuditCommand::Verify => {
            println!(
                "audit log intact: {} records after #{}, head {}",
                verified.records, anchor.seq, verified.head
            );
        }
        AuditCommand::Export { since } => {
            for r in records
                .iter()
                .filter(|r| since.is_none_or(|t| r.event.at >= t))
            {
                println!("{}", serde_json::to_string(r).expect("records serialise"));
            }
        }
    }
    ExitCode::SUCCESS
}
