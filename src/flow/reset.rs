//! The reset flow as a state machine, without IO: each function takes the flow as stored,
//! `now`, the policy, injected randomness and the results of the IO the executor
//! (`service::reset`) performed, and returns the next flow and what to do — or a
//! [`Refusal`]. The executor loads state, asks, carries out the effects in a fixed order
//! and persists the outcome; decoy flows go through the same functions.
//!
//! The states of a flow: open (proofs may be submitted) → open and verified enough → open
//! with a write intent ([`crate::store::WriteIntent`]) → completed; or closed (too many
//! wrong proofs, or another flow of the user reset the password); or expired.

use super::{AfterFailure, after_failure, decoy_registration, draw_questions, is_live};
use crate::delivery::text::phrase;
use crate::method::Method;
use crate::method::contact::{self, ContactKind};
use crate::policy::{CodePolicy, MethodPolicy, QuestionBank, QuestionPolicy, ResetPolicy};
use crate::store::{FlowCode, FlowState, Offer, ResetFlow, TokenHash};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Why the core refuses a step. The executor maps each to one service error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The flow is unknown, expired, closed or completed.
    FlowInvalid,
    /// The method was not offered in this flow.
    MethodNotAvailable,
    /// The method's factor is verified already.
    AlreadyVerified,
    /// The answers are not to exactly the questions drawn.
    WrongQuestions,
    /// SendCode for a method that has no code (questions, authenticator).
    NotACodeToSend,
    /// A code submitted for a method that has no code.
    NotACodeToVerify,
    /// The flow sent as many codes as the policy allows.
    TooManyCodes,
    /// Not enough verified to write or unlock: why, for the user.
    NotVerified(String),
}

/// A challenge for one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    SecurityQuestions(Vec<String>),
    /// Email / phone: SendCode, then VerifyMethod with the code.
    Code {
        method: Method,
        hint: String,
        length: usize,
    },
    Authenticator,
}

/// Where a flow stands after a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub verified: bool,
    pub methods_verified: u32,
    pub methods_required: u32,
    pub remaining: Vec<Challenge>,
    /// Wrong proofs left before the flow closes or the account is blocked
    /// ([`super::attempts_left`]).
    pub attempts_left: u32,
}

/// Who a new flow is for.
pub enum Subject<'a> {
    /// A user in scope whose usable methods meet the policy.
    User {
        /// The registration key (the directory's id).
        key: &'a str,
        login: &'a str,
        display_name: &'a str,
        dn: &'a str,
        admin: bool,
        offered: Vec<Offer>,
        required: u32,
        /// The question ids the user registered.
        registered: Vec<String>,
        /// The directory had locked the account when the flow started.
        locked: bool,
    },
    /// Anyone else (unknown, disabled, out of scope, unregistered): a flow of the same
    /// shape, derived from keyed hashes of the login, that can never be verified.
    Decoy {
        login: &'a str,
        key: &'a [u8; 32],
        bank: &'a QuestionBank,
        /// The policy of an ordinary user now: what a decoy "registered".
        methods: &'a MethodPolicy,
        email_domain: &'a str,
        /// The real registration's shape the name wears ([`super::decoy`]); `None`
        /// before any registration meets the policy: then a shape from the name's hash.
        likeness: Option<&'a super::decoy::Likeness>,
    },
}

/// A new flow for `subject` at `now`.
pub fn start(
    subject: Subject<'_>,
    now: u64,
    policy: &ResetPolicy,
    questions: QuestionPolicy,
    rng: &mut (impl Rng + ?Sized),
) -> ResetFlow {
    let (user_key, login, display_name, dn, decoy, admin, pool, offered, required, locked) =
        match subject {
            Subject::User {
                key,
                login,
                display_name,
                dn,
                admin,
                offered,
                required,
                registered,
                locked,
            } => (
                key.to_string(),
                login.to_string(),
                display_name.to_string(),
                dn.to_string(),
                false,
                admin,
                registered,
                offered,
                required,
                locked,
            ),
            Subject::Decoy {
                login,
                key,
                bank,
                methods,
                email_domain,
                likeness,
            } => {
                let (registered, offered) = match likeness {
                    Some(l) => (l.questions.clone(), super::decoy::offers(l, key, login)),
                    None => (
                        decoy_registration(bank, key, login, questions.register_count),
                        decoy_offers(key, login, methods, email_domain),
                    ),
                };
                (
                    super::decoy_user_key(key, login),
                    login.to_string(),
                    String::new(),
                    String::new(),
                    true,
                    false,
                    registered,
                    offered,
                    methods.required,
                    false,
                )
            }
        };
    let asks_questions = offered
        .iter()
        .any(|o| o.method == Method::SecurityQuestions);
    let decoy_questions = if decoy { pool.clone() } else { Vec::new() };
    ResetFlow {
        user_key,
        login,
        display_name,
        dn,
        decoy,
        admin,
        created_at: now,
        expires_at: now + policy.session_ttl_secs,
        methods_required: required,
        questions_drawn: if asks_questions {
            draw_questions(rng, &pool, questions.reset_count)
        } else {
            vec![]
        },
        verified: vec![],
        failed_attempts: 0,
        state: FlowState::Open,
        offered,
        codes: vec![],
        sends: 0,
        write: None,
        password_changed: false,
        by_admin: false,
        decoy_questions,
        locked,
    }
}

/// The methods a decoy account "has": derived from a keyed hash of the login, so they are
/// stable per name and look like a real user's (questions and email always; others by a
/// bit of the hash; enough factors for `mp.required`).
pub fn decoy_offers(
    key: &[u8; 32],
    login: &str,
    mp: &MethodPolicy,
    email_domain: &str,
) -> Vec<Offer> {
    let mut h = Sha256::new();
    h.update(b"offers\0");
    h.update(key);
    h.update(login.to_lowercase().as_bytes());
    let d = h.finalize();
    let mut out = Vec::new();
    let mut factors = HashSet::new();
    for (i, m) in mp.enabled.iter().enumerate() {
        let take = match m {
            Method::SecurityQuestions | Method::Email => true,
            _ => d[i] & 1 == 1,
        };
        if take || factors.len() < mp.required as usize {
            let hint = match m {
                Method::Email => {
                    let first = char::from(b'a' + d[20] % 26);
                    format!("{first}•••@{email_domain}")
                }
                Method::MobileSms | Method::MobileVoice | Method::OfficeVoice => {
                    let digits: String = d[21..31]
                        .iter()
                        .map(|b| char::from(b'0' + b % 10))
                        .collect();
                    contact::mask(ContactKind::Mobile, &format!("+1{digits}"))
                }
                _ => String::new(),
            };
            factors.insert(m.factor());
            out.push(Offer { method: *m, hint });
        }
    }
    out
}

/// The flow as found in the store, if it can take proofs or complete at `now`.
pub fn live(flow: Option<ResetFlow>, now: u64) -> Result<ResetFlow, Refusal> {
    flow.filter(|f| is_live(f, now)).ok_or(Refusal::FlowInvalid)
}

fn challenge(flow: &ResetFlow, offer: &Offer, code_length: usize) -> Challenge {
    match offer.method {
        Method::SecurityQuestions => Challenge::SecurityQuestions(flow.questions_drawn.clone()),
        Method::AuthenticatorCode => Challenge::Authenticator,
        m => Challenge::Code {
            method: m,
            hint: offer.hint.clone(),
            length: code_length,
        },
    }
}

/// Challenges of the methods whose factor is not verified yet.
pub fn remaining(flow: &ResetFlow, code_length: usize) -> Vec<Challenge> {
    let done: HashSet<_> = flow.verified.iter().map(|m| m.factor()).collect();
    flow.offered
        .iter()
        .filter(|o| !done.contains(&o.method.factor()))
        .map(|o| challenge(flow, o, code_length))
        .collect()
}

/// What a proof's answer says about `flow`.
pub fn verification(
    flow: &ResetFlow,
    verified: bool,
    code_length: usize,
    attempts_left: u32,
) -> Verification {
    Verification {
        attempts_left,
        verified,
        methods_verified: flow
            .verified
            .iter()
            .map(|m| m.factor())
            .collect::<HashSet<_>>()
            .len() as u32,
        methods_required: flow.methods_required,
        remaining: remaining(flow, code_length),
    }
}

/// A proof for `method` may be submitted in this flow.
pub fn may_prove(flow: &ResetFlow, method: Method) -> Result<(), Refusal> {
    if !flow.offered.iter().any(|o| o.method == method) {
        return Err(Refusal::MethodNotAvailable);
    }
    if flow.verified.iter().any(|m| m.factor() == method.factor()) {
        return Err(Refusal::AlreadyVerified);
    }
    Ok(())
}

/// Answers may be checked only when they are to exactly the questions drawn, once each.
pub fn answers_fit<'a>(
    flow: &ResetFlow,
    given: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    may_prove(flow, Method::SecurityQuestions)?;
    let asked: HashSet<&str> = flow.questions_drawn.iter().map(String::as_str).collect();
    let n = given.len();
    let given: HashSet<&str> = given.collect();
    if n != asked.len() || given != asked {
        return Err(Refusal::WrongQuestions);
    }
    Ok(())
}

/// What a checked proof does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Right, in a real flow: store `next` (the method recorded), give the attempt back,
    /// audit the success.
    Verified { next: ResetFlow, method: Method },
    /// Wrong (or any proof in a decoy flow): store `next` when there is one, count the
    /// attempt as a failure of the account, audit `reason`; `closed` says the flow is over.
    Wrong {
        next: Option<ResetFlow>,
        reason: &'static str,
        closed: bool,
    },
}

fn verified(flow: ResetFlow, method: Method) -> Verdict {
    let mut next = flow;
    next.verified.push(method);
    Verdict::Verified { next, method }
}

/// The security answers were checked (`all_right`: every one matched). Wrong answers count
/// against the flow: new questions are drawn from `registered` (the user's, or the decoy's),
/// or the flow closes after the policy's attempts.
pub fn questions_checked(
    flow: &ResetFlow,
    all_right: bool,
    registered: &[String],
    questions: QuestionPolicy,
    policy: &ResetPolicy,
    rng: &mut (impl Rng + ?Sized),
) -> Verdict {
    if all_right && !flow.decoy {
        return verified(flow.clone(), Method::SecurityQuestions);
    }
    let mut next = flow.clone();
    let after = after_failure(&mut next, policy);
    if after == AfterFailure::Retry {
        next.questions_drawn = draw_questions(rng, registered, questions.reset_count);
    }
    Verdict::Wrong {
        next: Some(next),
        reason: "wrong_answer",
        closed: after == AfterFailure::Closed,
    }
}

/// What to do with a code submitted for `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// No code outstanding (never sent, used, or out of tries): not verified, nothing
    /// counted.
    NoCode,
    /// The provider failed after SendCode answered: store `next` (the code gone) and report
    /// the failure, so the user resends.
    Undelivered {
        next: ResetFlow,
        why: crate::store::Undelivered,
    },
    /// The code expired: store `next` (the code gone); not verified, nothing counted.
    Expired { next: ResetFlow },
    /// Take an attempt and compare the submission with `code`, then ask [`code_checked`].
    Compare { code: FlowCode },
}

/// The first step of VerifyMethod with a code.
pub fn code_submitted(flow: &ResetFlow, method: Method, now: u64) -> Result<CodeCheck, Refusal> {
    if method.contact_kind().is_none() {
        return Err(Refusal::NotACodeToVerify);
    }
    may_prove(flow, method)?;
    let Some(code) = flow.codes.iter().find(|c| c.method == method).cloned() else {
        return Ok(CodeCheck::NoCode);
    };
    let mut next = flow.clone();
    next.codes.retain(|c| c.method != method);
    Ok(if let Some(why) = code.undelivered {
        CodeCheck::Undelivered { next, why }
    } else if code.expires_at <= now {
        CodeCheck::Expired { next }
    } else {
        CodeCheck::Compare { code }
    })
}

/// The code was compared (`right`: the MAC matched). A code is used once: right, it is gone;
/// wrong, it keeps its remaining tries, and is gone after the last.
pub fn code_checked(flow: &ResetFlow, code: FlowCode, right: bool) -> Verdict {
    let method = code.method;
    let mut next = flow.clone();
    next.codes.retain(|c| c.method != method);
    if right && !flow.decoy {
        return verified(next, method);
    }
    if code.tries_left > 1 {
        next.codes.push(FlowCode {
            tries_left: code.tries_left - 1,
            ..code
        });
    }
    Verdict::Wrong {
        next: Some(next),
        reason: "wrong_code",
        closed: false,
    }
}

/// The authenticator code was checked (`right`: accepted, its step recorded as used).
pub fn authenticator_checked(flow: &ResetFlow, right: bool) -> Verdict {
    if right && !flow.decoy {
        return verified(flow.clone(), Method::AuthenticatorCode);
    }
    Verdict::Wrong {
        next: None,
        reason: "wrong_authenticator_code",
        closed: false,
    }
}

/// A code may be sent for `method` in this flow.
pub fn may_send(flow: &ResetFlow, method: Method, codes: &CodePolicy) -> Result<(), Refusal> {
    if method.contact_kind().is_none() {
        return Err(Refusal::NotACodeToSend);
    }
    may_prove(flow, method)?;
    if flow.sends >= codes.max_sends_per_flow {
        return Err(Refusal::TooManyCodes);
    }
    Ok(())
}

/// `flow` after a code for `method` was generated (its MAC `mac`) at `now`: the send
/// counted, a previous code of the method replaced. Also when the code expires.
pub fn code_sent(
    flow: &ResetFlow,
    method: Method,
    mac: String,
    now: u64,
    codes: &CodePolicy,
) -> (ResetFlow, u64) {
    let expires_at = now + codes.ttl_secs;
    let mut next = flow.clone();
    next.sends += 1;
    next.codes.retain(|c| c.method != method);
    next.codes.push(FlowCode {
        method,
        mac,
        expires_at,
        tries_left: codes.max_tries,
        undelivered: None,
    });
    (next, expires_at)
}

/// What a flow code's MAC is bound to: the flow and the method.
pub fn code_context(flow: &TokenHash, method: Method) -> String {
    format!("flow:{}:{}", hex::encode(flow.0), method.name())
}

/// Whether enough is verified to write the password or unlock, under `mp` (the policy for
/// the user now) and the flow's own number of methods, which may be stricter. A decoy never
/// is.
pub fn may_complete(flow: &ResetFlow, mp: &MethodPolicy) -> Result<(), Refusal> {
    if flow.decoy {
        let why = mp
            .unmet(&[])
            .unwrap_or_else(|| "verify the required methods first".into());
        return Err(Refusal::NotVerified(why));
    }
    let required = MethodPolicy {
        required: mp.required.max(flow.methods_required),
        ..mp.clone()
    };
    match required.unmet(&flow.verified) {
        Some(why) => Err(Refusal::NotVerified(why)),
        None => Ok(()),
    }
}

/// `flow` after a write that did not happen: without its intent; closed if it was an
/// administrator's reset (nothing else can use it).
pub fn without_write(flow: &ResetFlow) -> ResetFlow {
    let mut cleared = flow.clone();
    cleared.write = None;
    if flow.by_admin {
        cleared.state = FlowState::Closed;
    }
    cleared
}

/// `flow` spent: completed, its codes and write intent gone.
pub fn completed(flow: &ResetFlow, password_changed: bool) -> ResetFlow {
    let mut done = flow.clone();
    done.state = FlowState::Completed;
    done.password_changed = password_changed;
    done.codes.clear();
    done.write = None;
    done
}

/// An open flow closed by a reset of the same user: its codes gone.
pub fn closed(flow: &ResetFlow) -> ResetFlow {
    let mut closed = flow.clone();
    closed.state = FlowState::Closed;
    closed.codes.clear();
    closed
}

/// The flow changes that end a reset (or unlock) of flow `h`: `h` completed, every other
/// open flow of the user closed. `current` is `h` as stored now; `others` the user's other
/// flows. Each entry is (flow, as stored, as it becomes), for one compare-and-swap batch.
pub fn ending(
    h: &TokenHash,
    current: Option<ResetFlow>,
    others: Vec<(TokenHash, ResetFlow)>,
    password_changed: bool,
) -> Vec<(TokenHash, ResetFlow, ResetFlow)> {
    let mut out = Vec::new();
    if let Some(current) = current {
        let done = completed(&current, password_changed);
        out.push((*h, current, done));
    }
    for (other, f) in others {
        if other != *h && f.state == FlowState::Open {
            let c = closed(&f);
            out.push((other, f, c));
        }
    }
    out
}

/// Whether a flow spent at `now` had changed the password (a repeated CompleteReset is
/// told RESET_ALREADY_COMPLETED rather than FLOW_INVALID).
pub fn changed_password(flow: &ResetFlow, now: u64) -> bool {
    flow.password_changed && flow.expires_at > now
}

/// The audit kind of a flow's password write.
pub fn write_kind(flow: &ResetFlow) -> &'static str {
    if flow.by_admin {
        "admin.reset"
    } else {
        "reset.complete"
    }
}

/// What the user's contacts are told a flow's write did.
pub fn written_what(flow: &ResetFlow, unlocked: bool) -> &'static str {
    match (flow.by_admin, unlocked) {
        (true, _) => phrase::RESET_BY_ADMIN,
        (false, true) => phrase::RESET_AND_UNLOCKED,
        (false, false) => phrase::PASSWORD_RESET,
    }
}

#[cfg(test)]
#[path = "reset_tests.rs"]
mod tests;
