//! One test per transition of the reset core, and properties over arbitrary sequences of
//! proofs. No server, no store, no clock: `now` and the random source are arguments.

use super::*;
use crate::flow::fixtures::{codes, policy};
use crate::method::contact::ContactKind;
use crate::store::{
    Authenticator, Contact, RegisteredQuestion, Registration, Undelivered, WriteIntent,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 1_000_000;

fn methods(enabled: &[Method], required: u32) -> MethodPolicy {
    MethodPolicy {
        enabled: enabled.to_vec(),
        required,
        questions_not_only: false,
        sms_alone_not_allowed: false,
    }
}

fn qp() -> QuestionPolicy {
    QuestionPolicy {
        register_count: 5,
        reset_count: 3,
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn registered() -> Vec<String> {
    (0..5).map(|i| format!("q{i}")).collect()
}

fn offer(m: Method) -> Offer {
    Offer {
        method: m,
        hint: String::new(),
    }
}

/// A real user's open flow offering `offered`, `required` factors.
fn user_flow(offered: &[Method], required: u32) -> ResetFlow {
    start(
        Subject::User {
            key: "id-1",
            login: "alice",
            display_name: "Alice",
            dn: "uid=alice,dc=example,dc=org",
            admin: false,
            offered: offered.iter().copied().map(offer).collect(),
            required,
            registered: registered(),
            locked: false,
        },
        NOW,
        &policy(),
        qp(),
        &mut rng(),
    )
}

fn decoy_flow(mp: &MethodPolicy) -> ResetFlow {
    let bank = QuestionBank::build(true, &[]).unwrap();
    start(
        Subject::Decoy {
            login: "nobody",
            key: &[9u8; 32],
            bank: &bank,
            methods: mp,
            email_domain: "example.org",
            likeness: None,
        },
        NOW,
        &policy(),
        qp(),
        &mut rng(),
    )
}

fn with_code(flow: &ResetFlow, method: Method, expires_at: u64, tries_left: u32) -> ResetFlow {
    let mut f = flow.clone();
    f.codes.push(FlowCode {
        method,
        mac: "mac".into(),
        expires_at,
        tries_left,
        undelivered: None,
    });
    f
}

const H: TokenHash = TokenHash([1u8; 32]);

// --- start ---

#[test]
fn start_a_real_user_draws_from_the_registered_questions() {
    let f = user_flow(&[Method::SecurityQuestions, Method::Email], 1);
    assert!(!f.decoy);
    assert_eq!(f.state, FlowState::Open);
    assert_eq!(f.expires_at, NOW + 900);
    assert_eq!(f.questions_drawn.len(), 3);
    assert!(f.questions_drawn.iter().all(|q| registered().contains(q)));
    assert_eq!(f.methods_required, 1);
}

#[test]
fn start_without_questions_offered_draws_none() {
    let f = user_flow(&[Method::Email, Method::AuthenticatorCode], 2);
    assert!(f.questions_drawn.is_empty());
}

#[test]
fn start_a_decoy_looks_like_a_user_and_is_stable_per_login() {
    let mp = methods(&[Method::SecurityQuestions, Method::Email], 1);
    let d = decoy_flow(&mp);
    let real = user_flow(&[Method::SecurityQuestions, Method::Email], 1);
    assert!(d.decoy);
    assert!(d.dn.is_empty());
    assert!(d.user_key.starts_with("decoy:"));
    assert_eq!(d.questions_drawn.len(), real.questions_drawn.len());
    assert_eq!(d.methods_required, real.methods_required);
    let methods_of = |f: &ResetFlow| f.offered.iter().map(|o| o.method).collect::<Vec<_>>();
    assert_eq!(methods_of(&d), methods_of(&real));
    assert!(d.offered[1].hint.ends_with("@example.org"));
    // Offers are the same on every start for one name.
    assert_eq!(decoy_flow(&mp).offered, d.offered);
}

#[test]
fn start_a_decoy_offers_enough_factors_for_two_methods() {
    let mp = methods(&[Method::SecurityQuestions, Method::AuthenticatorCode], 2);
    for i in 0..32 {
        let login = format!("user{i}");
        let o = decoy_offers(&[3u8; 32], &login, &mp, "example.org");
        let factors: HashSet<_> = o.iter().map(|o| o.method.factor()).collect();
        assert!(factors.len() >= 2, "{login}: {o:?}");
    }
}

#[test]
fn offers_leave_out_methods_in_cool_off_and_too_few_questions() {
    let mp = methods(
        &[
            Method::SecurityQuestions,
            Method::Email,
            Method::MobileSms,
            Method::AuthenticatorCode,
        ],
        1,
    );
    let mut reg = Registration::empty("id-1", "alice", 0);
    reg.questions = (0..2)
        .map(|i| RegisteredQuestion {
            question_id: format!("q{i}"),
            answer_hash: String::new(),
        })
        .collect();
    reg.contacts = vec![
        Contact {
            kind: ContactKind::Email,
            value: "alice@example.org".into(),
            confirmed_at: 0,
            usable_from: 0,
        },
        Contact {
            kind: ContactKind::Mobile,
            value: "+15551234567".into(),
            confirmed_at: 0,
            usable_from: NOW + 1,
        },
    ];
    reg.authenticator = Some(Authenticator {
        sealed_secret: String::new(),
        last_step: 0,
        enrolled_at: 0,
        usable_from: NOW,
    });
    let got: Vec<Method> = crate::flow::offers(&reg, &mp, NOW, 3)
        .iter()
        .map(|o| o.method)
        .collect();
    // Two questions of three asked: not offered; the mobile is in cool-off until NOW + 1.
    assert_eq!(got, vec![Method::Email, Method::AuthenticatorCode]);
    let email = &crate::flow::offers(&reg, &mp, NOW, 3)[0];
    assert_ne!(email.hint, "alice@example.org", "hints are masked");
}

#[test]
fn live_refuses_missing_expired_closed_and_completed_flows() {
    let f = user_flow(&[Method::Email], 1);
    let mut closed_flow = f.clone();
    closed_flow.state = FlowState::Closed;
    let mut done = f.clone();
    done.state = FlowState::Completed;
    let cases: [(Option<ResetFlow>, u64, bool); 6] = [
        (Some(f.clone()), NOW, true),
        (Some(f.clone()), NOW + 899, true),
        (Some(f.clone()), NOW + 900, false),
        (None, NOW, false),
        (Some(closed_flow), NOW, false),
        (Some(done), NOW, false),
    ];
    for (i, (flow, now, ok)) in cases.into_iter().enumerate() {
        assert_eq!(live(flow, now).is_ok(), ok, "case {i}");
    }
}

// --- proofs may be submitted ---

#[test]
fn may_prove_only_offered_and_not_yet_verified_factors() {
    let mut f = user_flow(&[Method::MobileSms, Method::Email], 2);
    assert_eq!(
        may_prove(&f, Method::AuthenticatorCode),
        Err(Refusal::MethodNotAvailable)
    );
    assert_eq!(may_prove(&f, Method::MobileSms), Ok(()));
    f.verified.push(Method::MobileSms);
    assert_eq!(
        may_prove(&f, Method::MobileSms),
        Err(Refusal::AlreadyVerified)
    );
    // A voice call to the same mobile proves the same factor.
    f.offered.push(offer(Method::MobileVoice));
    assert_eq!(
        may_prove(&f, Method::MobileVoice),
        Err(Refusal::AlreadyVerified)
    );
    assert_eq!(may_prove(&f, Method::Email), Ok(()));
}

#[test]
fn answers_must_be_to_exactly_the_questions_drawn() {
    let f = user_flow(&[Method::SecurityQuestions], 1);
    let drawn: Vec<&str> = f.questions_drawn.iter().map(String::as_str).collect();
    let other = registered()
        .into_iter()
        .find(|q| !f.questions_drawn.contains(q))
        .unwrap();
    let cases: Vec<(Vec<&str>, Result<(), Refusal>)> = vec![
        (drawn.clone(), Ok(())),
        (drawn[..2].to_vec(), Err(Refusal::WrongQuestions)),
        (
            vec![drawn[0], drawn[1], drawn[1]],
            Err(Refusal::WrongQuestions),
        ),
        (
            vec![drawn[0], drawn[1], drawn[2], drawn[2]],
            Err(Refusal::WrongQuestions),
        ),
        (
            vec![drawn[0], drawn[1], other.as_str()],
            Err(Refusal::WrongQuestions),
        ),
    ];
    for (i, (given, want)) in cases.into_iter().enumerate() {
        assert_eq!(answers_fit(&f, given.into_iter()), want, "case {i}");
    }
    let no_questions = user_flow(&[Method::Email], 1);
    assert_eq!(
        answers_fit(&no_questions, std::iter::empty()),
        Err(Refusal::MethodNotAvailable)
    );
}

// --- questions ---

#[test]
fn right_answers_verify_the_questions() {
    let f = user_flow(&[Method::SecurityQuestions, Method::Email], 2);
    let v = questions_checked(&f, true, &registered(), qp(), &policy(), &mut rng());
    let Verdict::Verified { next, method } = v else {
        panic!("{v:?}")
    };
    assert_eq!(method, Method::SecurityQuestions);
    assert_eq!(next.verified, vec![Method::SecurityQuestions]);
    let after = verification(&next, true, 6, 3);
    assert_eq!(after.methods_verified, 1);
    assert_eq!(
        after.remaining,
        vec![Challenge::Code {
            method: Method::Email,
            hint: String::new(),
            length: 6
        }]
    );
}

#[test]
fn a_wrong_answer_redraws_then_the_last_attempt_closes() {
    let f = user_flow(&[Method::SecurityQuestions], 1);
    let mut flow = f.clone();
    let mut r = rng();
    for attempt in 1..=3u32 {
        let v = questions_checked(&flow, false, &registered(), qp(), &policy(), &mut r);
        let Verdict::Wrong {
            next: Some(next),
            reason,
            closed,
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!(reason, "wrong_answer");
        assert_eq!(next.failed_attempts, attempt);
        assert_eq!(closed, attempt == 3, "attempt {attempt}");
        if closed {
            assert_eq!(next.state, FlowState::Closed);
        } else {
            assert_eq!(next.state, FlowState::Open);
            assert_eq!(next.questions_drawn.len(), 3);
            assert!(
                next.questions_drawn
                    .iter()
                    .all(|q| registered().contains(q))
            );
        }
        flow = next;
    }
}

#[test]
fn a_decoy_is_never_verified_by_questions() {
    let d = decoy_flow(&methods(&[Method::SecurityQuestions], 1));
    let v = questions_checked(&d, true, &registered(), qp(), &policy(), &mut rng());
    assert!(matches!(v, Verdict::Wrong { closed: false, .. }), "{v:?}");
}

// --- codes ---

#[test]
fn may_send_codes_for_offered_contact_methods_up_to_the_flow_limit() {
    let mut f = user_flow(&[Method::SecurityQuestions, Method::Email], 1);
    assert_eq!(
        may_send(&f, Method::SecurityQuestions, &codes()),
        Err(Refusal::NotACodeToSend)
    );
    assert_eq!(
        may_send(&f, Method::AuthenticatorCode, &codes()),
        Err(Refusal::NotACodeToSend)
    );
    assert_eq!(
        may_send(&f, Method::MobileSms, &codes()),
        Err(Refusal::MethodNotAvailable)
    );
    assert_eq!(may_send(&f, Method::Email, &codes()), Ok(()));
    f.sends = 5;
    assert_eq!(
        may_send(&f, Method::Email, &codes()),
        Err(Refusal::TooManyCodes)
    );
}

#[test]
fn a_resend_replaces_the_code_and_counts() {
    let f = user_flow(&[Method::Email, Method::MobileSms], 2);
    let (f1, exp1) = code_sent(&f, Method::Email, "m1".into(), NOW, &codes());
    assert_eq!(exp1, NOW + 600);
    let (f2, _) = code_sent(&f1, Method::MobileSms, "s1".into(), NOW, &codes());
    let (f3, exp3) = code_sent(&f2, Method::Email, "m2".into(), NOW + 10, &codes());
    assert_eq!(f3.sends, 3);
    assert_eq!(exp3, NOW + 610);
    let emails: Vec<_> = f3
        .codes
        .iter()
        .filter(|c| c.method == Method::Email)
        .collect();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].mac, "m2");
    assert_eq!(emails[0].tries_left, 3);
    assert!(f3.codes.iter().any(|c| c.mac == "s1"));
}

#[test]
fn code_submitted_cases() {
    let f = user_flow(&[Method::Email], 1);
    let live_code = with_code(&f, Method::Email, NOW + 1, 3);
    let mut undelivered = live_code.clone();
    undelivered.codes[0].undelivered = Some(Undelivered::Unavailable);
    let expired = with_code(&f, Method::Email, NOW, 3);
    // (flow, method, expected)
    let cases: Vec<(&ResetFlow, Method, &str)> = vec![
        (&f, Method::Email, "no code"),
        (&live_code, Method::Email, "compare"),
        (&undelivered, Method::Email, "undelivered"),
        (&expired, Method::Email, "expired"),
        (&live_code, Method::SecurityQuestions, "not a code"),
        (&live_code, Method::MobileSms, "not offered"),
    ];
    for (flow, method, want) in cases {
        let got = match code_submitted(flow, method, NOW) {
            Ok(CodeCheck::NoCode) => "no code",
            Ok(CodeCheck::Compare { .. }) => "compare",
            Ok(CodeCheck::Undelivered { next, why }) => {
                assert!(next.codes.is_empty(), "the failed code is dropped");
                assert_eq!(why, Undelivered::Unavailable);
                "undelivered"
            }
            Ok(CodeCheck::Expired { next }) => {
                assert!(next.codes.is_empty(), "an expired code is dropped");
                "expired"
            }
            Err(Refusal::NotACodeToVerify) => "not a code",
            Err(Refusal::MethodNotAvailable) => "not offered",
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(got, want);
    }
}

#[test]
fn a_right_code_verifies_once_and_is_gone() {
    let f = with_code(&user_flow(&[Method::Email], 1), Method::Email, NOW + 60, 3);
    let Ok(CodeCheck::Compare { code }) = code_submitted(&f, Method::Email, NOW) else {
        panic!()
    };
    let Verdict::Verified { next, method } = code_checked(&f, code, true) else {
        panic!()
    };
    assert_eq!(method, Method::Email);
    assert!(next.codes.is_empty());
    assert_eq!(next.verified, vec![Method::Email]);
    // The same code again (a racing call that read the flow after the first): no code left,
    // and the factor is verified anyway.
    assert_eq!(
        code_submitted(&next, Method::Email, NOW),
        Err(Refusal::AlreadyVerified)
    );
}

#[test]
fn a_raced_code_finds_nothing_to_compare() {
    // Two calls read the flow; the first used the code and stored the flow without it
    // (verified, or out of tries): the second, re-reading, finds no code and is not verified.
    let f = user_flow(&[Method::Email, Method::SecurityQuestions], 2);
    let used = with_code(&f, Method::Email, NOW + 60, 1);
    let Ok(CodeCheck::Compare { code }) = code_submitted(&used, Method::Email, NOW) else {
        panic!()
    };
    let Verdict::Wrong { next: Some(n), .. } = code_checked(&used, code, false) else {
        panic!()
    };
    assert_eq!(
        code_submitted(&n, Method::Email, NOW),
        Ok(CodeCheck::NoCode)
    );
    assert!(!verification(&n, false, 6, 3).verified);
}

#[test]
fn wrong_codes_use_up_the_tries() {
    let mut f = with_code(&user_flow(&[Method::Email], 1), Method::Email, NOW + 60, 3);
    for left in [2u32, 1, 0] {
        let Ok(CodeCheck::Compare { code }) = code_submitted(&f, Method::Email, NOW) else {
            panic!("left {left}")
        };
        let v = code_checked(&f, code, false);
        let Verdict::Wrong {
            next: Some(next),
            reason: "wrong_code",
            closed: false,
        } = v
        else {
            panic!("{v:?}")
        };
        match left {
            0 => assert!(next.codes.is_empty()),
            n => assert_eq!(next.codes[0].tries_left, n),
        }
        // A wrong code does not count against the flow's attempts (the account's do).
        assert_eq!(next.failed_attempts, 0);
        f = next;
    }
    assert_eq!(
        code_submitted(&f, Method::Email, NOW),
        Ok(CodeCheck::NoCode)
    );
}

#[test]
fn a_decoy_code_is_never_right() {
    let d = decoy_flow(&methods(&[Method::Email], 1));
    let d = with_code(&d, Method::Email, NOW + 60, 3);
    let Ok(CodeCheck::Compare { code }) = code_submitted(&d, Method::Email, NOW) else {
        panic!()
    };
    assert!(matches!(
        code_checked(&d, code, true),
        Verdict::Wrong { .. }
    ));
}

#[test]
fn code_macs_are_bound_to_flow_and_method() {
    let other = TokenHash([2u8; 32]);
    let a = code_context(&H, Method::Email);
    assert_ne!(a, code_context(&other, Method::Email));
    assert_ne!(a, code_context(&H, Method::MobileSms));
}

// --- authenticator ---

#[test]
fn authenticator_right_verifies_wrong_changes_nothing() {
    let f = user_flow(&[Method::AuthenticatorCode], 1);
    assert!(matches!(
        authenticator_checked(&f, true),
        Verdict::Verified { method: Method::AuthenticatorCode, ref next } if next.verified == [Method::AuthenticatorCode]
    ));
    assert_eq!(
        authenticator_checked(&f, false),
        Verdict::Wrong {
            next: None,
            reason: "wrong_authenticator_code",
            closed: false
        }
    );
    let d = decoy_flow(&methods(&[Method::AuthenticatorCode], 1));
    assert!(matches!(
        authenticator_checked(&d, true),
        Verdict::Wrong { .. }
    ));
}

// --- completion ---

#[test]
fn may_complete_cases() {
    let one = methods(
        &[Method::SecurityQuestions, Method::Email, Method::MobileSms],
        1,
    );
    let two = MethodPolicy {
        required: 2,
        ..one.clone()
    };
    let q_not_only = MethodPolicy {
        questions_not_only: true,
        ..one.clone()
    };
    let sms_not_alone = MethodPolicy {
        sms_alone_not_allowed: true,
        ..one.clone()
    };
    let flow = |required: u32, verified: &[Method]| {
        let mut f = user_flow(
            &[Method::SecurityQuestions, Method::Email, Method::MobileSms],
            required,
        );
        f.verified = verified.to_vec();
        f
    };
    use Method::*;
    // (flow requires, verified, policy now, may complete)
    let cases: Vec<(u32, Vec<Method>, &MethodPolicy, bool)> = vec![
        (1, vec![], &one, false),
        (1, vec![Email], &one, true),
        (1, vec![Email], &two, false),
        (2, vec![Email], &one, false),
        (2, vec![Email, SecurityQuestions], &one, true),
        (2, vec![MobileSms, MobileVoice], &one, false),
        (1, vec![SecurityQuestions], &q_not_only, false),
        (1, vec![Email], &q_not_only, true),
        (1, vec![MobileSms], &sms_not_alone, false),
        (1, vec![Email], &sms_not_alone, true),
    ];
    for (i, (req, verified, mp, ok)) in cases.into_iter().enumerate() {
        let got = may_complete(&flow(req, &verified), mp);
        assert_eq!(got.is_ok(), ok, "case {i}: {got:?}");
        if let Err(e) = got {
            assert!(matches!(e, Refusal::NotVerified(_)), "case {i}");
        }
    }
    let mut d = decoy_flow(&one);
    d.verified = vec![Email, SecurityQuestions];
    assert!(matches!(
        may_complete(&d, &one),
        Err(Refusal::NotVerified(_))
    ));
}

// --- the write and the end of a flow ---

fn intent() -> Option<WriteIntent> {
    Some(WriteIntent {
        marker: Some("20261128000000Z".into()),
        must_change: false,
        unlock: false,
    })
}

#[test]
fn a_write_not_applied_reopens_a_user_flow_and_ends_an_admin_reset() {
    let mut f = user_flow(&[Method::Email], 1);
    f.write = intent();
    assert!(f.write_undecided());
    let cleared = without_write(&f);
    assert_eq!(cleared.write, None);
    assert_eq!(cleared.state, FlowState::Open);
    assert!(!cleared.write_undecided());
    f.by_admin = true;
    assert_eq!(without_write(&f).state, FlowState::Closed);
    assert_eq!(write_kind(&f), "admin.reset");
    assert_eq!(
        written_what(&f, true),
        "the password was reset by an administrator"
    );
}

#[test]
fn the_end_completes_the_flow_and_closes_the_users_other_open_flows() {
    let mut this = with_code(&user_flow(&[Method::Email], 1), Method::Email, NOW + 60, 3);
    this.write = intent();
    let other_open = with_code(&user_flow(&[Method::Email], 1), Method::Email, NOW + 60, 3);
    let mut other_done = user_flow(&[Method::Email], 1);
    other_done.state = FlowState::Completed;
    let (a, b) = (TokenHash([2u8; 32]), TokenHash([3u8; 32]));
    let others = vec![
        (H, this.clone()),
        (a, other_open.clone()),
        (b, other_done.clone()),
    ];
    let batch = ending(&H, Some(this.clone()), others, true);
    assert_eq!(batch.len(), 2);
    let (h0, before, after) = &batch[0];
    assert_eq!((h0, before), (&H, &this));
    assert_eq!(after.state, FlowState::Completed);
    assert!(after.password_changed && after.codes.is_empty() && after.write.is_none());
    assert!(changed_password(after, NOW));
    assert!(!changed_password(after, after.expires_at));
    let (h1, _, after) = &batch[1];
    assert_eq!(h1, &a);
    assert_eq!(after.state, FlowState::Closed);
    assert!(after.codes.is_empty());
    // An unlock: completed, not a password change.
    let unlock = ending(&H, Some(this), vec![], false);
    assert!(!unlock[0].2.password_changed);
    assert!(!changed_password(&unlock[0].2, NOW));
    // The flow itself gone (expired out of the store): the others still close.
    assert_eq!(ending(&H, None, vec![(a, other_open)], true).len(), 1);
}

// --- properties ---

#[derive(Debug, Clone)]
enum Step {
    Answers(bool),
    Send(Method),
    Code(Method, bool),
    Authenticator(bool),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let code_method = prop_oneof![Just(Method::Email), Just(Method::MobileSms)];
    prop_oneof![
        any::<bool>().prop_map(Step::Answers),
        code_method.clone().prop_map(Step::Send),
        (code_method, any::<bool>()).prop_map(|(m, r)| Step::Code(m, r)),
        any::<bool>().prop_map(Step::Authenticator),
        (0u64..400).prop_map(Step::Wait),
    ]
}

/// Runs `steps` through the core as the executor would (every store write succeeds),
/// checking the invariants after each; returns the flow.
fn run(mut flow: ResetFlow, steps: &[Step], seed: u64) -> ResetFlow {
    let mut r = StdRng::seed_from_u64(seed);
    let mut now = NOW;
    let offered: HashSet<_> = flow.offered.iter().map(|o| o.method.factor()).collect();
    let mut last_verified = flow.verified.len();
    for s in steps {
        if live(Some(flow.clone()), now).is_err() {
            break;
        }
        let verdict = match s {
            Step::Wait(secs) => {
                now += secs;
                None
            }
            Step::Answers(right) => answers_fit(
                &flow,
                flow.questions_drawn.clone().iter().map(String::as_str),
            )
            .ok()
            .map(|()| questions_checked(&flow, *right, &registered(), qp(), &policy(), &mut r)),
            Step::Send(m) => {
                if may_send(&flow, *m, &codes()).is_ok() {
                    flow = code_sent(&flow, *m, "mac".into(), now, &codes()).0;
                }
                None
            }
            Step::Code(m, right) => match code_submitted(&flow, *m, now) {
                Ok(CodeCheck::Compare { code }) => {
                    assert!(code.expires_at > now && code.tries_left > 0);
                    Some(code_checked(&flow, code, *right))
                }
                Ok(CodeCheck::Expired { next } | CodeCheck::Undelivered { next, .. }) => {
                    flow = next;
                    None
                }
                Ok(CodeCheck::NoCode) | Err(_) => None,
            },
            Step::Authenticator(right) => may_prove(&flow, Method::AuthenticatorCode)
                .ok()
                .map(|()| authenticator_checked(&flow, *right)),
        };
        match verdict {
            Some(Verdict::Verified { next, method }) => {
                assert!(!flow.decoy, "a decoy is never verified");
                assert!(offered.contains(&method.factor()));
                flow = next;
            }
            Some(Verdict::Wrong {
                next: Some(next),
                closed,
                ..
            }) => {
                assert_eq!(closed, next.state == FlowState::Closed);
                flow = next;
            }
            Some(Verdict::Wrong { next: None, .. }) | None => {}
        }
        // Invariants.
        let factors: Vec<_> = flow.verified.iter().map(|m| m.factor()).collect();
        let distinct: HashSet<_> = factors.iter().collect();
        assert_eq!(distinct.len(), factors.len(), "a factor is verified once");
        assert!(
            flow.verified.len() >= last_verified,
            "nothing is unverified"
        );
        last_verified = flow.verified.len();
        assert!(flow.failed_attempts <= policy().attempts_per_flow);
        assert!(flow.sends <= codes().max_sends_per_flow);
        let mut methods: Vec<_> = flow.codes.iter().map(|c| c.method).collect();
        methods.dedup();
        assert_eq!(methods.len(), flow.codes.len(), "one code per method");
        assert!(flow.codes.iter().all(|c| c.tries_left >= 1));
    }
    flow
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sequence_keeps_the_invariants(
        steps in proptest::collection::vec(step(), 0..40),
        seed in any::<u64>(),
    ) {
        use Method::*;
        let f = run(user_flow(&[SecurityQuestions, Email, MobileSms, AuthenticatorCode], 2), &steps, seed);
        let mp = methods(&[SecurityQuestions, Email, MobileSms, AuthenticatorCode], 2);
        // Completion is allowed exactly when two distinct factors were verified.
        let factors: HashSet<_> = f.verified.iter().map(|m| m.factor()).collect();
        prop_assert_eq!(may_complete(&f, &mp).is_ok(), factors.len() >= 2);
    }

    #[test]
    fn a_decoy_never_completes(
        steps in proptest::collection::vec(step(), 0..40),
        seed in any::<u64>(),
    ) {
        use Method::*;
        let mp = methods(&[SecurityQuestions, Email, MobileSms, AuthenticatorCode], 1);
        let f = run(decoy_flow(&mp), &steps, seed);
        prop_assert!(f.verified.is_empty());
        prop_assert!(may_complete(&f, &mp).is_err());
    }
}
