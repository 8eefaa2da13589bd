//! A [`Store`](super::Store) in memory, for unit tests of the service and as the second backend the store
//! contract suite (`tests/store_contract.rs`) holds to the same behaviour as sled. Records
//! are kept encoded, as sled keeps them, so compare-and-swap compares what was stored. It
//! promises no durability: everything is gone when it is dropped.

use super::{
    AccountCounters, AuditLog, Batch, Batches, Counters, Flows, Keys, Outbox, OutboxItem,
    PolicyStore, Registration, RegistrationSession, Registrations, ResetFlow, Sessions, StoreError,
    TokenHash, Upkeep,
};
use crate::audit::{Anchor, AuditEvent, AuditRecord};
use crate::policy::SsprPolicy;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Data {
    registrations: BTreeMap<String, Vec<u8>>,
    sessions: HashMap<[u8; 32], Vec<u8>>,
    flows: HashMap<[u8; 32], Vec<u8>>,
    counters: BTreeMap<String, Vec<u8>>,
    audit: BTreeMap<u64, AuditRecord>,
    anchor: Anchor,
    policy: Option<Vec<u8>>,
    outbox: BTreeMap<u64, Vec<u8>>,
    next_outbox: u64,
    keys: HashMap<String, [u8; 32]>,
}

impl Data {
    /// Links `event` to the end of the audit chain.
    fn append(&mut self, event: &AuditEvent) -> AuditRecord {
        let (seq, prev) = match self.audit.last_key_value() {
            Some((_, last)) => (last.seq + 1, last.hash.clone()),
            None => (self.anchor.seq + 1, self.anchor.hash.clone()),
        };
        let record = AuditRecord {
            seq,
            hash: crate::audit::link(&prev, seq, event),
            prev,
            event: event.clone(),
        };
        self.audit.insert(seq, record.clone());
        record
    }
}

/// The in-memory store.
pub struct MemoryStore {
    data: Mutex<Data>,
    failed: tokio::sync::watch::Sender<Option<String>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            data: Mutex::new(Data::default()),
            failed: tokio::sync::watch::channel(None).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().expect("memory store lock poisoned")
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store records always serialise")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.into(),
        message: e.to_string(),
    })
}

/// `new`, encoded, if `current` still holds `old` (`None`: absent); else `None`.
fn swapped<T: Serialize>(current: Option<&Vec<u8>>, old: Option<&T>, new: &T) -> Option<Vec<u8>> {
    (current.cloned() == old.map(encode)).then(|| encode(new))
}

#[async_trait::async_trait]
impl Registrations for MemoryStore {
    async fn registration(&self, user_id: &str) -> Result<Option<Registration>, StoreError> {
        self.data()
            .registrations
            .get(user_id)
            .map(|v| decode("registration", v))
            .transpose()
    }

    async fn swap_registration(
        &self,
        old: Option<&Registration>,
        new: &Registration,
    ) -> Result<bool, StoreError> {
        let mut d = self.data();
        let Some(v) = swapped(d.registrations.get(&new.user_id), old, new) else {
            return Ok(false);
        };
        d.registrations.insert(new.user_id.clone(), v);
        Ok(true)
    }

    async fn registrations(&self) -> Result<Vec<Registration>, StoreError> {
        self.data()
            .registrations
            .values()
            .map(|v| decode("registration", v))
            .collect()
    }
}

#[async_trait::async_trait]
impl Sessions for MemoryStore {
    async fn put_session(
        &self,
        token: &TokenHash,
        session: &RegistrationSession,
    ) -> Result<(), StoreError> {
        self.data().sessions.insert(token.0, encode(session));
        Ok(())
    }

    async fn session(&self, token: &TokenHash) -> Result<Option<RegistrationSession>, StoreError> {
        self.data()
            .sessions
            .get(&token.0)
            .map(|v| decode("session", v))
            .transpose()
    }

    async fn swap_session(
        &self,
        token: &TokenHash,
        old: &RegistrationSession,
        new: &RegistrationSession,
    ) -> Result<bool, StoreError> {
        let mut d = self.data();
        let Some(v) = swapped(d.sessions.get(&token.0), Some(old), new) else {
            return Ok(false);
        };
        d.sessions.insert(token.0, v);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Flows for MemoryStore {
    async fn put_flow(&self, id: &TokenHash, flow: &ResetFlow) -> Result<(), StoreError> {
        self.data().flows.insert(id.0, encode(flow));
        Ok(())
    }

    async fn flow(&self, id: &TokenHash) -> Result<Option<ResetFlow>, StoreError> {
        self.data()
            .flows
            .get(&id.0)
            .map(|v| decode("flow", v))
            .transpose()
    }

    async fn undecided_writes(&self) -> Result<Vec<String>, StoreError> {
        let mut users = std::collections::BTreeSet::new();
        for v in self.data().flows.values() {
            let f: ResetFlow = decode("flow", v)?;
            if f.write_undecided() {
                users.insert(f.user_key);
            }
        }
        Ok(users.into_iter().collect())
    }

    async fn flows_of(&self, user_key: &str) -> Result<Vec<TokenHash>, StoreError> {
        let d = self.data();
        let mut ids = Vec::new();
        for (id, v) in &d.flows {
            let f: ResetFlow = decode("flow", v)?;
            if f.user_key == user_key {
                ids.push(TokenHash(*id));
            }
        }
        ids.sort_by_key(|h| h.0);
        Ok(ids)
    }

    async fn swap_flow(
        &self,
        id: &TokenHash,
        old: &ResetFlow,
        new: &ResetFlow,
    ) -> Result<bool, StoreError> {
        let mut d = self.data();
        let Some(v) = swapped(d.flows.get(&id.0), Some(old), new) else {
            return Ok(false);
        };
        d.flows.insert(id.0, v);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl AccountCounters for MemoryStore {
    async fn counters(&self, user_key: &str) -> Result<Counters, StoreError> {
        Ok(self
            .data()
            .counters
            .get(user_key)
            .map(|v| decode("counters", v))
            .transpose()?
            .unwrap_or_default())
    }

    async fn update_counters(
        &self,
        user_key: &str,
        update: &(dyn Fn(Counters) -> Counters + Send + Sync),
    ) -> Result<Counters, StoreError> {
        // The lock makes the update atomic.
        let mut d = self.data();
        let current: Counters = d
            .counters
            .get(user_key)
            .map(|v| decode("counters", v))
            .transpose()?
            .unwrap_or_default();
        let next = update(current);
        d.counters.insert(user_key.to_string(), encode(&next));
        Ok(next)
    }

    async fn all_counters(&self) -> Result<Vec<(String, Counters)>, StoreError> {
        self.data()
            .counters
            .iter()
            .map(|(k, v)| Ok((k.clone(), decode("counters", v)?)))
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        Ok(self.data().append(event))
    }

    async fn audit_log(&self) -> Result<(Anchor, Vec<AuditRecord>), StoreError> {
        let d = self.data();
        Ok((d.anchor.clone(), d.audit.values().cloned().collect()))
    }

    async fn prune_audit(&self, before: u64) -> Result<usize, StoreError> {
        let mut d = self.data();
        let old: Vec<u64> = d
            .audit
            .values()
            .take_while(|r| r.event.at < before)
            .map(|r| r.seq)
            .collect();
        for seq in &old {
            let r = d.audit.remove(seq).expect("listed above");
            d.anchor = Anchor {
                seq: r.seq,
                hash: r.hash,
            };
        }
        Ok(old.len())
    }
}

#[async_trait::async_trait]
impl PolicyStore for MemoryStore {
    async fn policy(&self) -> Result<Option<SsprPolicy>, StoreError> {
        self.data()
            .policy
            .as_ref()
            .map(|v| decode("policy", v))
            .transpose()
    }

    async fn swap_policy(
        &self,
        old: Option<&SsprPolicy>,
        new: &SsprPolicy,
    ) -> Result<bool, StoreError> {
        let mut d = self.data();
        let Some(v) = swapped(d.policy.as_ref(), old, new) else {
            return Ok(false);
        };
        d.policy = Some(v);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Outbox for MemoryStore {
    async fn enqueue(&self, item: &OutboxItem) -> Result<u64, StoreError> {
        let mut d = self.data();
        d.next_outbox += 1;
        let seq = d.next_outbox;
        d.outbox.insert(seq, encode(item));
        Ok(seq)
    }

    async fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>, StoreError> {
        self.data()
            .outbox
            .iter()
            .map(|(seq, v)| Ok((*seq, decode("outbox", v)?)))
            .collect()
    }

    async fn put_outbox(&self, seq: u64, item: &OutboxItem) -> Result<(), StoreError> {
        self.data().outbox.insert(seq, encode(item));
        Ok(())
    }

    async fn remove_outbox(&self, seq: u64) -> Result<(), StoreError> {
        self.data().outbox.remove(&seq);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Batches for MemoryStore {
    async fn commit(&self, batch: &Batch) -> Result<Option<Vec<AuditRecord>>, StoreError> {
        // One lock for the whole batch: nothing sees a part of it.
        let mut d = self.data();
        for (id, old, _) in &batch.flows {
            if d.flows.get(&id.0) != Some(&encode(old)) {
                return Ok(None);
            }
        }
        for (old, new) in &batch.registrations {
            if d.registrations.get(&new.user_id) != old.as_ref().map(encode).as_ref() {
                return Ok(None);
            }
        }
        let counters = match &batch.counters {
            Some((key, update)) => {
                let current: Counters = d
                    .counters
                    .get(key)
                    .map(|v| decode("counters", v))
                    .transpose()?
                    .unwrap_or_default();
                Some((key.clone(), encode(&update.apply(current))))
            }
            None => None,
        };
        for (id, flow) in &batch.created {
            d.flows.insert(id.0, encode(flow));
        }
        for (id, _, new) in &batch.flows {
            d.flows.insert(id.0, encode(new));
        }
        for (_, new) in &batch.registrations {
            d.registrations.insert(new.user_id.clone(), encode(new));
        }
        if let Some((key, value)) = counters {
            d.counters.insert(key, value);
        }
        for item in &batch.outbox {
            d.next_outbox += 1;
            let seq = d.next_outbox;
            d.outbox.insert(seq, encode(item));
        }
        Ok(Some(batch.audit.iter().map(|e| d.append(e)).collect()))
    }
}

#[async_trait::async_trait]
impl Keys for MemoryStore {
    async fn server_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let mut d = self.data();
        if let Some(k) = d.keys.get(name) {
            return Ok(*k);
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        d.keys.insert(name.to_string(), fresh);
        Ok(fresh)
    }
}

#[async_trait::async_trait]
impl Upkeep for MemoryStore {
    fn failed(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failed.subscribe()
    }

    async fn sweep(&self, now: u64) -> Result<usize, StoreError> {
        let mut d = self.data();
        let mut n = 0;
        let mut expired = Vec::new();
        for (id, v) in &d.flows {
            let f: ResetFlow = decode("flow", v)?;
            if f.expires_at <= now && !f.write_undecided() {
                expired.push(*id);
            }
        }
        for id in expired {
            d.flows.remove(&id);
            n += 1;
        }
        let mut expired = Vec::new();
        for (id, v) in &d.sessions {
            if decode::<RegistrationSession>("session", v)?.expires_at <= now {
                expired.push(*id);
            }
        }
        for id in expired {
            d.sessions.remove(&id);
            n += 1;
        }
        Ok(n)
    }

    async fn probe(&self, _now: u64) -> Result<(), StoreError> {
        match self.failed.borrow().clone() {
            Some(why) => Err(StoreError::Unavailable(why)),
            None => Ok(()),
        }
    }
}
