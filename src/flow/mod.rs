//! Pure flow logic: no IO, time and randomness passed in. The service layer (`service`)
//! loads state, asks these functions what to do, and persists the result: counters and
//! blocks here, the reset flow's transitions in [`reset`], the registration session's in
//! [`registration`], the write protocol's decisions in [`write`](mod@write).

pub mod decoy;
pub mod registration;
pub mod reset;
pub mod write;

use crate::method::{Method, contact};
use crate::policy::{MethodPolicy, QuestionBank, ResetPolicy};
use crate::store::{Counters, FlowState, Offer, PendingAttempt, Registration, ResetFlow};
use rand::seq::IndexedRandom;
use sha2::{Digest, Sha256};

/// Draws `n` distinct question ids at random from `registered` (all of them if fewer).
pub fn draw_questions(
    rng: &mut (impl rand::Rng + ?Sized),
    registered: &[String],
    n: usize,
) -> Vec<String> {
    registered
        .sample(rng, n.min(registered.len()))
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

/// The methods a registration makes usable at `now` under `mp`, with masked hints. Methods
/// still in their cool-off period, and questions fewer than a reset asks, are left out.
pub fn offers(reg: &Registration, mp: &MethodPolicy, now: u64, reset_count: usize) -> Vec<Offer> {
    let mut out = Vec::new();
    for m in &mp.enabled {
        let hint = match (m, m.contact_kind()) {
            (Method::SecurityQuestions, _) => {
                (reg.questions.len() >= reset_count).then(String::new)
            }
            (Method::AuthenticatorCode, _) => reg
                .authenticator
                .as_ref()
                .filter(|a| a.usable_from <= now)
                .map(|_| String::new()),
            (_, Some(kind)) => reg
                .contact(kind)
                .filter(|c| c.usable_from <= now)
                .map(|c| contact::mask(kind, &c.value)),
            (_, None) => None,
        };
        if let Some(hint) = hint {
            out.push(Offer { method: *m, hint });
        }
    }
    out
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

/// When the next code may be sent, given the times of the codes sent (`sends`) and the
/// sliding `windows` they count in (`(at most, within seconds)`): `None` for now, else the
/// first time every window has room again.
pub fn next_send_at(sends: &[u64], now: u64, windows: &[(u32, u64)]) -> Option<u64> {
    windows
        .iter()
        .filter_map(|&(max, window)| {
            let mut within: Vec<u64> = sends
                .iter()
                .copied()
                .filter(|&t| t + window > now)
                .collect();
            if within.len() < max as usize {
                return None;
            }
            within.sort_unstable();
            // The oldest sends must leave the window until one fewer than `max` remain.
            Some(within[within.len() - max as usize] + window)
        })
        .max()
}

/// Records one code sent at `now` into `sends` when the `windows` allow it (the times
/// older than the longest window are dropped); else leaves `sends` as it was and says
/// when the next code may go ([`next_send_at`]). A refused send blocks nothing: other
/// methods can still be verified.
pub fn record_send(sends: &mut Vec<u64>, now: u64, windows: &[(u32, u64)]) -> Result<(), u64> {
    let longest = windows.iter().map(|w| w.1).max().unwrap_or(0);
    sends.retain(|&t| t + longest > now);
    match next_send_at(sends, now, windows) {
        Some(at) => Err(at),
        None => {
            sends.push(now);
            Ok(())
        }
    }
}

/// After a successful reset the failure counters start again (the block, if any, was
/// checked before the reset could complete), and so does password sign-in: the new password
/// is known, and the directory forgot its failures with the change (where it still counts
/// some, the guard reads them). Attempts and sign-ins still being checked stay.
pub fn clear_failures(c: Counters) -> Counters {
    Counters {
        failures: Vec::new(),
        sends: Vec::new(),
        blocked_until: c.blocked_until,
        pending: c.pending,
        sign_in: crate::store::SignInCounters {
            pending: c.sign_in.pending,
            ..Default::default()
        },
    }
}

/// An attempt not settled after this long was interrupted (a crash, a lost task): it counts
/// as a failure from then on, never as an attempt given back.
pub const STALE_ATTEMPT_SECS: u64 = 120;

/// Takes one attempt from the account's failure budget before a proof is evaluated: the
/// failures in the window plus the attempts being checked may never exceed
/// `max_failed_verifications`, so however many flows and clients guess at once, no more
/// wrong guesses are evaluated than the policy allows. Returns the counters unchanged when
/// the account is blocked or its budget is taken (the caller checks for `id` in
/// [`Counters::pending`]). Apply atomically (compare-and-swap).
pub fn take_attempt(mut c: Counters, id: u64, owner: u64, now: u64, p: &ResetPolicy) -> Counters {
    let stale: Vec<PendingAttempt> = c
        .pending
        .iter()
        .copied()
        .filter(|a| a.at + STALE_ATTEMPT_SECS <= now)
        .collect();
    c.pending.retain(|a| a.at + STALE_ATTEMPT_SECS > now);
    for a in stale {
        c = record_failure(c, a.at, p);
    }
    let since = now.saturating_sub(p.failure_window_secs);
    c.failures.retain(|&t| t > since);
    let used = c.failures.len() + c.pending.len();
    if !blocked(&c, now) && (used as u64) < u64::from(p.max_failed_verifications) {
        c.pending.push(PendingAttempt { id, at: now, owner });
    }
    c
}

/// Releases the attempts and sign-in checks taken by daemon runs that are `gone`: a run
/// that stopped (killed, crashed) while a proof or a password was being checked sent no
/// answer for it, so nobody learnt anything from it — it is neither a failure nor held
/// against the budget any longer (held, it would refuse a right proof as if the account were
/// blocked). How many were released. (A sign-in's bind may have reached the directory, which
/// counts it: the guard reads the directory's count before every bind.) How many of each:
/// (proofs, sign-ins).
pub fn release_interrupted(
    mut c: Counters,
    gone: impl Fn(u64) -> bool,
) -> (Counters, (usize, usize)) {
    let before = (c.pending.len(), c.sign_in.pending.len());
    c.pending.retain(|a| !gone(a.owner));
    c.sign_in.pending.retain(|a| !gone(a.owner));
    let released = (
        before.0 - c.pending.len(),
        before.1 - c.sign_in.pending.len(),
    );
    (c, released)
}

/// Wrong proofs the user may still make before the flow closes or the account is blocked
/// from self-service: the flow's own attempts left, or the account's failure budget left
/// (failures in the window and proofs being checked count), whichever is fewer; 0 when
/// blocked. Decoys have counters too: their answers look alike.
pub fn attempts_left(flow: &ResetFlow, c: &Counters, now: u64, p: &ResetPolicy) -> u32 {
    if blocked(c, now) {
        return 0;
    }
    let since = now.saturating_sub(p.failure_window_secs);
    let used = c.failures.iter().filter(|&&t| t > since).count() + c.pending.len();
    let account = (p.max_failed_verifications as usize).saturating_sub(used) as u32;
    account.min(p.attempts_per_flow.saturating_sub(flow.failed_attempts))
}

/// Whether [`take_attempt`] granted the attempt `id`.
pub fn holds_attempt(c: &Counters, id: u64) -> bool {
    c.pending.iter().any(|a| a.id == id)
}

/// How a checked proof turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The proof was right (or not decided, e.g. a lost race): the attempt is given back.
    GivenBack,
    /// The proof was wrong: the attempt becomes a failure (which may block the account).
    Failed,
}

/// Settles the attempt `id` taken by [`take_attempt`] (nothing to do when it is no longer
/// pending: it went stale and already counts as a failure). Apply atomically.
pub fn settle_attempt(
    mut c: Counters,
    id: u64,
    how: Settled,
    now: u64,
    p: &ResetPolicy,
) -> Counters {
    if !holds_attempt(&c, id) {
        return c;
    }
    c.pending.retain(|a| a.id != id);
    match how {
        Settled::GivenBack => c,
        Settled::Failed => record_failure(c, now, p),
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

/// The policies the core's unit tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::policy::{CodePolicy, ResetPolicy};

    pub fn policy() -> ResetPolicy {
        ResetPolicy {
            session_ttl_secs: 900,
            registration_ttl_secs: 600,
            attempts_per_flow: 3,
            max_failed_verifications: 5,
            failure_window_secs: 86_400,
            block_secs: 86_400,
        }
    }

    pub fn codes() -> CodePolicy {
        CodePolicy {
            length: 6,
            ttl_secs: 600,
            max_tries: 3,
            max_sends_per_flow: 5,
            max_sends_per_account: 10,
            account_window_secs: 3_600,
            max_sends_per_day: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::policy;
    use super::*;

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

    /// Issue 10 item 1: the budget is taken before a guess is evaluated. With four
    /// failures recorded and max five, exactly one more guess may be in flight; a right one
    /// gives its attempt back, a wrong one blocks.
    #[test]
    fn attempts_are_taken_from_the_budget_before_evaluation() {
        let p = policy();
        let mut c = Counters::default();
        for i in 0..4 {
            c = record_failure(c, 1_000 + i, &p);
        }
        c = take_attempt(c, 1, 0, 2_000, &p);
        assert!(holds_attempt(&c, 1));
        for id in 2..20 {
            c = take_attempt(c, id, 0, 2_000, &p);
            assert!(
                !holds_attempt(&c, id),
                "attempt {id} must wait for the budget"
            );
        }
        assert!(!blocked(&c, 2_000), "a pending attempt is not a block");
        // Right: given back, the next guess may go.
        let back = settle_attempt(c.clone(), 1, Settled::GivenBack, 2_001, &p);
        assert_eq!(back.failures.len(), 4);
        assert!(back.pending.is_empty() && !blocked(&back, 2_001));
        assert!(holds_attempt(&take_attempt(back, 30, 0, 2_001, &p), 30));
        // Wrong: a fifth failure, blocked, and nothing more is granted.
        let failed = settle_attempt(c, 1, Settled::Failed, 2_001, &p);
        assert!(blocked(&failed, 2_001));
        assert!(!holds_attempt(&take_attempt(failed, 31, 0, 2_002, &p), 31));
    }

    #[test]
    fn the_budget_allows_parallel_guesses_up_to_the_limit() {
        let p = policy();
        let mut c = Counters::default();
        for id in 0..10 {
            c = take_attempt(c, id, 0, 5_000, &p);
        }
        assert_eq!(c.pending.len(), 5);
        for id in 0..5 {
            c = settle_attempt(c, id, Settled::Failed, 5_001, &p);
        }
        assert_eq!(c.failures.len(), 5);
        assert!(blocked(&c, 5_001));
        // Settling an attempt that was never granted changes nothing but may fail.
        let c2 = settle_attempt(Counters::default(), 99, Settled::GivenBack, 1, &p);
        assert_eq!(c2, Counters::default());
    }

    /// Issue 24 item 15: attempts a stopped daemon run left behind hold the budget (a right
    /// proof is refused as busy) until the next run releases them — neither failures nor
    /// blocks: no answer ever went out for them.
    #[test]
    fn attempts_of_a_stopped_run_are_released_not_counted() {
        let p = policy();
        let mut c = Counters::default();
        for id in 0..5 {
            c = take_attempt(c, id, 7, 1_000, &p);
        }
        c.sign_in.pending.push(PendingAttempt {
            id: 50,
            at: 1_000,
            owner: 7,
        });
        let busy = take_attempt(c.clone(), 9, 8, 1_001, &p);
        assert!(
            !holds_attempt(&busy, 9) && !blocked(&busy, 1_001),
            "busy, not blocked"
        );
        let (c, released) = release_interrupted(c, |owner| owner != 8);
        assert_eq!(released, (5, 1));
        assert!(c.failures.is_empty() && c.sign_in.failures.is_empty());
        assert!(holds_attempt(&take_attempt(c, 9, 8, 1_001, &p), 9));
    }

    /// Issue 24 item 11: the tries left are the fewer of the flow's and the account's.
    #[test]
    fn attempts_left_are_the_fewer_of_the_flows_and_the_accounts() {
        let p = policy();
        let mut flow: ResetFlow = serde_json::from_value(serde_json::json!({
            "user_key": "u", "login": "u", "dn": "", "decoy": false, "created_at": 0,
            "expires_at": 99_999, "methods_required": 1, "questions_drawn": [],
            "verified": [], "failed_attempts": 0, "state": "open"
        }))
        .unwrap();
        let mut c = Counters::default();
        assert_eq!(attempts_left(&flow, &c, 1_000, &p), p.attempts_per_flow);
        flow.failed_attempts = 2;
        assert_eq!(attempts_left(&flow, &c, 1_000, &p), 1);
        flow.failed_attempts = 0;
        for t in 0..4 {
            c = record_failure(c, 900 + t, &p);
        }
        assert_eq!(attempts_left(&flow, &c, 1_000, &p), 1, "the account's last");
        c = record_failure(c, 950, &p);
        assert_eq!(attempts_left(&flow, &c, 1_000, &p), 0, "blocked");
    }

    #[test]
    fn an_interrupted_attempt_counts_as_a_failure() {
        let p = policy();
        let c = take_attempt(Counters::default(), 7, 0, 10_000, &p);
        // Never settled (the daemon stopped): later it is a failure, not a free guess.
        let later = take_attempt(c, 8, 0, 10_000 + STALE_ATTEMPT_SECS, &p);
        assert_eq!(later.failures.len(), 1);
        assert!(!holds_attempt(&later, 7) && holds_attempt(&later, 8));
        // Settling the stale one afterwards does not count it twice.
        let settled = settle_attempt(later, 7, Settled::Failed, 10_000 + STALE_ATTEMPT_SECS, &p);
        assert_eq!(settled.failures.len(), 1, "not counted twice");
    }

    /// Issue 24 item 5: the eleventh code in ten minutes is refused with the time the next
    /// may go (when the first leaves the window) — the account is not blocked; over a day,
    /// the daily window bounds the codes however they are spread.
    #[test]
    fn codes_over_a_window_are_throttled_not_blocked() {
        let w = [(10, 600), (20, 86_400)];
        let mut sends = Vec::new();
        for i in 0..10 {
            assert_eq!(record_send(&mut sends, 1_000 + i, &w), Ok(()));
        }
        assert_eq!(record_send(&mut sends, 1_100, &w), Err(1_600));
        assert_eq!(sends.len(), 10, "the refused send is not recorded");
        assert_eq!(record_send(&mut sends, 1_600, &w), Ok(()), "the first left");
        assert_eq!(record_send(&mut sends, 1_601, &w), Ok(()));
        assert_eq!(record_send(&mut sends, 1_601, &w), Err(1_602));
        // Spread out, the day's window still counts: twenty, then the next once the
        // first of them is a day old.
        let mut sends = Vec::new();
        for i in 0..20 {
            assert_eq!(record_send(&mut sends, i * 601, &w), Ok(()), "{i}");
        }
        assert_eq!(record_send(&mut sends, 20 * 601, &w), Err(86_400));
        assert_eq!(record_send(&mut sends, 86_400, &w), Ok(()));
        assert_eq!(sends.len(), 20, "a day's sends are kept, no more");
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
            let mut d = draw_questions(&mut rand::rng(), &reg, 3);
            assert_eq!(d.len(), 3);
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3);
        }
        assert_eq!(draw_questions(&mut rand::rng(), &reg[..2], 3).len(), 2);
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
