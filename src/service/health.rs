//! Readiness: whether this daemon can do its work now — the store takes writes, the
//! directory answers the service account, and notifications are not stuck in the outbox.
//!
//! The daemon checks it in the background (`server`, `management`) and reports it on `/readyz`
//! and as the gRPC health status. The decision about the outbox is pure
//! ([`outbox_state`]); the checks of the store and the directory are one call each.

use super::Service;
use crate::store::OutboxItem;
use serde::Serialize;

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// `ok`, or why the store cannot take writes.
    pub store: String,
    /// `ok`, or why the directory does not answer the service account.
    pub directory: String,
    /// `ok`, or why the outbox counts as stuck.
    pub outbox: String,
    /// Notifications waiting for delivery.
    pub outbox_backlog: usize,
    /// Age in seconds of the oldest waiting notification (0 when none waits).
    pub outbox_oldest_secs: u64,
}

/// What a passing check says.
pub const OK: &str = "ok";

impl Readiness {
    /// Every check passed.
    pub fn ready(&self) -> bool {
        self.store == OK && self.directory == OK && self.outbox == OK
    }

    /// A readiness nobody checked yet: not ready.
    pub fn unchecked() -> Self {
        let why = "not checked yet".to_string();
        Self {
            store: why.clone(),
            directory: why.clone(),
            outbox: why,
            outbox_backlog: 0,
            outbox_oldest_secs: 0,
        }
    }
}

/// The outbox's backlog, the age of its oldest notification, and whether it counts as
/// stuck: a notification waiting longer than `stuck_after` seconds (the provider has been
/// failing for that long, or the worker stopped). Pure.
pub fn outbox_state(
    items: &[(u64, OutboxItem)],
    now: u64,
    stuck_after: u64,
) -> (usize, u64, String) {
    let oldest = items
        .iter()
        .map(|(_, i)| now.saturating_sub(i.created_at))
        .max()
        .unwrap_or(0);
    let verdict = if oldest > stuck_after {
        format!(
            "stuck: the oldest of {} notifications has waited {oldest} s (limit {stuck_after} s)",
            items.len()
        )
    } else {
        OK.to_string()
    };
    (items.len(), oldest, verdict)
}

impl Service {
    /// Checks the store (a small durable write), the directory (a Who am I? as the service
    /// account) and the outbox (stuck after `outbox_stuck_minutes`) at once, and records the
    /// outcome in the metrics (`ssprd_ready`, `ssprd_outbox_backlog`,
    /// `ssprd_outbox_oldest_seconds`).
    pub async fn readiness(&self) -> Readiness {
        let now = self.now();
        let (store, directory, outbox) = tokio::join!(
            self.store.probe(now),
            self.directory.check(),
            self.store.outbox()
        );
        let (outbox_backlog, outbox_oldest_secs, outbox) = match outbox {
            Ok(items) => outbox_state(&items, now, self.opts.outbox_stuck_after_secs),
            Err(e) => (0, 0, format!("unreadable: {e}")),
        };
        let verdict = |r: Result<(), String>| r.err().unwrap_or_else(|| OK.to_string());
        let r = Readiness {
            store: verdict(store.map_err(|e| e.to_string())),
            directory: verdict(directory.map_err(|e| e.to_string())),
            outbox,
            outbox_backlog,
            outbox_oldest_secs,
        };
        metrics::gauge!("ssprd_ready").set(if r.ready() { 1.0 } else { 0.0 });
        metrics::gauge!("ssprd_outbox_backlog").set(r.outbox_backlog as f64);
        metrics::gauge!("ssprd_outbox_oldest_seconds").set(r.outbox_oldest_secs as f64);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Channel, Notice};

    fn item(created_at: u64) -> (u64, OutboxItem) {
        (
            created_at,
            OutboxItem {
                id: String::new(),
                to: Channel::Email("a@example.org".into()),
                notice: Notice::AccountRecovered {
                    what: "reset".into(),
                },
                user: "alice".into(),
                created_at,
                attempts: 3,
                next_at: created_at + 60,
                last_error: String::new(),
                language: None,
            },
        )
    }

    #[test]
    fn the_outbox_is_stuck_only_when_its_oldest_waits_too_long() {
        // (created_at of the waiting items, now, limit) -> (backlog, oldest, stuck)
        type Case = (&'static [u64], u64, u64, (usize, u64, bool));
        let table: [Case; 5] = [
            (&[], 1000, 900, (0, 0, false)),
            (&[500], 1000, 900, (1, 500, false)),
            (&[100], 1000, 900, (1, 900, false)),
            (&[99, 900, 950], 1000, 900, (3, 901, true)),
            // A clock that went back never makes an age negative.
            (&[2000], 1000, 900, (1, 0, false)),
        ];
        for (created, now, limit, (backlog, oldest, stuck)) in table {
            let items: Vec<_> = created.iter().map(|&c| item(c)).collect();
            let (b, o, verdict) = outbox_state(&items, now, limit);
            assert_eq!(
                (b, o, verdict != OK),
                (backlog, oldest, stuck),
                "{created:?}"
            );
        }
    }

    #[test]
    fn ready_only_when_every_check_passed() {
        let mut r = Readiness::unchecked();
        assert!(!r.ready());
        r.store = OK.into();
        r.directory = OK.into();
        assert!(!r.ready());
        r.outbox = OK.into();
        assert!(r.ready());
    }
}
