//! The registration session as a state machine, without IO: which answers may be
//! registered, what a contact's confirmation code does to the session, when a new method
//! becomes usable for reset, and how each change applies to the stored registration. The
//! executor (`service::registration`) signs the user in, hashes, sends, stores and audits.

use crate::delivery::text::phrase;
use crate::method::contact::ContactKind;
use crate::method::{Method, questions};
use crate::policy::{CodePolicy, QuestionBank};
use crate::secret::Secret;
use crate::store::{
    Authenticator, Contact, PendingContact, RegisteredQuestion, Registration, RegistrationSession,
    TokenHash,
};

/// Why the core refuses a registration step. The executor maps each to one service error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not the number of questions the policy registers: (wanted, given).
    WrongQuestionCount(usize, usize),
    UnknownQuestion(String),
    DuplicateQuestion(String),
    /// The answer to a question is too short or too long.
    BadAnswer(String, questions::AnswerError),
    DuplicateAnswer,
    /// Nothing pending to confirm: why, for the user.
    NothingToConfirm(&'static str),
    /// The session sent as many confirmation codes as the policy allows a flow.
    TooManyCodes,
}

/// Checks a set of security answers for registration and normalises them: exactly
/// `count` questions of the bank, each once, with distinct answers of acceptable length.
pub fn answers_to_register(
    bank: &QuestionBank,
    count: usize,
    answers: &[(String, Secret)],
) -> Result<Vec<(String, Secret)>, Refusal> {
    if answers.len() != count {
        return Err(Refusal::WrongQuestionCount(count, answers.len()));
    }
    let mut normalised: Vec<(String, Secret)> = Vec::with_capacity(count);
    for (qid, answer) in answers {
        if bank.get(qid).is_none() {
            return Err(Refusal::UnknownQuestion(qid.clone()));
        }
        if normalised.iter().any(|(q, _)| q == qid) {
            return Err(Refusal::DuplicateQuestion(qid.clone()));
        }
        let n = questions::normalise_checked(answer.expose())
            .map_err(|e| Refusal::BadAnswer(qid.clone(), e))?;
        // Compared in place: no plain copy of an answer outside a `Secret`.
        if normalised.iter().any(|(_, a)| a.expose() == n.expose()) {
            return Err(Refusal::DuplicateAnswer);
        }
        normalised.push((qid.clone(), n));
    }
    Ok(normalised)
}

/// The method a contact registers: email, SMS or a voice call to a mobile, an office phone.
pub fn contact_method(kind: ContactKind, voice: bool) -> Method {
    match (kind, voice) {
        (ContactKind::Email, _) => Method::Email,
        (ContactKind::Mobile, false) => Method::MobileSms,
        (ContactKind::Mobile, true) => Method::MobileVoice,
        (ContactKind::Office, _) => Method::OfficeVoice,
    }
}

/// When a method added in `session` may be used for reset: at once during the first
/// registration, after the cool-off period for a change by a user who could already reset.
pub fn usable_from(session: &RegistrationSession, now: u64, cooloff_secs: u64) -> u64 {
    if session.established {
        now + cooloff_secs
    } else {
        0
    }
}

/// What a contact's confirmation code's MAC is bound to: the session and the kind.
pub fn contact_context(session: &TokenHash, kind: ContactKind) -> String {
    format!("reg:{}:{kind:?}", hex::encode(session.0))
}

/// A confirmation code may be sent in `session`: it sent fewer than a flow may
/// (`max_sends_per_flow`). The account's and the destination's send windows are counted
/// apart, in the store ([`crate::flow::record_send`]).
pub fn may_send_confirmation(
    session: &RegistrationSession,
    codes: &CodePolicy,
) -> Result<(), Refusal> {
    if session.sends >= codes.max_sends_per_flow {
        return Err(Refusal::TooManyCodes);
    }
    Ok(())
}

/// The counters key of a destination of confirmation codes: a keyed hash of the mailbox
/// or number that receives them. An email's case and `+tag` do not make another
/// destination (`victim+1@…` reaches the same mailbox); a mobile and an office number that
/// are the same number are one.
pub fn destination_key(key: &[u8; 32], kind: ContactKind, value: &str) -> String {
    use sha2::{Digest, Sha256};
    let canonical = match kind {
        ContactKind::Email => {
            let lower = value.to_lowercase();
            match lower.split_once('@') {
                Some((local, domain)) => {
                    let local = local.split('+').next().unwrap_or(local);
                    format!("email:{local}@{domain}")
                }
                None => format!("email:{lower}"),
            }
        }
        ContactKind::Mobile | ContactKind::Office => format!("phone:{value}"),
    };
    let mut h = Sha256::new();
    h.update(b"destination\0");
    h.update(key);
    h.update(canonical.as_bytes());
    format!("destination:{}", hex::encode(&h.finalize()[..16]))
}

/// `session` after a confirmation code (MAC `mac`) was sent to `value` at `now`: pending,
/// replacing an earlier one of the same kind, and counted. Also when the code expires.
pub fn contact_code_sent(
    session: &RegistrationSession,
    kind: ContactKind,
    value: String,
    mac: String,
    now: u64,
    codes: &CodePolicy,
) -> (RegistrationSession, u64) {
    let expires_at = now + codes.ttl_secs;
    let mut next = session.clone();
    next.sends += 1;
    next.pending_contacts.retain(|p| p.kind != kind);
    next.pending_contacts.push(PendingContact {
        kind,
        value,
        code_mac: mac,
        expires_at,
        tries_left: codes.max_tries,
    });
    (next, expires_at)
}

/// What to do with a confirmation code submitted for `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactCheck {
    /// Expired or out of tries: store `next` (the code gone) and answer CodeExpired.
    Expired { next: RegistrationSession },
    /// Compare the submission with `pending`'s MAC, then ask [`contact_checked`].
    Compare { pending: PendingContact },
}

/// The first step of ConfirmContact.
pub fn contact_submitted(
    session: &RegistrationSession,
    kind: ContactKind,
    now: u64,
) -> Result<ContactCheck, Refusal> {
    let Some(p) = session
        .pending_contacts
        .iter()
        .find(|p| p.kind == kind)
        .cloned()
    else {
        return Err(Refusal::NothingToConfirm(
            "no code was sent for this kind of contact",
        ));
    };
    if p.expires_at <= now || p.tries_left == 0 {
        let mut next = session.clone();
        next.pending_contacts.retain(|x| x.kind != kind);
        return Ok(ContactCheck::Expired { next });
    }
    Ok(ContactCheck::Compare { pending: p })
}

/// The code was compared: the session to store (the code gone when right or out of tries,
/// one try fewer when wrong) and whether the contact is confirmed. The executor stores it
/// with compare-and-swap: whoever removes the pending code first wins.
pub fn contact_checked(
    session: &RegistrationSession,
    pending: &PendingContact,
    right: bool,
) -> RegistrationSession {
    let mut next = session.clone();
    next.pending_contacts.retain(|x| x.kind != pending.kind);
    if !right && pending.tries_left > 1 {
        next.pending_contacts.push(PendingContact {
            tries_left: pending.tries_left - 1,
            ..pending.clone()
        });
    }
    next
}

/// A change to a user's registration: the user's own, or an administrator's.
#[derive(Clone)]
pub enum Change {
    Questions(Vec<RegisteredQuestion>),
    Contact(Contact),
    Authenticator(Authenticator),
    Remove(Method),
    Reconfirmed(u64),
    /// An administrator set (`Some`, normalised) or cleared a contact at `at`. It is
    /// trusted: confirmed and usable for reset at once.
    AdminContact {
        kind: ContactKind,
        value: Option<String>,
        at: u64,
    },
    /// An administrator set or cleared the alternate email (not a reset method).
    AlternateEmail(Option<String>),
    /// An administrator revoked methods, all of them when the list is empty. A contact
    /// goes when any method using it is revoked (a mobile for SMS or for voice calls).
    Revoke(Vec<Method>),
    /// Contacts and the alternate email read from the directory by a prefill at `at`:
    /// each fills an empty one, or replaces it too when `overwrite`. Trusted like an
    /// administrator's contact.
    Prefill {
        contacts: Vec<(ContactKind, String)>,
        alternate_email: Option<String>,
        overwrite: bool,
        at: u64,
    },
}

/// Applies `change` to `reg` (the caller stamps `updated_at` and stores it).
pub fn apply(reg: &mut Registration, change: &Change) {
    match change {
        Change::Questions(q) => reg.questions = q.clone(),
        Change::Contact(c) => {
            reg.contacts.retain(|x| x.kind != c.kind);
            reg.contacts.push(c.clone());
        }
        Change::Authenticator(a) => reg.authenticator = Some(a.clone()),
        Change::Remove(Method::SecurityQuestions) => reg.questions.clear(),
        Change::Remove(Method::AuthenticatorCode) => reg.authenticator = None,
        Change::Remove(m) => {
            if let Some(kind) = m.contact_kind() {
                reg.contacts.retain(|c| c.kind != kind);
            }
        }
        Change::Reconfirmed(t) => reg.reconfirmed_at = *t,
        Change::AdminContact { kind, value, at } => {
            reg.contacts.retain(|c| c.kind != *kind);
            if let Some(v) = value {
                reg.contacts.push(Contact {
                    kind: *kind,
                    value: v.clone(),
                    confirmed_at: *at,
                    usable_from: *at,
                });
            }
        }
        Change::AlternateEmail(v) => reg.alternate_email = v.clone(),
        Change::Prefill {
            contacts,
            alternate_email,
            overwrite,
            at,
        } => {
            for (kind, value) in contacts {
                if *overwrite || reg.contact(*kind).is_none() {
                    reg.contacts.retain(|c| c.kind != *kind);
                    reg.contacts.push(Contact {
                        kind: *kind,
                        value: value.clone(),
                        confirmed_at: *at,
                        usable_from: *at,
                    });
                }
            }
            if let Some(v) = alternate_email
                && (*overwrite || reg.alternate_email.is_none())
            {
                reg.alternate_email = Some(v.clone());
            }
        }
        Change::Revoke(methods) => {
            let revokes = |m: Method| methods.is_empty() || methods.contains(&m);
            if revokes(Method::SecurityQuestions) {
                reg.questions.clear();
            }
            if revokes(Method::AuthenticatorCode) {
                reg.authenticator = None;
            }
            reg.contacts.retain(|c| {
                let using: &[Method] = match c.kind {
                    ContactKind::Email => &[Method::Email],
                    ContactKind::Mobile => &[Method::MobileSms, Method::MobileVoice],
                    ContactKind::Office => &[Method::OfficeVoice],
                };
                !using.iter().any(|m| revokes(*m))
            });
        }
    }
}

/// Whether `change` would change `reg` at all (a prefill that finds everything in place
/// leaves the registration alone).
pub fn alters(reg: &Registration, change: &Change) -> bool {
    let mut probe = reg.clone();
    apply(&mut probe, change);
    probe != *reg
}

/// The method a change is about, and whether it "added", "changed" or "removed" it given
/// the registration `before` (for the audit record and the notice to old channels); `None`
/// for a re-confirmation, which changes no method, and for an administrator's change,
/// audited and announced as the administrator's.
pub fn described(change: &Change, before: Option<&Registration>) -> Option<(Method, &'static str)> {
    let had = |present: bool| {
        if present {
            phrase::CHANGED
        } else {
            phrase::ADDED
        }
    };
    Some(match change {
        Change::Questions(_) => (
            Method::SecurityQuestions,
            had(before.is_some_and(|b| !b.questions.is_empty())),
        ),
        Change::Contact(c) => {
            let method = match c.kind {
                ContactKind::Email => Method::Email,
                ContactKind::Mobile => Method::MobileSms,
                ContactKind::Office => Method::OfficeVoice,
            };
            (
                method,
                had(before.and_then(|b| b.contact(c.kind)).is_some()),
            )
        }
        Change::Authenticator(_) => (
            Method::AuthenticatorCode,
            had(before.is_some_and(|b| b.authenticator.is_some())),
        ),
        Change::Remove(m) => (*m, phrase::REMOVED),
        Change::Reconfirmed(_)
        | Change::AdminContact { .. }
        | Change::AlternateEmail(_)
        | Change::Revoke(_)
        | Change::Prefill { .. } => return None,
    })
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
