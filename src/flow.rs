//! Pure flow logic: no IO, time passed in. The service layer (`service`) loads state, asks
//! these functions what to do, and persists the result.

use crate::policy::{QuestionBank, ResetPolicy};
use crate::store::{Counters, FlowState, ResetFlow};
use rand::seq::IndexedRandom;
use sha2::{Digest, Sha256};

/// Draws `n` distinct question ids at random from `registered` (all of them if fewer).
pub fn draw_questions(registered: &[String], n: usize) -> Vec<String> {
    let mut rng = rand::rng();
    registered
        .sample(&mut rng, n.min(registered.len()))
        .cloned()
        .collect()
}

/// The question ids a decoy account "registered": chosen deterministically from the bank by a
/// keyed hash of the login, so repeated StartReset calls for one unknown name look like a
/// real user's (random draws from a fixed registered set).
pub fn decoy_registration(
    bank: &QuestionBank,
    key: &[u8; 32],
    login: &str,
    n: usize,
) -> Vec<String> {
    let mut scored: Vec<([u8; 32], &str)> = bank
        .all()
        .iter()
        .map(|q| {
            let mut h = Sha256::new();
            h.update(key);
            h.update((login.len() as u64).to_be_bytes());
            h.update(login.as_bytes());
            h.update(q.id.as_bytes());
            (h.finalize().into(), q.id.as_str())
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(_, id)| id.into())
        .collect()
}

/// The counter key of a decoy account (never collides with a directory id, which is a
/// UUID or hex GUID).
pub fn decoy_user_key(key: &[u8; 32], login: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"decoy\0");
    h.update(key);
    h.update(login.to_lowercase().as_bytes());
    format!("decoy:{}", hex::encode(&h.finalize()[..16]))
}

/// Whether a flow can take proofs or complete at `now`.
pub fn is_live(flow: &ResetFlow, now: u64) -> bool {
    flow.state == FlowState::Open && now < flow.expires_at
}

/// The account is blocked from SSPR at `now`.
pub fn blocked(c: &Counters, now: u64) -> bool {
    c.blocked_until > now
}

/// Records one failed verification at `now`; blocks the account when the window holds
/// `max_failed_verifications` failures.
pub fn record_failure(mut c: Counters, now: u64, p: &ResetPolicy) -> Counters {
    let since = now.saturating_sub(p.failure_window_secs);
    c.failures.retain(|&t| t > since);
    c.failures.push(now);
    if c.failures.len() as u64 >= u64::from(p.max_failed_verifications) && !blocked(&c, now) {
        c.blocked_until = now + p.block_secs;
    }
    c
}

/// Records one code sent at `now`; blocks the account when more than `max` were sent within
/// `window_secs` (the send that crosses the limit is refused).
pub fn record_send(
    mut c: Counters,
    now: u64,
    max: u32,
    window_secs: u64,
    p: &ResetPolicy,
) -> Counters {
    let since = now.saturating_sub(window_secs);
    c.sends.retain(|&t| t > since);
    if c.sends.len() as u64 >= u64::from(max) {
        if !blocked(&c, now) {
            c.blocked_until = now + p.block_secs;
        }
    } else {
        c.sends.push(now);
    }
    c
}

/// After a successful reset the failure counters start again (the block, if any, was
/// checked before the reset could complete).
pub fn clear_failures(c: Counters) -> Counters {
    Counters {
        failures: Vec::new(),
        sends: Vec::new(),
        blocked_until: c.blocked_until,
    }
}

/// What a wrong proof does to the flow.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Ask again (questions are redrawn).
    Retry,
    /// Too many wrong proofs in this flow: it is closed.
    Closed,
}

pub fn after_failure(flow: &mut ResetFlow, p: &ResetPolicy) -> AfterFailure {
    flow.failed_attempts += 1;
    if flow.failed_attempts >= p.attempts_per_flow {
        flow.state = FlowState::Closed;
        AfterFailure::Closed
    } else {
        AfterFailure::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ResetPolicy {
        ResetPolicy {
            methods_required: 1,
            session_ttl_secs: 900,
            registration_ttl_secs: 600,
            attempts_per_flow: 3,
            max_failed_verifications: 5,
            failure_window_secs: 86_400,
            block_secs: 86_400,
        }
    }

    #[test]
    fn five_failures_in_the_window_block_for_a_day() {
        let p = policy();
        let mut c = Counters::default();
        for i in 0..4 {
            c = record_failure(c, 1_000 + i, &p);
            assert!(!blocked(&c, 1_000 + i));
        }
        c = record_failure(c, 2_000, &p);
        assert!(blocked(&c, 2_000));
        assert!(blocked(&c, 2_000 + 86_399));
        assert!(!blocked(&c, 2_000 + 86_400));
    }

    #[test]
    fn the_eleventh_code_in_ten_minutes_blocks() {
        let p = policy();
        let mut c = Counters::default();
        for i in 0..10 {
            c = record_send(c, 1_000 + i, 10, 600, &p);
            assert!(!blocked(&c, 1_000 + i));
        }
        c = record_send(c, 1_100, 10, 600, &p);
        assert!(blocked(&c, 1_100));
        assert_eq!(c.sends.len(), 10, "the refused send is not recorded");
        // Spread over more than the window: never blocked.
        let mut c = Counters::default();
        for i in 0..30 {
            c = record_send(c, i * 61, 10, 600, &p);
        }
        assert!(!blocked(&c, 30 * 61));
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let p = policy();
        let mut c = Counters::default();
        for i in 0..4 {
            c = record_failure(c, i, &p);
        }
        c = record_failure(c, 86_400 + 10, &p);
        assert!(!blocked(&c, 86_400 + 10));
        assert_eq!(c.failures.len(), 1);
    }

    #[test]
    fn draws_are_distinct_and_bounded() {
        let reg: Vec<String> = (0..5).map(|i| format!("q{i}")).collect();
        for _ in 0..50 {
            let mut d = draw_questions(&reg, 3);
            assert_eq!(d.len(), 3);
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3);
        }
        assert_eq!(draw_questions(&reg[..2], 3).len(), 2);
    }

    #[test]
    fn decoys_are_stable_per_login_and_differ_between_logins() {
        let bank = QuestionBank::build(true, &[]).unwrap();
        let key = [7u8; 32];
        let a1 = decoy_registration(&bank, &key, "nobody", 3);
        let a2 = decoy_registration(&bank, &key, "nobody", 3);
        assert_eq!(a1, a2);
        assert_eq!(a1.len(), 3);
        let others: Vec<_> = (0..20)
            .map(|i| decoy_registration(&bank, &key, &format!("user{i}"), 3))
            .collect();
        assert!(others.iter().any(|o| *o != a1));
        assert!(decoy_user_key(&key, "Nobody").starts_with("decoy:"));
        assert_eq!(
            decoy_user_key(&key, "Nobody"),
            decoy_user_key(&key, "nobody")
        );
    }
}
