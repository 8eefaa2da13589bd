//! `ssprd setup` on a pseudo-terminal (rexpect): what a person at the console sees and
//! types.

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

/// `ssprd setup --config config extra…` on a new pty (30 s per expectation).
pub fn setup_on_a_terminal(config: &Path, extra: &[&str]) -> PtySession {
    let mut cmd = Command::new(BIN);
    cmd.args(["setup", "--config", config.to_str().unwrap()])
        .args(extra)
        .env_remove("SSPRD_CONFIG");
    rexpect::session::spawn_command(cmd, Some(30_000)).expect("spawn ssprd setup on a pty")
}

/// Expects `prompt` (and its default, when given), answers `answer`.
pub fn reply(p: &mut PtySession, prompt: &str, answer: &str) {
    p.exp_string(prompt)
        .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
    p.send_line(answer).unwrap();
}

/// The exit code once the setup ends, and what it printed after the last expectation.
pub fn exit_code(p: &mut PtySession) -> (i32, String) {
    let rest = p.exp_eof().unwrap_or_default();
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => (code, rest),
        other => panic!("setup ended with {other:?}:\n{rest}"),
    }
}

/// `ssprd setup --non-interactive --config config extra…` without a terminal.
pub fn setup_without_terminal(config: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args([
            "setup",
            "--non-interactive",
            "--config",
            config.to_str().unwrap(),
        ])
        .args(extra)
        .env_remove("SSPRD_CONFIG")
        .output()
        .unwrap()
}
