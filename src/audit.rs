//! The tamper-evident audit log: every record holds the SHA-256 of its predecessor, so an
//! edited, removed or reordered record breaks the chain from that point on.
//!
//! `hash = SHA-256(prev ‖ seq ‖ canonical JSON of the event)`, hex-encoded; the first record
//! links to [`GENESIS`], or, after retention pruned the oldest records, to the stored anchor
//! (the last pruned record's sequence number and hash). Records are numbered 1, 2, 3, … with
//! no gaps. A truncated tail cannot be seen from the records alone: keep the head hash that
//! `ssprd audit verify` prints somewhere else (a ticket, a log server) to detect it.

use crate::store::AuditEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event as stored: in its place in the chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub event: AuditEvent,
}

/// The link from `prev` to the record `seq` holding `event`.
pub fn link(prev: &str, seq: u64, event: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(serde_json::to_vec(event).expect("events serialise"));
    hex::encode(h.finalize())
}

/// Where a chain starts: after `seq` whose hash is `hash` (`0` and [`GENESIS`] when nothing
/// was pruned).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

impl Default for Anchor {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.into(),
        }
    }
}

/// A verified chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// The last record's hash (the anchor's when the log is empty).
    pub head: String,
}

/// The first place the chain breaks.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {seq}: {why}")]
pub struct Broken {
    pub seq: u64,
    pub why: &'static str,
}

/// Checks records in storage order against the anchor.
pub fn verify(
    anchor: &Anchor,
    records: impl IntoIterator<Item = AuditRecord>,
) -> Result<Verified, Broken> {
    let mut prev = anchor.hash.clone();
    let mut n = 0;
    for (expected_seq, r) in (anchor.seq + 1..).zip(records) {
        if r.seq != expected_seq {
            return Err(Broken {
                seq: expected_seq,
                why: "a record is missing or out of order",
            });
        }
        if r.prev != prev {
            return Err(Broken {
                seq: r.seq,
                why: "it does not link to the record before it",
            });
        }
        if link(&r.prev, r.seq, &r.event) != r.hash {
            return Err(Broken {
                seq: r.seq,
                why: "its content was changed",
            });
        }
        prev = r.hash;
        n += 1;
    }
    Ok(Verified {
        records: n,
        head: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent {
                    at: 1000 + seq,
                    kind: "reset.start".into(),
                    user: format!("u{seq}"),
                    outcome: "success".into(),
                    reason: String::new(),
                    actor: String::new(),
                };
                let hash = link(&prev, seq, &event);
                let r = AuditRecord {
                    seq,
                    prev: prev.clone(),
                    hash: hash.clone(),
                    event,
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn intact_chains_verify() {
        let c = chain(5);
        let head = c[4].hash.clone();
        assert_eq!(
            verify(&Anchor::default(), c),
            Ok(Verified { records: 5, head })
        );
        assert_eq!(verify(&Anchor::default(), vec![]).unwrap().records, 0);
    }

    #[test]
    fn edits_removals_and_reorders_are_found() {
        let mut c = chain(5);
        c[2].event.outcome = "failure".into();
        assert_eq!(verify(&Anchor::default(), c).unwrap_err().seq, 3);

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&Anchor::default(), c).unwrap_err().seq, 2);

        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify(&Anchor::default(), c).unwrap_err().seq, 2);

        // Rewriting one record's hash to match its new content still breaks the next link.
        let mut c = chain(5);
        c[2].event.user = "mallory".into();
        c[2].hash = link(&c[2].prev, 3, &c[2].event);
        assert_eq!(verify(&Anchor::default(), c).unwrap_err().seq, 4);
    }

    #[test]
    fn pruned_chains_verify_from_the_anchor() {
        let c = chain(5);
        let anchor = Anchor {
            seq: 2,
            hash: c[1].hash.clone(),
        };
        assert_eq!(verify(&anchor, c[2..].to_vec()).unwrap().records, 3);
        assert!(verify(&Anchor::default(), c[2..].to_vec()).is_err());
    }
}
