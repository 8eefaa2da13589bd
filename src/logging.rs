//! The `[log]` section and the process's log output (`tracing` to standard output, where
//! systemd's journal picks it up): colours only on a terminal, never in a file or the
//! journal.

use crate::problems::Problems;
use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The `[log]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `ssprd=debug,info`. `RUST_LOG` wins.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl RawLog {
    /// Checks the `[log]` section into `p`.
    pub fn validate(&self, p: &mut Problems) {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            p.bad(
                "log.level",
                format!("{:?} is not a tracing filter directive", self.level),
            );
        }
    }
}

/// Starts logging at `level` (a `tracing` filter directive; `RUST_LOG` wins) in `format`.
pub fn init(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
