//! One test per transition of the registration core. No server, no store, no clock.

use super::*;
use crate::flow::fixtures::codes;
use proptest::prelude::*;

const NOW: u64 = 1_000_000;

fn session(established: bool) -> RegistrationSession {
    RegistrationSession {
        user_id: "id-1".into(),
        login: "alice".into(),
        dn: "uid=alice,dc=example,dc=org".into(),
        expires_at: NOW + 600,
        established,
        admin: false,
        pending_contacts: vec![],
        pending_authenticator: None,
        language: None,
        sends: 0,
    }
}

fn answers(pairs: &[(&str, &str)]) -> Vec<(String, Secret)> {
    pairs
        .iter()
        .map(|(q, a)| (q.to_string(), Secret::from(a.to_string())))
        .collect()
}

const H: TokenHash = TokenHash([1u8; 32]);

#[test]
fn answers_to_register_cases() {
    let bank = QuestionBank::build(true, &[]).unwrap();
    let (a, b, c) = ("bank.birth_city", "bank.first_pet", "bank.first_school");
    use questions::AnswerError::*;
    let long = "x".repeat(41);
    type Case<'a> = (Vec<(&'a str, &'a str)>, Result<(), Refusal>);
    let cases: Vec<Case> = vec![
        (vec![(a, "Paris"), (b, "Rex"), (c, "Lycée")], Ok(())),
        (
            vec![(a, "Paris"), (b, "Rex")],
            Err(Refusal::WrongQuestionCount(3, 2)),
        ),
        (
            vec![(a, "Paris"), (b, "Rex"), ("bank.nope", "x y z")],
            Err(Refusal::UnknownQuestion("bank.nope".into())),
        ),
        (
            vec![(a, "Paris"), (a, "Rex"), (c, "Lycée")],
            Err(Refusal::DuplicateQuestion(a.into())),
        ),
        (
            vec![(a, "Paris"), (b, "no"), (c, "Lycée")],
            Err(Refusal::BadAnswer(b.into(), TooShort)),
        ),
        (
            vec![(a, "Paris"), (b, &long), (c, "Lycée")],
            Err(Refusal::BadAnswer(b.into(), TooLong)),
        ),
        // The same answer after normalisation (case, white space).
        (
            vec![(a, "Paris"), (b, "  PARIS "), (c, "Lycée")],
            Err(Refusal::DuplicateAnswer),
        ),
    ];
    for (i, (given, want)) in cases.into_iter().enumerate() {
        let got = answers_to_register(&bank, 3, &answers(&given)).map(|n| {
            assert_eq!(n.len(), 3);
            assert_eq!(n[0].1.expose(), "paris", "answers are normalised");
        });
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn contacts_register_their_methods() {
    use ContactKind::*;
    let cases = [
        (Email, false, Method::Email),
        (Email, true, Method::Email),
        (Mobile, false, Method::MobileSms),
        (Mobile, true, Method::MobileVoice),
        (Office, false, Method::OfficeVoice),
        (Office, true, Method::OfficeVoice),
    ];
    for (kind, voice, method) in cases {
        assert_eq!(
            contact_method(kind, voice),
            method,
            "{kind:?} voice {voice}"
        );
    }
}

#[test]
fn methods_added_by_an_established_user_wait_out_the_cool_off() {
    assert_eq!(usable_from(&session(false), NOW, 86_400), 0);
    assert_eq!(usable_from(&session(true), NOW, 86_400), NOW + 86_400);
}

#[test]
fn a_contact_code_replaces_the_pending_one_of_its_kind() {
    let s = session(false);
    let (s1, exp) = contact_code_sent(
        &s,
        ContactKind::Email,
        "a@example.org".into(),
        "m1".into(),
        NOW,
        &codes(),
    );
    assert_eq!(exp, NOW + 600);
    let (s2, _) = contact_code_sent(
        &s1,
        ContactKind::Mobile,
        "+15551234567".into(),
        "s1".into(),
        NOW,
        &codes(),
    );
    let (s3, _) = contact_code_sent(
        &s2,
        ContactKind::Email,
        "b@example.org".into(),
        "m2".into(),
        NOW,
        &codes(),
    );
    assert_eq!(s3.pending_contacts.len(), 2);
    let email = s3
        .pending_contacts
        .iter()
        .find(|p| p.kind == ContactKind::Email)
        .unwrap();
    assert_eq!(
        (email.value.as_str(), email.code_mac.as_str()),
        ("b@example.org", "m2")
    );
    assert_eq!(email.tries_left, 3);
    assert_ne!(
        contact_context(&H, ContactKind::Email),
        contact_context(&H, ContactKind::Mobile)
    );
}

/// Issue 24 item 2: a session sends as many confirmation codes as a flow may, no more; one
/// mailbox (whatever the case or `+tag`) or one number is one destination.
#[test]
fn confirmations_are_capped_per_session_and_counted_per_destination() {
    let mut s = session(false);
    for i in 0..codes().max_sends_per_flow {
        assert_eq!(may_send_confirmation(&s, &codes()), Ok(()), "{i}");
        s = contact_code_sent(
            &s,
            ContactKind::Email,
            format!("v{i}@example.org"),
            "m".into(),
            NOW,
            &codes(),
        )
        .0;
    }
    assert_eq!(s.sends, codes().max_sends_per_flow);
    assert_eq!(
        may_send_confirmation(&s, &codes()),
        Err(Refusal::TooManyCodes)
    );
    let k = [3u8; 32];
    let victim = destination_key(&k, ContactKind::Email, "victim@outside.example");
    for same in [
        "Victim@Outside.Example",
        "victim+1@outside.example",
        "victim+x+y@outside.example",
    ] {
        assert_eq!(
            destination_key(&k, ContactKind::Email, same),
            victim,
            "{same}"
        );
    }
    assert_ne!(
        destination_key(&k, ContactKind::Email, "victim2@outside.example"),
        victim
    );
    assert_ne!(
        destination_key(&[4u8; 32], ContactKind::Email, "victim@outside.example"),
        victim
    );
    assert_eq!(
        destination_key(&k, ContactKind::Mobile, "+15551234567"),
        destination_key(&k, ContactKind::Office, "+15551234567")
    );
    assert!(!victim.contains("victim"), "{victim}");
}

/// A first session with a confirmation code pending for an email address.
fn email_pending() -> RegistrationSession {
    let sent = contact_code_sent(
        &session(false),
        ContactKind::Email,
        "a@example.org".into(),
        "m".into(),
        NOW,
        &codes(),
    );
    sent.0
}

#[test]
fn contact_submitted_cases() {
    let live = email_pending();
    let fresh = session(false);
    let mut used_up = live.clone();
    used_up.pending_contacts[0].tries_left = 0;
    // (session, at, expected)
    let cases: Vec<(&RegistrationSession, u64, &str)> = vec![
        (&fresh, NOW, "nothing"),
        (&live, NOW + 599, "compare"),
        (&live, NOW + 600, "expired"),
        (&used_up, NOW, "expired"),
    ];
    for (i, (s, at, want)) in cases.into_iter().enumerate() {
        let got = match contact_submitted(s, ContactKind::Email, at) {
            Ok(ContactCheck::Compare { .. }) => "compare",
            Ok(ContactCheck::Expired { next }) => {
                assert!(next.pending_contacts.is_empty());
                "expired"
            }
            Err(Refusal::NothingToConfirm(_)) => "nothing",
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(got, want, "case {i}");
    }
    assert!(matches!(
        contact_submitted(&live, ContactKind::Mobile, NOW),
        Err(Refusal::NothingToConfirm(_))
    ));
}

#[test]
fn a_right_contact_code_is_used_once_wrong_ones_use_up_the_tries() {
    let mut s = email_pending();
    let right = contact_checked(&s, &s.pending_contacts[0].clone(), true);
    assert!(right.pending_contacts.is_empty());
    for left in [2u32, 1, 0] {
        let p = s.pending_contacts[0].clone();
        s = contact_checked(&s, &p, false);
        match left {
            0 => assert!(s.pending_contacts.is_empty()),
            n => assert_eq!(s.pending_contacts[0].tries_left, n),
        }
    }
}

fn contact(kind: ContactKind, value: &str) -> Contact {
    Contact {
        kind,
        value: value.into(),
        confirmed_at: NOW,
        usable_from: 0,
    }
}

fn authenticator() -> Authenticator {
    Authenticator {
        sealed_secret: "sealed".into(),
        last_step: 1,
        enrolled_at: NOW,
        usable_from: 0,
    }
}

#[test]
fn changes_apply_and_describe_themselves() {
    let questions = vec![RegisteredQuestion {
        question_id: "bank.birth_city".into(),
        answer_hash: "h".into(),
    }];
    let mut reg = Registration::empty("id-1", "alice", 0);
    let steps: Vec<(Change, Option<(Method, &str)>)> = vec![
        (
            Change::Questions(questions.clone()),
            Some((Method::SecurityQuestions, "added")),
        ),
        (
            Change::Questions(questions),
            Some((Method::SecurityQuestions, "changed")),
        ),
        (
            Change::Contact(contact(ContactKind::Email, "a@example.org")),
            Some((Method::Email, "added")),
        ),
        (
            Change::Contact(contact(ContactKind::Email, "b@example.org")),
            Some((Method::Email, "changed")),
        ),
        (
            Change::Contact(contact(ContactKind::Mobile, "+15551234567")),
            Some((Method::MobileSms, "added")),
        ),
        (
            Change::Authenticator(authenticator()),
            Some((Method::AuthenticatorCode, "added")),
        ),
        (
            Change::Authenticator(authenticator()),
            Some((Method::AuthenticatorCode, "changed")),
        ),
        (Change::Reconfirmed(NOW), None),
        (
            Change::Remove(Method::MobileVoice),
            Some((Method::MobileVoice, "removed")),
        ),
        (
            Change::Remove(Method::SecurityQuestions),
            Some((Method::SecurityQuestions, "removed")),
        ),
        (
            Change::Remove(Method::AuthenticatorCode),
            Some((Method::AuthenticatorCode, "removed")),
        ),
    ];
    for (i, (change, want)) in steps.into_iter().enumerate() {
        assert_eq!(described(&change, Some(&reg)), want, "step {i}");
        apply(&mut reg, &change);
        match i {
            3 => {
                assert_eq!(reg.contacts.len(), 1, "one contact per kind");
                assert_eq!(reg.contacts[0].value, "b@example.org");
            }
            7 => assert_eq!(reg.reconfirmed_at, NOW),
            // Removing a voice call to the mobile removes the mobile.
            8 => assert_eq!(reg.contacts.len(), 1),
            9 => assert!(reg.questions.is_empty()),
            10 => assert!(reg.authenticator.is_none()),
            _ => {}
        }
    }
    assert_eq!(reg.contacts[0].kind, ContactKind::Email);
    // Nothing registered before: everything is added.
    assert_eq!(
        described(&Change::Authenticator(authenticator()), None),
        Some((Method::AuthenticatorCode, "added"))
    );
}

/// A registration with every method: questions, email, mobile, office, authenticator.
fn full() -> Registration {
    let mut reg = Registration::empty("id-1", "alice", 0);
    apply(
        &mut reg,
        &Change::Questions(vec![RegisteredQuestion {
            question_id: "bank.birth_city".into(),
            answer_hash: "h".into(),
        }]),
    );
    for (kind, value) in [
        (ContactKind::Email, "a@example.org"),
        (ContactKind::Mobile, "+15551234567"),
        (ContactKind::Office, "+15557654321"),
    ] {
        apply(&mut reg, &Change::Contact(contact(kind, value)));
    }
    apply(&mut reg, &Change::Authenticator(authenticator()));
    reg
}

fn kinds(reg: &Registration) -> Vec<ContactKind> {
    reg.contacts.iter().map(|c| c.kind).collect()
}

#[test]
fn an_administrators_contact_is_trusted_at_once_and_can_be_cleared() {
    let mut reg = Registration::empty("id-1", "alice", 0);
    let set = Change::AdminContact {
        kind: ContactKind::Mobile,
        value: Some("+15551234567".into()),
        at: NOW,
    };
    apply(&mut reg, &set);
    let c = reg.contact(ContactKind::Mobile).unwrap();
    assert_eq!((c.confirmed_at, c.usable_from), (NOW, NOW));
    assert_eq!(
        described(&set, None),
        None,
        "audited as the administrator's"
    );
    apply(
        &mut reg,
        &Change::AdminContact {
            kind: ContactKind::Mobile,
            value: None,
            at: NOW,
        },
    );
    assert!(reg.contacts.is_empty());
    apply(
        &mut reg,
        &Change::AlternateEmail(Some("b@example.org".into())),
    );
    assert_eq!(reg.alternate_email.as_deref(), Some("b@example.org"));
    assert!(
        reg.contacts.is_empty(),
        "the alternate email is not a method"
    );
    apply(&mut reg, &Change::AlternateEmail(None));
    assert_eq!(reg.alternate_email, None);
}

#[test]
fn revoke_cases() {
    use ContactKind::*;
    // (methods revoked, contacts left, questions left, authenticator left)
    let cases: Vec<(Vec<Method>, Vec<ContactKind>, bool, bool)> = vec![
        (vec![], vec![], false, false),
        (vec![Method::Email], vec![Mobile, Office], true, true),
        // A voice call to the mobile uses the same contact as SMS: it goes.
        (vec![Method::MobileVoice], vec![Email, Office], true, true),
        (vec![Method::MobileSms], vec![Email, Office], true, true),
        (
            vec![Method::SecurityQuestions, Method::AuthenticatorCode],
            vec![Email, Mobile, Office],
            false,
            false,
        ),
    ];
    for (i, (methods, contacts, questions, auth)) in cases.into_iter().enumerate() {
        let mut reg = full();
        apply(&mut reg, &Change::Revoke(methods));
        assert_eq!(kinds(&reg), contacts, "case {i}");
        assert_eq!(!reg.questions.is_empty(), questions, "case {i}");
        assert_eq!(reg.authenticator.is_some(), auth, "case {i}");
    }
}

#[test]
fn prefill_fills_empty_contacts_and_overwrites_only_when_asked() {
    let prefill = |overwrite: bool| Change::Prefill {
        contacts: vec![
            (ContactKind::Email, "dir@example.org".into()),
            (ContactKind::Mobile, "+15550000000".into()),
        ],
        alternate_email: Some("alt@example.org".into()),
        overwrite,
        at: NOW,
    };
    let mut reg = Registration::empty("id-1", "alice", 0);
    apply(
        &mut reg,
        &Change::Contact(contact(ContactKind::Email, "own@example.org")),
    );
    assert!(alters(&reg, &prefill(false)));
    let mut kept = reg.clone();
    apply(&mut kept, &prefill(false));
    assert_eq!(
        kept.contact(ContactKind::Email).unwrap().value,
        "own@example.org"
    );
    let mobile = kept.contact(ContactKind::Mobile).unwrap();
    assert_eq!(
        (mobile.value.as_str(), mobile.usable_from),
        ("+15550000000", NOW)
    );
    assert_eq!(kept.alternate_email.as_deref(), Some("alt@example.org"));
    // Everything in place: a second run changes nothing.
    assert!(!alters(&kept, &prefill(false)));
    let mut replaced = reg;
    apply(&mut replaced, &prefill(true));
    assert_eq!(
        replaced.contact(ContactKind::Email).unwrap().value,
        "dir@example.org"
    );
    assert_eq!(described(&prefill(true), None), None);
}

proptest! {
    /// However wrong codes and resends interleave, a session holds at most one pending
    /// code per kind, never one without tries, and never more tries than the policy gives.
    #[test]
    fn pending_codes_stay_bounded(steps in proptest::collection::vec((0u8..3, any::<bool>()), 0..30)) {
        let mut s = session(true);
        for (kind, resend) in steps {
            let kind = [ContactKind::Email, ContactKind::Mobile, ContactKind::Office][kind as usize];
            if resend {
                s = contact_code_sent(&s, kind, "v".into(), "m".into(), NOW, &codes()).0;
            } else if let Ok(ContactCheck::Compare { pending }) = contact_submitted(&s, kind, NOW) {
                s = contact_checked(&s, &pending, false);
            }
            let mut kinds: Vec<_> = s.pending_contacts.iter().map(|p| p.kind).collect();
            kinds.sort_by_key(|k| *k as u8);
            kinds.dedup();
            prop_assert_eq!(kinds.len(), s.pending_contacts.len());
            prop_assert!(s.pending_contacts.iter().all(|p| (1..=3).contains(&p.tries_left)));
        }
    }
}
