//! Fault points for the crash and fault tests: in debug builds, a process started with
//! `SSPRD_FAILPOINT=<name>` misbehaves at the point called `name`. Release builds compile
//! every point to nothing.
//!
//! Crash points ([`hit`]: abort, like a power cut — no unwinding, no cleanup):
//! `complete.intent` (the write intent is stored, the directory not yet written),
//! `complete.after_write` (the directory accepted the password, the flow is not yet marked
//! used), `directory.before_must_change` (the password is written, "change at next
//! sign-in" not yet set), `complete.after_commit` (the flow is used, the client not yet
//! answered),
//! `outbox.after_send` (a provider accepted a notification that is still in the outbox),
//! `verify.after_attempt` (a proof took an attempt from the account's budget and is not
//! yet checked).
//!
//! Faults ([`active`], [`delay`]): `complete.reply_lost` (the directory applied the password
//! write but its reply is treated as lost: an ambiguous outcome), `complete.slow_write` (the
//! write starts only after `SSPRD_FAILPOINT_DELAY_MS`, so a gRPC deadline expires mid-write),
//! `directory.slow_write` (the same pause with the directory connection open and bound, so a
//! test can freeze the directory between the bind and the write),
//! `listener.ignore_file_limit` (the connection cap is not fitted to the open-file limit, so
//! a test can run the daemon out of file descriptors).

/// Aborts the process here when this debug build was told to (see the module docs).
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("SSPRD_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("ssprd: failpoint {name} reached: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// True when this debug build was told to fail at `name` (a fault the caller simulates, such
/// as a lost reply), never in a release build.
pub fn active(name: &str) -> bool {
    #[cfg(debug_assertions)]
    return std::env::var("SSPRD_FAILPOINT").is_ok_and(|v| v == name);
    #[cfg(not(debug_assertions))]
    {
        let _ = name;
        false
    }
}

/// Waits `SSPRD_FAILPOINT_DELAY_MS` (default 3000) when this debug build was told to stall
/// at `name` — a directory that is slow to take a write. Never in a release build.
pub async fn delay(name: &str) {
    if active(name) {
        let ms = std::env::var("SSPRD_FAILPOINT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000);
        eprintln!("ssprd: failpoint {name} reached: stalling {ms} ms");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
