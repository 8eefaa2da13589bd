//! Crash points for the crash-consistency tests: in debug builds, a process started with
//! `SSPRD_FAILPOINT=<name>` aborts (like a power cut: no unwinding, no cleanup) when it
//! reaches the point called `name`. Release builds compile [`hit`] to nothing.
//!
//! Points: `complete.intent` (the write intent is stored, the directory not yet written),
//! `complete.after_write` (the directory accepted the password, the flow is not yet marked
//! used), `complete.after_commit` (the flow is used, the client not yet answered),
//! `outbox.after_send` (a provider accepted a notification that is still in the outbox).

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
