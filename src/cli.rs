//! Command line: `ssprd serve`, `ssprd check-config`, `ssprd demo`.

use crate::config::{self, Config, DEFAULT_CONFIG_PATH, LogFormat};
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
    /// Start a throwaway OpenLDAP with a demo user and run the daemon against it.
    Demo {
        /// gRPC port on 127.0.0.1.
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Keep the demo directory and database after exit (printed at start).
        #[arg(long)]
        keep: bool,
    },
}

/// Exit codes: 0 ok, 1 runtime failure, 2 usage, 78 configuration error (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn load(path: &std::path::Path) -> Result<Config, String> {
    let raw = config::load(path, true).map_err(|e| e.to_string())?;
    raw.validate().map_err(|e| e.to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The one rustls crypto provider of the process.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn main() -> ExitCode {
    install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
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
        Command::Serve => {
            let cfg = match load(&cli.config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            init_logging(cfg.log.format, &cfg.log.level);
            runtime().block_on(async move {
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
            })
        }
        Command::Demo { port, keep } => {
            init_logging(LogFormat::Text, "info");
            runtime().block_on(crate::testbed::demo(port, keep))
        }
    }
}
