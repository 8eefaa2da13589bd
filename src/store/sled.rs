//! The sled implementation of [`Store`](super::Store).
//!
//! Trees: `registrations` (user id → JSON), `sessions` and `flows` (SHA-256 of the token →
//! JSON), `expiry` (tag byte ‖ big-endian expiry ‖ token hash → empty: the sweeper's index),
//! `user_flows` (user key ‖ 0 ‖ token hash → empty: a user's flows), `counters` (user key →
//! JSON), `audit` (big-endian sequence → JSON), `outbox` (big-endian id → JSON: notifications
//! not delivered yet), and `meta` with the `schema_version`, `audit_anchor` and `sspr_policy`
//! keys. Every write is flushed (on tokio's blocking pool) before it returns; concurrent
//! writers share flushes (group commit, `GroupCommit`), and a batch's transaction waits for
//! a running flush without holding up its thread.

use super::{
    AccountCounters, AuditLog, Batch, Batches, Counters, FlowState, Flows, Keys, Outbox,
    OutboxItem, PolicyStore, Registration, RegistrationSession, Registrations, ResetFlow, Sessions,
    StoreError, TokenHash, Upkeep,
};
use crate::audit::{Anchor, AuditEvent, AuditRecord};
use base64::Engine;
use serde::{Serialize, de::DeserializeOwned};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The schema this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// When the readiness check last wrote (see [`Upkeep::probe`]).
const PROBE_KEY: &[u8] = b"last_probe";
const ANCHOR_KEY: &[u8] = b"audit_anchor";
const POLICY_KEY: &[u8] = b"sspr_policy";
const TAG_FLOW: u8 = b'f';
const TAG_SESSION: u8 = b's';

pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    registrations: sled::Tree,
    sessions: sled::Tree,
    flows: sled::Tree,
    user_flows: sled::Tree,
    expiry: sled::Tree,
    counters: sled::Tree,
    audit: sled::Tree,
    outbox: sled::Tree,
    /// Audit appends read the chain's head and write the next record: one at a time. Holds
    /// the head (the last record's sequence number and hash) once read, so an append does
    /// not read and decode the last record again; dropped on a failed write.
    audit_lock: tokio::sync::Mutex<Option<(u64, String)>>,
    /// Set (with the reason) once a flush failed: the daemon must stop (see [`Store::failed`]).
    failed: tokio::sync::watch::Sender<Option<String>>,
    /// Group commit of concurrent flushes (see [`SledStore::flush`]).
    group: GroupCommit,
}

/// Group commit: a write asks for durability with a ticket; one flush runs at a time, and
/// every write ticketed before a flush began is durable when it ends, so a caller queued
/// behind a flush usually finds its write already covered. Under concurrency, many
/// acknowledged writes share one fsync instead of each paying its own.
#[derive(Default)]
struct GroupCommit {
    /// Tickets handed out, one per write that wants to be durable (taken after the write).
    issued: std::sync::atomic::AtomicU64,
    /// Every write with a ticket up to this one is durable.
    durable: std::sync::atomic::AtomicU64,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
    /// Taken by a flush while it runs and by each transaction: no transaction starts while
    /// a flush runs. sled's flush holds the read side of its process-wide lock until the
    /// disk confirms; a transaction takes the write side, which would block its thread (a
    /// runtime worker) and, while it waits, every other sled call on any thread. Waiting
    /// here instead leaves the worker free for other work.
    exclusive: tokio::sync::Mutex<()>,
    /// Flushes run (each one fsync).
    flushes: std::sync::atomic::AtomicU64,
}

impl SledStore {
    /// [`Self::open_with_cache`] with the default page cache (`[store] cache_mb`, 64 MiB).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, 64 * 1024 * 1024)
    }

    /// Opens (or creates) the database with a page cache of `cache_bytes`. Refuses a
    /// database locked by another process, one with a newer schema, and a damaged one,
    /// each with a clear message.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let p = path.display().to_string();
        // Database files that exist but hold no schema version were truncated or damaged:
        // never start empty over them.
        let existed = path.join("db").metadata().is_ok_and(|m| m.len() > 0);
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| open_error(&p, e))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_error(&p, e));
        let store = Self {
            meta: tree("meta")?,
            registrations: tree("registrations")?,
            sessions: tree("sessions")?,
            flows: tree("flows")?,
            user_flows: tree("user_flows")?,
            expiry: tree("expiry")?,
            counters: tree("counters")?,
            audit: tree("audit")?,
            outbox: tree("outbox")?,
            audit_lock: tokio::sync::Mutex::new(None),
            failed: tokio::sync::watch::Sender::new(None),
            group: GroupCommit::default(),
            db,
        };
        match store.meta.get(SCHEMA_KEY).map_err(|e| open_error(&p, e))? {
            None => {
                let has_data = [&store.registrations, &store.flows, &store.audit]
                    .iter()
                    .any(|t| !t.is_empty());
                if has_data || existed {
                    return Err(StoreError::Corrupt {
                        path: p,
                        message: if has_data {
                            "data present but no schema version".into()
                        } else {
                            "the database files exist but hold no ssprd data (truncated?)".into()
                        },
                    });
                }
                store
                    .meta
                    .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| open_error(&p, e))?;
                store.db.flush().map_err(|e| open_error(&p, e))?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        path: p.clone(),
                        message: "schema version is not a 4-byte integer".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: p,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        Ok(store)
    }

    /// Writes every tree of the database at `path` to `out` as JSON lines (a header line,
    /// then `{"tree","key","value"}` with base64 bytes). The file holds the server keys
    /// and answer hashes: it is created with mode 0600. Returns the number of records.
    pub fn backup(path: &Path, out: &Path) -> Result<u64, StoreError> {
        use std::io::Write;
        let store = Self::open(path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", out.display())))?;
        let mut w = std::io::BufWriter::new(file);
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        let werr = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", out.display()));
        writeln!(
            w,
            "{}",
            serde_json::json!({"ssprd_backup": 1, "schema": SCHEMA_VERSION})
        )
        .map_err(werr)?;
        let mut n = 0u64;
        for name in store.db.tree_names() {
            let tree = store.db.open_tree(&name).map_err(io)?;
            for kv in tree.iter() {
                let (k, v) = kv.map_err(io)?;
                writeln!(
                    w,
                    "{}",
                    serde_json::json!({"tree": b64(&name), "key": b64(&k), "value": b64(&v)})
                )
                .map_err(werr)?;
                n += 1;
            }
        }
        w.flush().map_err(werr)?;
        w.into_inner()
            .map_err(|e| werr(e.into_error()))?
            .sync_all()
            .map_err(werr)?;
        Ok(n)
    }

    /// Restores a [`Self::backup`] file into a new database at `path` (which must not hold
    /// one), then opens it to check the schema. Returns the number of records.
    pub fn restore(backup: &Path, path: &Path) -> Result<u64, StoreError> {
        use std::io::BufRead;
        let p = path.display().to_string();
        if path.exists()
            && std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(StoreError::Unavailable(format!(
                "{p} is not empty: move the damaged database away first"
            )));
        }
        let bad = |m: String| StoreError::Corrupt {
            path: backup.display().to_string(),
            message: m,
        };
        let file = std::fs::File::open(backup)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", backup.display())))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let header: serde_json::Value = lines
            .next()
            .ok_or_else(|| bad("empty file".into()))?
            .map_err(|e| bad(e.to_string()))
            .and_then(|l| serde_json::from_str(&l).map_err(|e| bad(e.to_string())))?;
        if header["ssprd_backup"] != 1 {
            return Err(bad("not an ssprd backup".into()));
        }
        if header["schema"]
            .as_u64()
            .is_none_or(|v| v > u64::from(SCHEMA_VERSION))
        {
            return Err(bad(format!(
                "schema {} is newer than this ssprd understands",
                header["schema"]
            )));
        }
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| open_error(&p, e))?;
        let unb64 = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| bad("a record is not valid base64".into()))
        };
        let mut n = 0u64;
        for line in lines {
            let line = line.map_err(|e| bad(e.to_string()))?;
            let rec: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let tree = db.open_tree(unb64(&rec["tree"])?).map_err(io)?;
            tree.insert(unb64(&rec["key"])?, unb64(&rec["value"])?)
                .map_err(io)?;
            n += 1;
        }
        db.flush().map_err(io)?;
        drop(db);
        // Opening checks the schema.
        Self::reopen(path)?;
        Ok(n)
    }

    /// Opens the database again after this process closed it. sled's background flusher
    /// keeps the file lock for up to one flush interval after the last handle is dropped,
    /// so a lock is waited for (up to five seconds) rather than refused.
    pub fn reopen(path: &Path) -> Result<Self, StoreError> {
        let mut opened = Self::open(path);
        for _ in 0..50 {
            if !matches!(opened, Err(StoreError::Locked { .. })) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            opened = Self::open(path);
        }
        opened
    }

    fn anchor(&self) -> Result<Anchor, StoreError> {
        Ok(self
            .meta
            .get(ANCHOR_KEY)
            .map_err(io)?
            .map(|v| decode("audit anchor", &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// The sequence number and hash of the chain's last record (the anchor's when empty),
    /// from `cached` (what `audit_lock` holds) or else read and kept there.
    fn audit_head(&self, cached: &mut Option<(u64, String)>) -> Result<(u64, String), StoreError> {
        if let Some(head) = cached {
            return Ok(head.clone());
        }
        let head = self.read_audit_head()?;
        *cached = Some(head.clone());
        Ok(head)
    }

    fn read_audit_head(&self) -> Result<(u64, String), StoreError> {
        match self.audit.last().map_err(io)? {
            Some((_, v)) => {
                let last: AuditRecord = decode("audit", &v)?;
                Ok((last.seq, last.hash))
            }
            None => {
                let a = self.anchor()?;
                Ok((a.seq, a.hash))
            }
        }
    }

    /// Makes every write this caller made before the call durable. Concurrent callers share
    /// flushes ([`GroupCommit`]): a write is covered by the first flush that begins after
    /// its ticket was taken.
    async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let ticket = self.group.issued.fetch_add(1, SeqCst) + 1;
        let _one = self.group.flushing.lock().await;
        if self.group.durable.load(SeqCst) >= ticket {
            return Ok(());
        }
        // Transactions already waiting run before this flush, which makes them durable too.
        let _alone = self.group.exclusive.lock().await;
        // Every ticket up to `upto` was taken after its write: this flush covers them all.
        let upto = self.group.issued.load(SeqCst);
        self.group.flushes.fetch_add(1, SeqCst);
        self.flush_now().await?;
        self.group.durable.fetch_max(upto, SeqCst);
        Ok(())
    }

    async fn flush_now(&self) -> Result<(), StoreError> {
        // A failed flush is not retried: the caller reports UNAVAILABLE and nothing is
        // acknowledged, and the store is marked failed so the daemon stops (its memory may
        // hold writes that never reached the disk); it recovers from disk on the next start.
        //
        // The flush runs on tokio's blocking pool, not through `flush_async`: that one runs
        // on sled's own small thread pool, where concurrent flushes waiting for stability
        // can starve the buffer writes they wait for (spacejam/sled#1308, unreleased fix).
        let db = self.db.clone();
        let started = std::time::Instant::now();
        let result = match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(r) => r.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        metrics::histogram!("ssprd_store_flush_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            let why = format!("flush failed: {e}");
            self.failed.send_replace(Some(why.clone()));
            StoreError::Unavailable(why)
        })
    }

    /// Compare-and-swap of a JSON record (flushed when it took effect).
    async fn swap<T: Serialize>(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        old: Option<&T>,
        new: &T,
    ) -> Result<bool, StoreError> {
        let swapped = tree
            .compare_and_swap(key, old.map(encode), Some(encode(new)))
            .map_err(io)?
            .is_ok();
        if swapped {
            self.flush().await?;
        }
        Ok(swapped)
    }

    fn expiry_key(tag: u8, expires_at: u64, id: &TokenHash) -> Vec<u8> {
        let mut k = Vec::with_capacity(41);
        k.push(tag);
        k.extend_from_slice(&expires_at.to_be_bytes());
        k.extend_from_slice(&id.0);
        k
    }

    fn user_flow_key(user_key: &str, id: &TokenHash) -> Vec<u8> {
        let mut k = Vec::with_capacity(user_key.len() + 33);
        k.extend_from_slice(user_key.as_bytes());
        k.push(0);
        k.extend_from_slice(&id.0);
        k
    }

    fn sweep_tag(&self, tag: u8, now: u64) -> Result<usize, StoreError> {
        let start = vec![tag];
        let end = Self::expiry_key(tag, now, &TokenHash([0xff; 32]));
        let target = if tag == TAG_FLOW {
            &self.flows
        } else {
            &self.sessions
        };
        let mut n = 0;
        for item in self.expiry.range(start..=end) {
            let (k, _) = item.map_err(io)?;
            let id = &k[9..];
            if tag == TAG_FLOW
                && let Some(old) = target.get(id).map_err(io)?
            {
                let flow: ResetFlow = decode("flow", &old)?;
                // A write still to be decided outlives its flow's expiry: the decision
                // needs its intent (the marker, the flags that go with the password).
                if flow.write_undecided() {
                    continue;
                }
                let hash = TokenHash(id.try_into().expect("32-byte key"));
                self.user_flows
                    .remove(Self::user_flow_key(&flow.user_key, &hash))
                    .map_err(io)?;
            }
            target.remove(id).map_err(io)?;
            self.expiry.remove(&k).map_err(io)?;
            n += 1;
        }
        Ok(n)
    }
}

fn open_error(path: &str, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked { path: path.into() }
        }
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            path: path.into(),
            message: e.to_string(),
        },
        other => StoreError::Unavailable(format!("cannot open {path}: {other}")),
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Tries of one compare-and-swap update of the counters, the first included.
const CAS_ATTEMPTS: usize = 64;

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store records always serialise")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.into(),
        message: e.to_string(),
    })
}

#[async_trait::async_trait]
impl Registrations for SledStore {
    async fn registration(&self, user_id: &str) -> Result<Option<Registration>, StoreError> {
        self.registrations
            .get(user_id)
            .map_err(io)?
            .map(|v| decode("registration", &v))
            .transpose()
    }

    async fn swap_registration(
        &self,
        old: Option<&Registration>,
        new: &Registration,
    ) -> Result<bool, StoreError> {
        self.swap(&self.registrations, new.user_id.as_bytes(), old, new)
            .await
    }

    async fn registrations(&self) -> Result<Vec<Registration>, StoreError> {
        self.registrations
            .iter()
            .values()
            .map(|v| decode("registration", &v.map_err(io)?))
            .collect()
    }
}

#[async_trait::async_trait]
impl Sessions for SledStore {
    async fn put_session(
        &self,
        token: &TokenHash,
        session: &RegistrationSession,
    ) -> Result<(), StoreError> {
        self.sessions.insert(token.0, encode(session)).map_err(io)?;
        self.expiry
            .insert(
                Self::expiry_key(TAG_SESSION, session.expires_at, token),
                &[],
            )
            .map_err(io)?;
        self.flush().await
    }

    async fn session(&self, token: &TokenHash) -> Result<Option<RegistrationSession>, StoreError> {
        self.sessions
            .get(token.0)
            .map_err(io)?
            .map(|v| decode("session", &v))
            .transpose()
    }

    async fn swap_session(
        &self,
        token: &TokenHash,
        old: &RegistrationSession,
        new: &RegistrationSession,
    ) -> Result<bool, StoreError> {
        self.swap(&self.sessions, &token.0, Some(old), new).await
    }
}

#[async_trait::async_trait]
impl Flows for SledStore {
    /// The flow with its user's index and expiry entries, as one batch ([`Batch::created`]).
    async fn put_flow(&self, id: &TokenHash, flow: &ResetFlow) -> Result<(), StoreError> {
        let batch = Batch {
            created: vec![(*id, flow.clone())],
            ..Batch::default()
        };
        self.commit(&batch).await?;
        Ok(())
    }

    async fn flow(&self, id: &TokenHash) -> Result<Option<ResetFlow>, StoreError> {
        self.flows
            .get(id.0)
            .map_err(io)?
            .map(|v| decode("flow", &v))
            .transpose()
    }

    async fn undecided_writes(&self) -> Result<Vec<String>, StoreError> {
        let mut users = std::collections::BTreeSet::new();
        for item in self.flows.iter() {
            let (_, v) = item.map_err(io)?;
            let flow: ResetFlow = decode("flow", &v)?;
            if flow.write_undecided() {
                users.insert(flow.user_key);
            }
        }
        Ok(users.into_iter().collect())
    }

    async fn flows_of(&self, user_key: &str) -> Result<Vec<TokenHash>, StoreError> {
        let mut prefix = user_key.as_bytes().to_vec();
        prefix.push(0);
        self.user_flows
            .scan_prefix(&prefix)
            .map(|r| {
                let (k, _) = r.map_err(io)?;
                let id: [u8; 32] =
                    k[prefix.len()..]
                        .try_into()
                        .map_err(|_| StoreError::Decode {
                            key: "user_flows".into(),
                            message: "bad key length".into(),
                        })?;
                Ok(TokenHash(id))
            })
            .collect()
    }

    async fn swap_flow(
        &self,
        id: &TokenHash,
        old: &ResetFlow,
        new: &ResetFlow,
    ) -> Result<bool, StoreError> {
        debug_assert!(old.state != FlowState::Completed || new.state == FlowState::Completed);
        self.swap(&self.flows, &id.0, Some(old), new).await
    }
}

#[async_trait::async_trait]
impl AccountCounters for SledStore {
    async fn counters(&self, user_key: &str) -> Result<Counters, StoreError> {
        Ok(self
            .counters
            .get(user_key)
            .map_err(io)?
            .map(|v| decode("counters", &v))
            .transpose()?
            .unwrap_or_default())
    }

    async fn update_counters(
        &self,
        user_key: &str,
        update: &(dyn Fn(Counters) -> Counters + Send + Sync),
    ) -> Result<Counters, StoreError> {
        // Bounded: a swap that loses every time is contention, not a reason to spin.
        for _ in 0..CAS_ATTEMPTS {
            let old = self.counters.get(user_key).map_err(io)?;
            let current: Counters = old
                .as_ref()
                .map(|v| decode("counters", v))
                .transpose()?
                .unwrap_or_default();
            let next = update(current);
            let swapped = self
                .counters
                .compare_and_swap(user_key, old, Some(encode(&next)))
                .map_err(io)?
                .is_ok();
            if swapped {
                self.flush().await?;
                return Ok(next);
            }
        }
        Err(StoreError::Contended("counters"))
    }

    async fn all_counters(&self) -> Result<Vec<(String, Counters)>, StoreError> {
        self.counters
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(io)?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode("counters", &v)?,
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditLog for SledStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let mut head = self.audit_lock.lock().await;
        let (last, prev) = self.audit_head(&mut head)?;
        let seq = last + 1;
        let record = AuditRecord {
            seq,
            hash: crate::audit::link(&prev, seq, event),
            prev,
            event: event.clone(),
        };
        *head = None;
        self.audit
            .insert(seq.to_be_bytes(), encode(&record))
            .map_err(io)?;
        *head = Some((seq, record.hash.clone()));
        // The chain is extended under the lock; the flush is not. It makes this record
        // durable with everything written before it, and sled keeps its log in order, so a
        // crash loses only a tail of the chain, never a record before a kept one. Flushing
        // under the lock made every audited call in the daemon wait for the fsyncs of all
        // before it.
        drop(head);
        self.flush().await?;
        Ok(record)
    }

    async fn audit_log(&self) -> Result<(Anchor, Vec<AuditRecord>), StoreError> {
        let records = self
            .audit
            .iter()
            .map(|r| {
                let (_, v) = r.map_err(io)?;
                decode("audit", &v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((self.anchor()?, records))
    }

    async fn prune_audit(&self, before: u64) -> Result<usize, StoreError> {
        let _one_at_a_time = self.audit_lock.lock().await;
        let mut n = 0;
        let mut anchor = None;
        for item in self.audit.iter() {
            let (k, v) = item.map_err(io)?;
            let r: AuditRecord = decode("audit", &v)?;
            if r.event.at >= before {
                break;
            }
            self.audit.remove(k).map_err(io)?;
            anchor = Some(Anchor {
                seq: r.seq,
                hash: r.hash,
            });
            n += 1;
        }
        if let Some(a) = anchor {
            self.meta.insert(ANCHOR_KEY, encode(&a)).map_err(io)?;
            self.flush().await?;
        }
        Ok(n)
    }
}

#[async_trait::async_trait]
impl PolicyStore for SledStore {
    async fn policy(&self) -> Result<Option<crate::policy::SsprPolicy>, StoreError> {
        self.meta
            .get(POLICY_KEY)
            .map_err(io)?
            .map(|v| decode("policy", &v))
            .transpose()
    }

    async fn swap_policy(
        &self,
        old: Option<&crate::policy::SsprPolicy>,
        new: &crate::policy::SsprPolicy,
    ) -> Result<bool, StoreError> {
        self.swap(&self.meta, POLICY_KEY, old, new).await
    }
}

/// Why a batch's transaction stopped.
enum Stop {
    /// A flow or a registration no longer held its expected value.
    Conflict,
    /// A stored record did not decode.
    Decode(StoreError),
}

#[async_trait::async_trait]
impl Batches for SledStore {
    async fn commit(&self, batch: &Batch) -> Result<Option<Vec<AuditRecord>>, StoreError> {
        use sled::Transactional;
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        // The records are linked before the transaction, under the chain's lock, which is
        // held until the transaction is applied. A batch without records leaves the chain
        // alone.
        let mut records = Vec::with_capacity(batch.audit.len());
        let mut chain = match batch.audit.is_empty() {
            true => None,
            false => Some(self.audit_lock.lock().await),
        };
        let (mut seq, mut prev) = match chain.as_deref_mut() {
            Some(head) => self.audit_head(head)?,
            None => (0, String::new()),
        };
        for event in &batch.audit {
            seq += 1;
            let hash = crate::audit::link(&prev, seq, event);
            records.push(AuditRecord {
                seq,
                prev: std::mem::replace(&mut prev, hash.clone()),
                hash,
                event: event.clone(),
            });
        }
        let outbox_ids = batch
            .outbox
            .iter()
            .map(|_| self.db.generate_id().map_err(io))
            .collect::<Result<Vec<u64>, _>>()?;
        let expected: Vec<Vec<u8>> = batch.flows.iter().map(|(_, old, _)| encode(old)).collect();
        let expected_registrations: Vec<Option<Vec<u8>>> = batch
            .registrations
            .iter()
            .map(|(old, _)| old.as_ref().map(encode))
            .collect();
        let trees = (
            &self.flows,
            &self.user_flows,
            &self.expiry,
            &self.registrations,
            &self.counters,
            &self.outbox,
            &self.audit,
        );
        // sled runs the closure under its global write lock: no other write to these trees
        // interleaves, and the batch reaches the log as one unit. It starts when no flush
        // runs (see `GroupCommit::exclusive`), so taking that lock does not wait for the disk.
        let exclusive = self.group.exclusive.lock().await;
        let applied = trees.transaction(
            |(flows, user_flows, expiry, registrations, counters, outbox, audit)| {
                for ((id, _, _), old) in batch.flows.iter().zip(&expected) {
                    if flows.get(id.0)?.as_deref() != Some(old.as_slice()) {
                        return Err(ConflictableTransactionError::Abort(Stop::Conflict));
                    }
                }
                for ((_, new), old) in batch.registrations.iter().zip(&expected_registrations) {
                    if registrations.get(new.user_id.as_bytes())?.as_deref() != old.as_deref() {
                        return Err(ConflictableTransactionError::Abort(Stop::Conflict));
                    }
                }
                for (id, flow) in &batch.created {
                    flows.insert(&id.0, encode(flow))?;
                    user_flows.insert(Self::user_flow_key(&flow.user_key, id), &[])?;
                    expiry.insert(Self::expiry_key(TAG_FLOW, flow.expires_at, id), &[])?;
                }
                for (id, _, new) in &batch.flows {
                    flows.insert(&id.0, encode(new))?;
                }
                for (_, new) in &batch.registrations {
                    registrations.insert(new.user_id.as_bytes(), encode(new))?;
                }
                if let Some((key, update)) = &batch.counters {
                    let current: Counters = counters
                        .get(key.as_bytes())?
                        .map(|v| decode("counters", &v))
                        .transpose()
                        .map_err(|e| ConflictableTransactionError::Abort(Stop::Decode(e)))?
                        .unwrap_or_default();
                    counters.insert(key.as_bytes(), encode(&update.apply(current)))?;
                }
                for (id, item) in outbox_ids.iter().zip(&batch.outbox) {
                    outbox.insert(&id.to_be_bytes(), encode(item))?;
                }
                for r in &records {
                    audit.insert(&r.seq.to_be_bytes(), encode(r))?;
                }
                Ok(())
            },
        );
        drop(exclusive);
        if let Some(head) = chain.as_deref_mut() {
            match &applied {
                // `seq` and `prev` are now those of the batch's last record.
                Ok(()) => *head = Some((seq, prev)),
                Err(TransactionError::Abort(Stop::Conflict)) => {}
                Err(_) => *head = None,
            }
        }
        drop(chain);
        match applied {
            Ok(()) => {
                self.flush().await?;
                Ok(Some(records))
            }
            Err(TransactionError::Abort(Stop::Conflict)) => Ok(None),
            Err(TransactionError::Abort(Stop::Decode(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }
}

#[async_trait::async_trait]
impl Outbox for SledStore {
    async fn enqueue(&self, item: &OutboxItem) -> Result<u64, StoreError> {
        let seq = self.db.generate_id().map_err(io)?;
        self.outbox
            .insert(seq.to_be_bytes(), encode(item))
            .map_err(io)?;
        self.flush().await?;
        Ok(seq)
    }

    async fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>, StoreError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(io)?;
                let seq = <[u8; 8]>::try_from(k.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Decode {
                        key: "outbox".into(),
                        message: "key is not a sequence number".into(),
                    })?;
                Ok((seq, decode("outbox", &v)?))
            })
            .collect()
    }

    async fn put_outbox(&self, seq: u64, item: &OutboxItem) -> Result<(), StoreError> {
        self.outbox
            .insert(seq.to_be_bytes(), encode(item))
            .map_err(io)?;
        self.flush().await
    }

    async fn remove_outbox(&self, seq: u64) -> Result<(), StoreError> {
        self.outbox.remove(seq.to_be_bytes()).map_err(io)?;
        self.flush().await
    }
}

#[async_trait::async_trait]
impl Keys for SledStore {
    async fn server_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let k = format!("key:{name}");
        if let Some(v) = self.meta.get(&k).map_err(io)? {
            return <[u8; 32]>::try_from(v.as_ref()).map_err(|_| StoreError::Decode {
                key: k,
                message: "server key is not 32 bytes".into(),
            });
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // Two racing callers: the first insert wins and both return the stored value.
        let _ = self
            .meta
            .compare_and_swap(&k, None as Option<&[u8]>, Some(&fresh[..]))
            .map_err(io)?;
        self.flush().await?;
        let v = self.meta.get(&k).map_err(io)?.expect("just written");
        Ok(<[u8; 32]>::try_from(v.as_ref()).expect("32 bytes"))
    }
}

#[async_trait::async_trait]
impl Upkeep for SledStore {
    fn failed(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failed.subscribe()
    }

    async fn sweep(&self, now: u64) -> Result<usize, StoreError> {
        let n = self.sweep_tag(TAG_FLOW, now)? + self.sweep_tag(TAG_SESSION, now)?;
        if n > 0 {
            self.flush().await?;
        }
        Ok(n)
    }

    async fn probe(&self, now: u64) -> Result<(), StoreError> {
        if let Some(why) = self.failed.borrow().clone() {
            return Err(StoreError::Unavailable(why));
        }
        self.meta
            .insert(PROBE_KEY, &now.to_be_bytes())
            .map_err(io)?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;

    fn flow(expires_at: u64) -> ResetFlow {
        ResetFlow {
            user_key: "u1".into(),
            login: "alice".into(),
            display_name: String::new(),
            dn: "uid=alice".into(),
            decoy: false,
            admin: false,
            created_at: 1,
            expires_at,
            methods_required: 1,
            questions_drawn: vec!["bank.first_pet".into()],
            verified: vec![Method::SecurityQuestions],
            failed_attempts: 0,
            state: FlowState::Open,
            offered: vec![],
            codes: vec![],
            sends: 0,
            write: None,
            password_changed: false,
            by_admin: false,
            decoy_questions: vec![],
            locked: false,
        }
    }

    /// Many concurrent acknowledged writes, each flushed before it returns, all complete.
    /// sled 0.34's `flush_async` runs the flush on sled's own small thread pool, where
    /// waiting flushes can starve the buffer writes they wait for (spacejam/sled#1308): the
    /// daemon hung under a load test. Flushes now run on tokio's blocking pool.
    #[test]
    fn concurrent_flushed_writes_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        // The workload runs on its own thread and runtime: a deadlock blocks its worker
        // threads (sled's inserts wait for the stuck buffers), so only a watcher outside
        // can tell.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut tasks = Vec::new();
                for i in 0..64u64 {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        for j in 0..20u64 {
                            let id = TokenHash([i as u8; 32]);
                            store
                                .put_flow(&id, &flow(1_000 + i * 100 + j))
                                .await
                                .unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("every flushed write completes (no flush deadlock)");
    }

    /// A batch waits for a running flush without blocking its thread. sled's transaction
    /// would block on the lock that a flush holds until the disk confirms, and with it the
    /// runtime worker and every sled call behind it: under load, both workers of the
    /// benchmark's daemon sat idle about a fifth of the time.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_waits_for_a_running_flush_without_blocking_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let id = TokenHash([7; 32]);
        let batch = Batch {
            created: vec![(id, flow(1_000))],
            ..Batch::default()
        };
        // Stands for a flush in progress.
        let flush = store.group.exclusive.lock().await;
        let commit = tokio::spawn({
            let store = store.clone();
            async move { store.commit(&batch).await }
        });
        // This runtime has one thread: the batch waits, and this task still runs.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!commit.is_finished());
        assert!(
            store.flow(&id).await.unwrap().is_none(),
            "applied during the flush"
        );
        drop(flush);
        assert!(commit.await.unwrap().unwrap().is_some());
        assert!(store.flow(&id).await.unwrap().is_some());
    }

    /// Group commit: concurrent writers share flushes, and every acknowledged write is
    /// there after the database is closed and opened again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_flushes_and_all_survive() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let before = store.group.flushes.load(SeqCst);
        let tasks: Vec<_> = (0..64u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put_flow(&TokenHash([i; 32]), &flow(1_000 + u64::from(i)))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let flushes = store.group.flushes.load(SeqCst) - before;
        assert!(flushes >= 1);
        assert!(flushes < 64, "64 concurrent writes took {flushes} flushes");
        drop(store);
        let reopened = SledStore::reopen(dir.path()).unwrap();
        for i in 0..64u8 {
            let f = reopened.flow(&TokenHash([i; 32])).await.unwrap();
            assert_eq!(f.map(|f| f.expires_at), Some(1_000 + u64::from(i)));
        }
    }

    #[tokio::test]
    async fn second_open_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _a = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another ssprd"));
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.meta.insert(SCHEMA_KEY, &99u32.to_be_bytes()).unwrap();
            s.db.flush().unwrap();
        }
        let err = SledStore::reopen(dir.path()).err().unwrap();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn flows_swap_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let id = TokenHash::of("flow-1");
        let f = flow(100);
        s.put_flow(&id, &f).await.unwrap();
        let mut done = f.clone();
        done.state = FlowState::Completed;
        assert!(s.swap_flow(&id, &f, &done).await.unwrap());
        // The old value no longer matches: a second racer loses.
        assert!(!s.swap_flow(&id, &f, &done).await.unwrap());
        assert_eq!(s.sweep(99).await.unwrap(), 0);
        assert!(s.flow(&id).await.unwrap().is_some());
        assert_eq!(s.flows_of("u1").await.unwrap(), vec![id]);
        assert_eq!(s.sweep(100).await.unwrap(), 1);
        assert!(s.flow(&id).await.unwrap().is_none());
        assert!(
            s.flows_of("u1").await.unwrap().is_empty(),
            "index swept too"
        );
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.update_counters("u1", &|mut c| {
                c.failures.push(5);
                c
            })
            .await
            .unwrap();
        }
        let s = SledStore::reopen(dir.path()).unwrap();
        assert_eq!(s.counters("u1").await.unwrap().failures, vec![5]);
    }
}
