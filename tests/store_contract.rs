//! The store contract: what every [`Store`] backend must do, run against each of them —
//! sled (the default) and the in-memory store today; the PostgreSQL backend will be held to the
//! same suite. Compare-and-swap semantics for every record kind, expiry by `sweep`, atomic
//! counter updates and an unbroken audit chain under concurrency, pruning from the start of
//! the chain, outbox order and acknowledgement, server keys, atomic batches (all or nothing,
//! audit records linked into the chain beside concurrent appends), and — for a backend that
//! promises it — durability of what was acknowledged (a reopened sled store has it all).

use serde_json::json;
use ssprd::audit::AuditEvent;
use ssprd::delivery::{Channel, Notice};
use ssprd::store::memory::MemoryStore;
use ssprd::store::sled::SledStore;
use ssprd::store::{
    Batch, CounterUpdate, Counters, FlowState, OutboxItem, Registration, RegistrationSession,
    ResetFlow, Store, TokenHash,
};
use std::sync::Arc;

fn flow(user: &str, expires_at: u64) -> ResetFlow {
    serde_json::from_value(json!({
        "user_key": user, "login": user, "dn": format!("uid={user}"), "decoy": false,
        "created_at": 1, "expires_at": expires_at, "methods_required": 1,
        "questions_drawn": [], "verified": [], "failed_attempts": 0, "state": "open"
    }))
    .unwrap()
}

fn session(user: &str, expires_at: u64) -> RegistrationSession {
    serde_json::from_value(json!({
        "user_id": user, "login": user, "dn": format!("uid={user}"), "expires_at": expires_at
    }))
    .unwrap()
}

fn id(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn event(at: u64, n: usize) -> AuditEvent {
    AuditEvent {
        at,
        kind: "test.event".into(),
        user: format!("user{n}"),
        outcome: "success".into(),
        reason: String::new(),
        actor: String::new(),
    }
}

fn notice(n: u32) -> OutboxItem {
    OutboxItem {
        id: format!("m{n}"),
        to: Channel::Email(format!("u{n}@example.org")),
        notice: Notice::AccountRecovered {
            what: "the password was reset".into(),
        },
        user: format!("u{n}"),
        created_at: 1,
        attempts: 0,
        next_at: 0,
        last_error: String::new(),
        language: Some("de".into()),
    }
}

/// Every contract case against one backend.
async fn contract(name: &str, store: Arc<dyn Store>) {
    registrations_swap(&*store).await;
    sessions_swap_and_expire(&*store).await;
    flows_swap_list_and_expire(&*store).await;
    undecided_writes_outlive_their_flows(&*store).await;
    counters_update_atomically(store.clone()).await;
    audit_chain_holds_under_concurrency(store.clone()).await;
    batches_apply_all_or_nothing(store.clone()).await;
    batches_create_flows_and_swap_registrations(store.clone()).await;
    policy_swap(&*store).await;
    outbox_keeps_order_until_acknowledged(&*store).await;
    server_keys_are_stable(&*store).await;
    probes_take_a_write_and_change_nothing(&*store).await;
    assert!(store.failed().borrow().is_none(), "{name}: not failed");
}

async fn registrations_swap(s: &dyn Store) {
    assert!(s.registration("r1").await.unwrap().is_none());
    let first = Registration::empty("r1", "alice", 10);
    assert!(s.swap_registration(None, &first).await.unwrap(), "created");
    assert!(
        !s.swap_registration(None, &first).await.unwrap(),
        "not created twice"
    );
    let mut second = first.clone();
    second.updated_at = 20;
    assert!(s.swap_registration(Some(&first), &second).await.unwrap());
    let mut stale = first.clone();
    stale.updated_at = 30;
    assert!(
        !s.swap_registration(Some(&first), &stale).await.unwrap(),
        "a swap from a stale value loses"
    );
    assert_eq!(s.registration("r1").await.unwrap(), Some(second.clone()));
    assert_eq!(s.registrations().await.unwrap(), vec![second]);
}

async fn sessions_swap_and_expire(s: &dyn Store) {
    let (live, old) = (session("s1", 1_000), session("s2", 50));
    s.put_session(&id(1), &live).await.unwrap();
    s.put_session(&id(2), &old).await.unwrap();
    let mut next = live.clone();
    next.established = true;
    assert!(s.swap_session(&id(1), &live, &next).await.unwrap());
    assert!(
        !s.swap_session(&id(1), &live, &next).await.unwrap(),
        "stale"
    );
    assert_eq!(s.session(&id(1)).await.unwrap(), Some(next));
    assert_eq!(s.sweep(50).await.unwrap(), 1, "expired at 50: swept at 50");
    assert!(s.session(&id(2)).await.unwrap().is_none());
    assert!(
        s.session(&id(1)).await.unwrap().is_some(),
        "the live one stays"
    );
}

async fn flows_swap_list_and_expire(s: &dyn Store) {
    let (a, b, other) = (flow("u1", 100), flow("u1", 1_000), flow("u2", 1_000));
    s.put_flow(&id(10), &a).await.unwrap();
    s.put_flow(&id(11), &b).await.unwrap();
    s.put_flow(&id(12), &other).await.unwrap();
    let mut mine = s.flows_of("u1").await.unwrap();
    mine.sort_by_key(|h| h.0);
    assert_eq!(mine, vec![id(10), id(11)]);
    let mut done = b.clone();
    done.state = FlowState::Completed;
    assert!(s.swap_flow(&id(11), &b, &done).await.unwrap());
    assert!(!s.swap_flow(&id(11), &b, &done).await.unwrap(), "stale");
    assert_eq!(s.flow(&id(11)).await.unwrap(), Some(done));
    assert!(
        !s.swap_flow(&id(99), &a, &b).await.unwrap(),
        "no swap of an absent flow"
    );
    assert!(s.flow(&id(99)).await.unwrap().is_none());
    assert_eq!(s.sweep(99).await.unwrap(), 0, "nothing expired yet");
    assert_eq!(s.sweep(100).await.unwrap(), 1);
    assert!(s.flow(&id(10)).await.unwrap().is_none());
    assert_eq!(
        s.flows_of("u1").await.unwrap(),
        vec![id(11)],
        "index follows"
    );
}

/// A flow whose password write was cut off is listed (by user) until the write is decided,
/// and is kept past its expiry meanwhile: deciding it needs its intent.
async fn undecided_writes_outlive_their_flows(s: &dyn Store) {
    assert!(s.undecided_writes().await.unwrap().is_empty());
    let open = flow("w1", 200);
    let mut cut_off = open.clone();
    cut_off.write =
        Some(serde_json::from_value(json!({"marker": "m", "must_change": true})).unwrap());
    s.put_flow(&id(20), &open).await.unwrap();
    assert!(s.swap_flow(&id(20), &open, &cut_off).await.unwrap());
    let mut spent = flow("w2", 200);
    spent.write = cut_off.write.clone();
    spent.state = FlowState::Completed;
    s.put_flow(&id(21), &spent).await.unwrap();
    assert_eq!(s.undecided_writes().await.unwrap(), vec!["w1".to_string()]);
    s.sweep(500).await.unwrap();
    assert_eq!(
        s.flow(&id(20)).await.unwrap(),
        Some(cut_off.clone()),
        "kept"
    );
    assert!(
        s.flow(&id(21)).await.unwrap().is_none(),
        "a spent flow goes"
    );
    // Decided: no longer listed, and swept like any other.
    let mut decided = cut_off.clone();
    decided.write = None;
    decided.state = FlowState::Closed;
    assert!(s.swap_flow(&id(20), &cut_off, &decided).await.unwrap());
    assert!(s.undecided_writes().await.unwrap().is_empty());
    s.sweep(500).await.unwrap();
    assert!(s.flow(&id(20)).await.unwrap().is_none());
    assert!(s.flows_of("w1").await.unwrap().is_empty());
}

async fn counters_update_atomically(s: Arc<dyn Store>) {
    assert_eq!(s.counters("c1").await.unwrap(), Counters::default());
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update_counters("c1", &move |mut c: Counters| {
                    c.failures.push(i);
                    c
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut failures = s.counters("c1").await.unwrap().failures;
    failures.sort();
    assert_eq!(failures, (0..40).collect::<Vec<u64>>(), "no update lost");
    let all = s.all_counters().await.unwrap();
    assert!(all.iter().any(|(k, c)| k == "c1" && c.failures.len() == 40));
}

async fn audit_chain_holds_under_concurrency(s: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..30)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.append_audit(&event(100 + n as u64, n)).await.unwrap() })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>(), "one number each");
    let (anchor, records) = s.audit_log().await.unwrap();
    assert_eq!(records.len(), 30);
    let v = ssprd::audit::verify(&anchor, records.clone()).expect("the chain verifies");
    assert_eq!(v.records, 30);
    // Pruning takes records from the start of the chain, up to the first one at or after
    // the time given; what is left still verifies from the moved anchor. (The appends
    // raced, so their times are not in chain order: prune just past the first record's.)
    let oldest_kept = records[0].event.at + 1;
    let pruned = s.prune_audit(oldest_kept).await.unwrap();
    let (anchor, rest) = s.audit_log().await.unwrap();
    assert!(
        pruned >= 1 && pruned + rest.len() == 30,
        "{pruned} + {}",
        rest.len()
    );
    assert_eq!(anchor.seq as usize, pruned);
    ssprd::audit::verify(&anchor, rest).expect("verifies after pruning");
    let next = s.append_audit(&event(1_000, 99)).await.unwrap();
    assert_eq!(next.seq, 31, "numbering goes on after pruning");
}

fn clear(c: Counters) -> Counters {
    Counters {
        failures: Vec::new(),
        ..c
    }
}

async fn batches_apply_all_or_nothing(s: Arc<dyn Store>) {
    let (f40, f41) = (flow("b1", 9_000), flow("b1", 9_000));
    s.put_flow(&id(40), &f40).await.unwrap();
    s.put_flow(&id(41), &f41).await.unwrap();
    s.update_counters("b1", &|mut c: Counters| {
        c.failures = vec![1, 2, 3];
        c
    })
    .await
    .unwrap();
    let mut done = f40.clone();
    done.state = FlowState::Completed;
    let mut closed = f41.clone();
    closed.state = FlowState::Closed;
    let chain = |s: Arc<dyn Store>| async move { s.audit_log().await.unwrap().1.len() };
    let records_before = chain(s.clone()).await;
    let last_seq = s.audit_log().await.unwrap().1.last().unwrap().seq;

    // One stale expectation: nothing at all is applied.
    let mut stale = f41.clone();
    stale.failed_attempts = 7;
    let mut batch = Batch {
        flows: vec![
            (id(40), f40.clone(), done.clone()),
            (id(41), stale, closed.clone()),
        ],
        counters: Some(("b1".into(), CounterUpdate::new(clear))),
        outbox: vec![notice(50), notice(51)],
        audit: vec![event(2_000, 50), event(2_000, 51)],
        ..Batch::default()
    };
    assert!(s.commit(&batch).await.unwrap().is_none(), "conflict");
    assert_eq!(s.flow(&id(40)).await.unwrap(), Some(f40.clone()));
    assert_eq!(s.flow(&id(41)).await.unwrap(), Some(f41.clone()));
    assert_eq!(s.counters("b1").await.unwrap().failures, vec![1, 2, 3]);
    assert!(s.outbox().await.unwrap().iter().all(|(_, i)| i.id != "m50"));
    assert_eq!(chain(s.clone()).await, records_before);

    // Every expectation holds: everything is applied, the records continue the chain.
    batch.flows[1].1 = f41.clone();
    let records = s.commit(&batch).await.unwrap().expect("applied");
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![last_seq + 1, last_seq + 2]
    );
    assert_eq!(s.flow(&id(40)).await.unwrap(), Some(done.clone()));
    assert_eq!(s.flow(&id(41)).await.unwrap(), Some(closed));
    assert!(s.counters("b1").await.unwrap().failures.is_empty());
    let queued: Vec<(u64, OutboxItem)> = s
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, i)| i.id == "m50" || i.id == "m51")
        .collect();
    assert_eq!(
        queued
            .iter()
            .map(|(_, i)| i.id.as_str())
            .collect::<Vec<_>>(),
        ["m50", "m51"],
        "queued in order"
    );
    for (seq, _) in queued {
        s.remove_outbox(seq).await.unwrap();
    }
    // The same batch again: its expectations are stale now.
    assert!(s.commit(&batch).await.unwrap().is_none());

    // Batches and single appends side by side: every record numbered once, the chain whole.
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                if n % 2 == 0 {
                    let b = Batch {
                        audit: vec![event(3_000, n), event(3_000, n + 100)],
                        ..Batch::default()
                    };
                    s.commit(&b).await.unwrap().unwrap().len()
                } else {
                    s.append_audit(&event(3_000, n)).await.unwrap();
                    1
                }
            })
        })
        .collect();
    let mut added = 0;
    for t in tasks {
        added += t.await.unwrap();
    }
    assert_eq!(added, 30);
    let (anchor, records) = s.audit_log().await.unwrap();
    assert_eq!(records.len(), records_before + 2 + 30);
    let mut seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), records.len(), "one number each");
    ssprd::audit::verify(&anchor, records).expect("the chain verifies");
}

/// A batch stores new flows as `put_flow` does (listed for their user, swept when they
/// expire) and swaps registrations like `swap_registration`, all or nothing with the rest.
async fn batches_create_flows_and_swap_registrations(s: Arc<dyn Store>) {
    let first = Registration::empty("b5", "bob", 10);
    assert!(s.swap_registration(None, &first).await.unwrap());
    let mut next = first.clone();
    next.updated_at = 20;
    let mut stale = first.clone();
    stale.updated_at = 15;
    let started = flow("b5", 700);
    let records_before = s.audit_log().await.unwrap().1.len();

    // A stale registration: the new flow is not stored either, nor the record.
    let mut batch = Batch {
        created: vec![(id(60), started.clone())],
        registrations: vec![(Some(stale), next.clone())],
        audit: vec![event(4_000, 60)],
        ..Batch::default()
    };
    assert!(s.commit(&batch).await.unwrap().is_none(), "conflict");
    assert!(s.flow(&id(60)).await.unwrap().is_none());
    assert!(s.flows_of("b5").await.unwrap().is_empty());
    assert_eq!(s.registration("b5").await.unwrap(), Some(first.clone()));
    assert_eq!(s.audit_log().await.unwrap().1.len(), records_before);

    batch.registrations[0].0 = Some(first.clone());
    assert_eq!(s.commit(&batch).await.unwrap().expect("applied").len(), 1);
    assert_eq!(s.flow(&id(60)).await.unwrap(), Some(started.clone()));
    assert_eq!(s.flows_of("b5").await.unwrap(), vec![id(60)]);
    assert_eq!(s.registration("b5").await.unwrap(), Some(next.clone()));

    // Expected absent: created when there is none, refused when there is one.
    let fresh = Registration::empty("b6", "carol", 30);
    let create = Batch {
        registrations: vec![(None, fresh.clone())],
        ..Batch::default()
    };
    assert!(s.commit(&create).await.unwrap().is_some());
    assert_eq!(s.registration("b6").await.unwrap(), Some(fresh));
    assert!(
        s.commit(&create).await.unwrap().is_none(),
        "not created twice"
    );

    // A flow a batch created expires like any other, and leaves its user's list.
    s.sweep(700).await.unwrap();
    assert!(s.flow(&id(60)).await.unwrap().is_none());
    assert!(s.flows_of("b5").await.unwrap().is_empty());
}

async fn policy_swap(s: &dyn Store) {
    assert!(s.policy().await.unwrap().is_none());
    let raw = ssprd::config::RawPolicy {
        enabled_methods: vec!["security_questions".into()],
        ..Default::default()
    };
    let mut p = ssprd::problems::Problems::new();
    let methods = raw.methods(&mut p);
    let first = raw
        .validate(
            &mut p,
            methods,
            ssprd::policy::settings::Deliverable {
                email: false,
                gateway: false,
                authenticator: false,
            },
        )
        .sspr;
    assert!(s.swap_policy(None, &first).await.unwrap());
    let mut second = first.clone();
    second.version = 1;
    assert!(
        !s.swap_policy(None, &second).await.unwrap(),
        "one is stored"
    );
    assert!(s.swap_policy(Some(&first), &second).await.unwrap());
    assert!(
        !s.swap_policy(Some(&first), &second).await.unwrap(),
        "stale"
    );
    assert_eq!(s.policy().await.unwrap(), Some(second));
}

async fn outbox_keeps_order_until_acknowledged(s: &dyn Store) {
    let mut seqs = Vec::new();
    for n in 0..3 {
        seqs.push(s.enqueue(&notice(n)).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?} increase");
    let items = s.outbox().await.unwrap();
    assert_eq!(
        items.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        seqs,
        "oldest first"
    );
    // A failed attempt is recorded in place; an acknowledged one is gone.
    let mut retried = notice(1);
    retried.attempts = 1;
    retried.last_error = "450 try later".into();
    s.put_outbox(seqs[1], &retried).await.unwrap();
    s.remove_outbox(seqs[0]).await.unwrap();
    let items = s.outbox().await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], (seqs[1], retried));
    assert_eq!(items[1].0, seqs[2]);
    let later = s.enqueue(&notice(9)).await.unwrap();
    assert!(later > seqs[2], "numbers are not reused");
}

async fn server_keys_are_stable(s: &dyn Store) {
    let a = s.server_key("flow-mac").await.unwrap();
    assert_eq!(s.server_key("flow-mac").await.unwrap(), a);
    assert_ne!(s.server_key("decoy").await.unwrap(), a);
    assert_ne!(a, [0u8; 32]);
}

/// The readiness probe succeeds on a working store, as often as it is called, and touches no
/// data a flow could see.
async fn probes_take_a_write_and_change_nothing(s: &dyn Store) {
    let before = (
        s.audit_log().await.unwrap(),
        s.outbox().await.unwrap().len(),
    );
    for now in [1, 2, 2] {
        s.probe(now).await.unwrap();
    }
    let after = (
        s.audit_log().await.unwrap(),
        s.outbox().await.unwrap().len(),
    );
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_store_keeps_the_contract() {
    contract("memory", Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sled_store_keeps_the_contract_and_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&path).unwrap());
    contract("sled", store.clone()).await;
    let (anchor, records) = store.audit_log().await.unwrap();
    let key = store.server_key("flow-mac").await.unwrap();
    drop(store);
    // Durable before acknowledged: a reopened store has everything.
    let reopened: Arc<dyn Store> = Arc::new(SledStore::reopen(&path).unwrap());
    assert_eq!(reopened.audit_log().await.unwrap(), (anchor, records));
    assert_eq!(reopened.server_key("flow-mac").await.unwrap(), key);
    assert!(reopened.registration("r1").await.unwrap().is_some());
    assert!(reopened.session(&id(1)).await.unwrap().is_some());
    assert!(reopened.flow(&id(11)).await.unwrap().is_some());
    assert_eq!(reopened.counters("c1").await.unwrap().failures.len(), 40);
    assert!(reopened.policy().await.unwrap().is_some());
    assert_eq!(reopened.outbox().await.unwrap().len(), 3);
}
