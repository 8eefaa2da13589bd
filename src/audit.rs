//! The tamper-evident audit log: every record holds the SHA-256 of its predecessor, so an
//! edited, removed or reordered record breaks the chain from that point on.
//!
//! `hash = SHA-256(prev ‖ seq ‖ canonical JSON of the event)`, hex-encoded; the first record
//! links to [`GENESIS`], or, after retention pruned the oldest records, to the stored anchor
//! (the last pruned record's sequence number and hash). Records are numbered 1, 2, 3, … with
//! no gaps. A truncated tail cannot be seen from the records alone: keep the head hash that
//! `ssprd audit verify` prints somewhere else (a ticket, a log server) to detect it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened: one audit event (stored in the chain as an [`AuditRecord`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: u64,
    pub kind: String,
    /// Login name as given (for decoys too: the admin sees what was attempted).
    pub user: String,
    pub outcome: String,
    pub reason: String,
    /// Who asked: the client's name and address and, with mutual TLS, its certificate
    /// fingerprint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
}

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

/// An event's kind, outcome or reason as a metric label. Callers pass the daemon's fixed
/// names (`reset.verify`, `wrong_code`, …), never a user name or address; as a second line
/// of defence, a value that is not a short lowercase name (an address, a DN, free text)
/// becomes `other`.
pub fn label(name: &str) -> String {
    let fixed = name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if fixed { name } else { "other" }.to_string()
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

/// Where audit records are copied as they are appended (besides the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardKind {
    /// RFC 5424 over the local syslog socket, facility authpriv, severity notice.
    Syslog,
    /// journald's native protocol, with the record's fields as `SSPRD_AUDIT_*` fields.
    Journald,
}

impl ForwardKind {
    pub fn default_socket(self) -> &'static str {
        match self {
            Self::Syslog => "/dev/log",
            Self::Journald => "/run/systemd/journal/socket",
        }
    }
}

/// Copies audit records to syslog or journald over a local datagram socket. Best effort: a
/// record that cannot be sent is logged as a warning and stays in the database.
pub struct Forwarder {
    kind: ForwardKind,
    path: std::path::PathBuf,
    socket: tokio::net::UnixDatagram,
    hostname: String,
}

impl Forwarder {
    pub fn new(kind: ForwardKind, path: std::path::PathBuf) -> std::io::Result<Self> {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "-".into());
        Ok(Self {
            kind,
            path,
            socket: tokio::net::UnixDatagram::unbound()?,
            hostname,
        })
    }

    /// The datagram for `rec`.
    pub fn datagram(&self, rec: &AuditRecord) -> Vec<u8> {
        let e = &rec.event;
        let summary = format!(
            "audit #{} {} user={:?} outcome={} reason={:?} actor={:?}",
            rec.seq, e.kind, e.user, e.outcome, e.reason, e.actor
        );
        match self.kind {
            ForwardKind::Syslog => {
                // <authpriv.notice> VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG
                let ts = time::OffsetDateTime::from_unix_timestamp(e.at as i64)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "-".into());
                format!(
                    "<85>1 {ts} {} ssprd {} audit - {}",
                    self.hostname,
                    std::process::id(),
                    serde_json::to_string(rec).expect("records serialise")
                )
                .into_bytes()
            }
            ForwardKind::Journald => {
                let mut out = Vec::new();
                let mut field = |k: &str, v: &str| journald_field(&mut out, k, v);
                field("MESSAGE", &summary);
                field("PRIORITY", "5");
                field("SYSLOG_FACILITY", "10");
                field("SYSLOG_IDENTIFIER", "ssprd");
                field("SSPRD_AUDIT_SEQ", &rec.seq.to_string());
                field("SSPRD_AUDIT_HASH", &rec.hash);
                field("SSPRD_AUDIT_PREV", &rec.prev);
                field("SSPRD_AUDIT_AT", &e.at.to_string());
                field("SSPRD_AUDIT_KIND", &e.kind);
                field("SSPRD_AUDIT_USER", &e.user);
                field("SSPRD_AUDIT_OUTCOME", &e.outcome);
                field("SSPRD_AUDIT_REASON", &e.reason);
                field("SSPRD_AUDIT_ACTOR", &e.actor);
                out
            }
        }
    }

    /// Sends `rec`; failures are logged, never fatal.
    pub async fn send(&self, rec: &AuditRecord) {
        let d = self.datagram(rec);
        if let Err(e) = self.socket.send_to(&d, &self.path).await {
            tracing::warn!(socket = %self.path.display(), error = %e, "audit record not forwarded");
        }
    }
}

/// One field of journald's native protocol: `KEY=value\n`, or the length-prefixed binary
/// form when the value holds a newline.
fn journald_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    } else {
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'\n');
}

/// The `[audit]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    /// Days audit records are kept (0 = forever). Older records are pruned from the start of
    /// the hash chain; the chain stays verifiable from the last pruned record.
    pub retention_days: u64,
    /// Also copy every record to "syslog" or "journald" as it is appended (unset: no).
    pub forward: Option<ForwardKind>,
    /// The socket to send to (default: /dev/log, or journald's /run/systemd/journal/socket).
    pub forward_socket: Option<PathBuf>,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: 365,
            forward: None,
            forward_socket: None,
        }
    }
}

/// The checked `[audit]` section.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Records older than this are pruned (`None`: kept forever).
    pub retention: Option<std::time::Duration>,
    /// Where records are copied as they are appended.
    pub forward: Option<(ForwardKind, PathBuf)>,
}

impl RawAudit {
    /// The `[audit]` section has nothing that can be wrong (any retention is valid).
    pub fn settings(&self) -> AuditSettings {
        AuditSettings {
            retention: (self.retention_days > 0)
                .then(|| std::time::Duration::from_secs(self.retention_days * 86_400)),
            forward: self.forward.map(|k| {
                (
                    k,
                    self.forward_socket
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(k.default_socket())),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_fields_use_the_binary_form_for_newlines() {
        let mut out = Vec::new();
        journald_field(&mut out, "A", "x");
        journald_field(&mut out, "B", "y\nz");
        let mut want = b"A=x\nB\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"y\nz\n");
        assert_eq!(out, want);
    }

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
