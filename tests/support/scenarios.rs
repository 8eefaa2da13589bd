//! End-to-end scenarios over gRPC+TLS, run against each real directory.

use super::{Clients, Daemon, TestDirectory, answer_for, question_ids, reason, unique};
use ssprd::api::pb;
use std::path::Path;
use std::process::{Child, Command};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Starts a daemon for `dir` with its store under `work`.
pub async fn daemon(dir: &dyn TestDirectory, work: &Path) -> Daemon {
    daemon_with(dir, work, |_| {}).await
}

/// Starts a daemon for `dir` with a tweaked configuration.
pub async fn daemon_with(
    dir: &dyn TestDirectory,
    work: &Path,
    tweak: impl FnOnce(&mut ssprd::config::RawConfig),
) -> Daemon {
    let (mut raw, ca) = Daemon::config(work, dir.directory_config(&work.join("dir")));
    tweak(&mut raw);
    Daemon::start(raw, ca).await
}

/// With `require_change_after_reset`, the directory demands a change at next sign-in, and
/// the verification bind still counts the new password as working.
pub async fn must_change(dir: &dyn TestDirectory, work: &Path) {
    let d = daemon_with(dir, work, |raw| {
        raw.directory.require_change_after_reset = true;
    })
    .await;
    let mut c = d.clients().await;
    let login = unique("mustchg");
    let old = "Must-Change-1234";
    let new = "Must-Change-5678";
    dir.create_user(&login, old).await;
    assert!(!dir.must_change(&login, old).await);
    c.register(&login, old).await;
    let flow = c.verified_flow(&login).await;
    let done = c.complete(&flow, new, false).await.unwrap();
    assert!(
        done.verified_by_bind,
        "must-change counts as a working password"
    );
    assert!(
        dir.must_change(&login, new).await,
        "change required at next sign-in"
    );
    d.stop().await;
}

/// register → reset → the new password binds, the old one does not.
pub async fn register_and_reset(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("reset");
    let old = "Old-Pass-1234";
    let new = "New-Pass-5678";
    dir.create_user(&login, old).await;
    c.register(&login, old).await;

    let s = c.start(&login).await;
    assert_eq!(s.methods_required, 1);
    assert_eq!(s.methods.len(), 1);
    let asked = question_ids(&s.methods);
    assert_eq!(asked.len(), 3);
    assert!(asked.iter().all(|q| super::QUESTIONS.contains(&q.as_str())));
    // Answers are normalised: case and spacing do not matter.
    let v = c
        .verify_with(&s.flow_id, &s.methods, |q| {
            format!("  {}  ", answer_for(q).to_uppercase())
        })
        .await
        .unwrap();
    assert!(v.verified);
    assert_eq!((v.methods_verified, v.methods_required), (1, 1));
    assert!(v.remaining.is_empty());

    let done = c.complete(&s.flow_id, new, false).await.unwrap();
    assert!(
        done.verified_by_bind,
        "bind with the new password after the write"
    );
    assert!(dir.can_bind(&login, new).await, "new password works");
    assert!(!dir.can_bind(&login, old).await, "old password fails");

    // The flow is spent: calling again says the password was changed, and writes nothing.
    let again = c
        .complete(&s.flow_id, "Another-Pass-99", false)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "RESET_ALREADY_COMPLETED");
    assert!(dir.can_bind(&login, new).await, "still the new password");
}

/// Each policy refusal maps to its reason, and the verified flow stays usable.
pub async fn policy_refusals(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("policy");
    let old = "Old-Pass-1234";
    dir.create_user(&login, old).await;
    c.register(&login, old).await;
    let flow = c.verified_flow(&login).await;
    for (pw, want) in dir.refusals(old) {
        let e = c.complete(&flow, &pw, false).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{pw:?}: {e:?}");
        assert_eq!(reason(&e), want, "{pw:?}");
        assert!(!e.message().is_empty());
    }
    // Local checks before any directory call.
    let e = c.complete(&flow, "", false).await.unwrap_err();
    assert_eq!(reason(&e), "PASSWORD_REQUIRED");
    let e = c
        .complete(&flow, &"x".repeat(257), false)
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "PASSWORD_TOO_LONG");
    let e = c
        .complete(&flow, "nul\0inside-Pass1", false)
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "PASSWORD_INVALID_CHARACTER");
    // Still usable.
    let good = "Good-Pass-4321";
    c.complete(&flow, good, false).await.unwrap();
    assert!(dir.can_bind(&login, good).await);
    assert!(!dir.can_bind(&login, old).await, "old password fails");
}

/// Unknown users get a flow of the same shape that never verifies; injection-shaped names
/// match nobody.
pub async fn unknown_user(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("known");
    let pw = "Known-Pass-1234";
    dir.create_user(&login, pw).await;
    c.register(&login, pw).await;
    let real = c.start(&login).await;
    // An existing user who never registered, and a disabled one who did: decoys too.
    let unregistered = unique("unreg");
    dir.create_user(&unregistered, pw).await;
    let disabled = unique("disabled");
    dir.create_user(&disabled, pw).await;
    c.register(&disabled, pw).await;
    if dir.name() == "samba-ad" {
        dir.set_attribute(&disabled, "userAccountControl", "514")
            .await;
    } else {
        // ppolicy's "locked by an administrator".
        dir.set_attribute(&disabled, "pwdAccountLockedTime", "000001010000Z")
            .await;
    }

    for name in [
        unregistered,
        disabled,
        "no-such-user".to_string(),
        "*".into(),
        "a)(|(uid=*".into(),
        "*)(objectClass=*".into(),
        format!("{login}*"),
        format!("{}*", &login[..3]),
    ] {
        let s = c.start(&name).await;
        assert_eq!(s.methods_required, real.methods_required, "{name}");
        assert_eq!(s.methods.len(), real.methods.len(), "{name}");
        assert_eq!(question_ids(&s.methods).len(), 3, "{name}");
        assert_eq!(s.flow_id.len(), real.flow_id.len());
        // The registered user's answers never work in the decoy flow.
        let v = c
            .verify_with(&s.flow_id, &s.methods, answer_for)
            .await
            .unwrap();
        assert!(!v.verified, "{name} must not verify");
        let e = c
            .complete(&s.flow_id, "Whatever-Pass-1", false)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{name}");
        assert_eq!(reason(&e), "METHODS_NOT_VERIFIED");
    }
    // The same decoy registration for one unknown name: question ids come from a fixed set.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..8 {
        let s = c.start("ghost-user").await;
        seen.extend(question_ids(&s.methods));
    }
    assert_eq!(seen.len(), 3, "a decoy draws from a stable registered set");
    // Empty and oversized names are input errors, for anybody.
    let e = c
        .reset
        .start_reset(pb::StartResetRequest {
            username: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "USERNAME_REQUIRED");
    let e = c
        .reset
        .start_reset(pb::StartResetRequest {
            username: "x".repeat(300),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "USERNAME_INVALID");
}

/// Wrong answers redraw, close the flow after 3, and 5 failures block SSPR for the account —
/// for real and unknown users alike. The directory account is never locked by this.
pub async fn wrong_answers(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("wrong");
    let pw = "Wrong-Pass-1234";
    dir.create_user(&login, pw).await;
    c.register(&login, pw).await;

    for name in [login.clone(), unique("nobody")] {
        let s = c.start(&name).await;
        let mut challenge = s.methods.clone();
        // Two wrong tries redraw; the third closes the flow.
        for _ in 0..2 {
            let v = c
                .verify_with(&s.flow_id, &challenge, |_| "wrong answer".into())
                .await
                .unwrap();
            assert!(!v.verified);
            assert_eq!(question_ids(&v.remaining).len(), 3);
            challenge = v.remaining;
        }
        let e = c
            .verify_with(&s.flow_id, &challenge, |_| "wrong answer".into())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{name}");
        assert_eq!(reason(&e), "TOO_MANY_ATTEMPTS");
        // Two more failures in a new flow reach 5: blocked.
        let s = c.start(&name).await;
        let v = c
            .verify_with(&s.flow_id, &s.methods, |_| "wrong answer".into())
            .await
            .unwrap();
        let e = c
            .verify_with(&s.flow_id, &v.remaining, |_| "wrong answer".into())
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "SSPR_BLOCKED", "{name}");
        let e = c
            .reset
            .start_reset(pb::StartResetRequest {
                username: name.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(reason(&e), "SSPR_BLOCKED", "{name}");
    }
    // 5 wrong answers did not touch the directory account.
    assert!(
        dir.can_bind(&login, pw).await,
        "directory account not locked"
    );

    // Answers to other questions than those asked are an input error.
    let other = unique("shape");
    dir.create_user(&other, pw).await;
    c.register(&other, pw).await;
    let s = c.start(&other).await;
    let e = c
        .reset
        .verify_method(pb::VerifyMethodRequest {
            flow_id: s.flow_id.clone(),
            proof: Some(pb::verify_method_request::Proof::SecurityAnswers(
                pb::SecurityAnswers {
                    answers: vec![pb::QuestionAnswer {
                        question_id: "bank.first_pet".into(),
                        answer: "x".into(),
                    }],
                },
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "WRONG_QUESTIONS");
    let e = c
        .reset
        .verify_method(pb::VerifyMethodRequest {
            flow_id: s.flow_id.clone(),
            proof: None,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "PROOF_REQUIRED");
    let e = c
        .reset
        .verify_method(pb::VerifyMethodRequest {
            flow_id: "not-a-flow".into(),
            proof: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .complete("AAAAAAAAAAAAAAAAAAAAAA", "Pass-Word-123", false)
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "FLOW_INVALID");
}

/// A locked account: reset with unlock works; UnlockAccount alone works too.
pub async fn unlock(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("locked");
    let pw = "Locked-Pass-1234";
    dir.create_user(&login, pw).await;
    c.register(&login, pw).await;

    dir.lock(&login).await;
    assert!(!dir.can_bind(&login, pw).await, "account is locked");
    let flow = c.verified_flow(&login).await;
    let new = "Unlocked-Pass-5678";
    let done = c.complete(&flow, new, true).await.unwrap();
    assert!(done.unlocked, "it was locked");
    assert!(done.verified_by_bind);
    assert!(
        dir.can_bind(&login, new).await,
        "reset + unlock: bind works"
    );

    // Unlock without a password change.
    dir.lock(&login).await;
    assert!(!dir.can_bind(&login, new).await, "locked again");
    let flow = c.verified_flow(&login).await;
    let r = c
        .reset
        .unlock_account(pb::UnlockAccountRequest {
            flow_id: flow.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.was_locked);
    assert!(dir.can_bind(&login, new).await, "unlocked, same password");
    // Not locked: a reset with "unlock" ticked claims no unlock.
    let flow = c.verified_flow(&login).await;
    let done = c.complete(&flow, "Unlocked-Pass-9012", true).await.unwrap();
    assert!(!done.unlocked, "it was not locked");
    // Unverified flows cannot unlock.
    let s = c.start(&login).await;
    let e = c
        .reset
        .unlock_account(pb::UnlockAccountRequest { flow_id: s.flow_id })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "METHODS_NOT_VERIFIED");
}

/// Registration errors: wrong password and unknown user look alike; bad answer sets are
/// refused with precise reasons.
pub async fn registration_errors(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("regerr");
    let pw = "Reg-Pass-1234";
    dir.create_user(&login, pw).await;
    for (user, pass) in [
        (login.as_str(), "Wrong-Pass-1"),
        ("no-such-user", "Any-Pass-1"),
    ] {
        let e = c
            .reg
            .begin_registration(pb::BeginRegistrationRequest {
                username: user.into(),
                password: pass.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        assert_eq!(reason(&e), "INVALID_CREDENTIALS");
        assert_eq!(e.message(), "the username or password is not correct");
    }
    let token = c.begin(&login, pw).await;
    let set = |answers: Vec<(&str, &str)>| pb::SetSecurityQuestionsRequest {
        registration_token: token.clone(),
        answers: answers
            .into_iter()
            .map(|(q, a)| pb::QuestionAnswer {
                question_id: q.into(),
                answer: a.into(),
            })
            .collect(),
    };
    let cases = [
        (vec![("bank.first_pet", "Rex")], "WRONG_QUESTION_COUNT"),
        (
            vec![
                ("bank.first_pet", "Rex"),
                ("bank.birth_city", " rex "),
                ("bank.first_car", "Volvo"),
            ],
            "DUPLICATE_ANSWER",
        ),
        (
            vec![
                ("bank.first_pet", "Rex"),
                ("bank.first_pet", "Max"),
                ("bank.first_car", "Volvo"),
            ],
            "DUPLICATE_QUESTION",
        ),
        (
            vec![
                ("bank.first_pet", "Rex"),
                ("nope", "Max"),
                ("bank.first_car", "Volvo"),
            ],
            "UNKNOWN_QUESTION",
        ),
        (
            vec![
                ("bank.first_pet", "ab"),
                ("bank.birth_city", "Oslo"),
                ("bank.first_car", "Volvo"),
            ],
            "ANSWER_TOO_SHORT",
        ),
    ];
    for (answers, want) in cases {
        let e = c
            .reg
            .set_security_questions(set(answers))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(reason(&e), want);
    }
    let st = c
        .reg
        .get_registration(pb::GetRegistrationRequest {
            registration_token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert!(!st.complete, "nothing was stored by refused requests");
    let e = c
        .reg
        .get_registration(pb::GetRegistrationRequest {
            registration_token: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "REGISTRATION_TOKEN_INVALID");
    let bank = c
        .reg
        .list_security_questions(pb::ListSecurityQuestionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(bank.questions.len() >= 3);
    assert_eq!((bank.register_count, bank.reset_count), (3, 3));
}

/// The directory goes down during CompleteReset: UNAVAILABLE, and the same verified flow
/// completes once it is back.
pub async fn directory_down(dir: &mut dyn TestDirectory, c: &mut Clients) {
    let login = unique("down");
    let old = "Down-Pass-1234";
    let new = "Back-Pass-5678";
    dir.create_user(&login, old).await;
    c.register(&login, old).await;
    let flow = c.verified_flow(&login).await;
    dir.stop().await;
    let e = c.complete(&flow, new, false).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(reason(&e), "DIRECTORY_UNAVAILABLE");
    dir.start().await;
    let done = c.complete(&flow, new, false).await.unwrap();
    assert!(done.verified_by_bind);
    assert!(dir.can_bind(&login, new).await);
}

/// GetPasswordPolicy serves the directory's rules merged with the local ones, for real and
/// unknown users alike (a decoy gets the directory's default policy).
pub async fn password_policy_is_served(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("pwpol");
    let pw = "Policy-Pass-1234";
    dir.create_user(&login, pw).await;
    c.register(&login, pw).await;
    let (min, history, complexity) = dir.expected_policy();
    for name in [login.as_str(), "nobody-at-all"] {
        let s = c.start(name).await;
        let p = c
            .reset
            .get_password_policy(pb::GetPasswordPolicyRequest { flow_id: s.flow_id })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (p.min_length, p.history, p.complexity_required),
            (min, history, complexity),
            "{name}: {p:?}"
        );
        assert_eq!(p.max_length, 256);
    }
}

/// Security items 28 and 34: 64 characters are accepted, and 256-character passwords with a
/// double quote and non-BMP characters are written and then bind, unchanged.
pub async fn long_and_unicode_passwords(dir: &dyn TestDirectory, c: &mut Clients) {
    let login = unique("unicode");
    dir.create_user(&login, "Unicode-Old-1234").await;
    c.register(&login, "Unicode-Old-1234").await;
    let sixty_four: String = "Ab1-".repeat(16);
    let mut long = String::from("Quote\"Émoji😀Ab1-");
    while long.chars().count() < 256 {
        long.push(if long.chars().count() % 7 == 0 {
            '🔑'
        } else {
            'x'
        });
    }
    assert_eq!(long.chars().count(), 256);
    for pw in [sixty_four.as_str(), long.as_str()] {
        let flow = c.verified_flow(&login).await;
        let done = c.complete(&flow, pw, false).await.unwrap();
        assert!(done.verified_by_bind, "{} chars", pw.chars().count());
        assert!(
            dir.can_bind(&login, pw).await,
            "{} chars bind",
            pw.chars().count()
        );
    }
}

/// The policy in force, changed by `edit`, written with compare-and-set.
pub async fn set_policy(
    admin: &mut pb::admin_service_client::AdminServiceClient<tonic::transport::Channel>,
    edit: impl FnOnce(&mut pb::Policy),
) -> pb::Policy {
    let current = admin
        .get_policy(pb::GetPolicyRequest {})
        .await
        .expect("GetPolicy")
        .into_inner();
    let mut next = current.clone();
    edit(&mut next);
    admin
        .update_policy(pb::UpdatePolicyRequest {
            policy: Some(next),
            expected_version: current.version,
        })
        .await
        .expect("UpdatePolicy")
        .into_inner()
}

/// StartReset + the right answers: whether the flow verified (a decoy never does).
async fn answers_verify(c: &mut Clients, login: &str) -> bool {
    let s = c.start(login).await;
    c.verify_with(&s.flow_id, &s.methods, answer_for)
        .await
        .map(|v| v.verified)
        .unwrap_or(false)
}

/// Scope (none / selected with nested groups / all), the admin policy (admin groups, AD
/// adminCount), an admin reset that requires a change at next sign-in, and an admin unlock
/// — through AdminService with a client certificate in the admin role.
pub async fn administration(dir: &dyn TestDirectory, work: &Path) {
    let (mut raw, ca) = Daemon::config(work, dir.directory_config(&work.join("dir")));
    let certs = super::Certs::install(&mut raw, work);
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;
    let mut admin = d.admin(&certs.admin);
    let user = |login: &str| pb::GetUserRequest {
        username: login.into(),
    };

    let pw = "Admin-Scenario-1234";
    let (inner, outer, boss) = (unique("inner"), unique("outer"), unique("boss"));
    for u in [&inner, &outer, &boss] {
        dir.create_user(u, pw).await;
        c.register(u, pw).await;
    }
    // staff ⊃ team ⊃ inner: membership through a nested group.
    let team = dir
        .create_group(&unique("team"), &[dir.user_dn(&inner)])
        .await;
    let staff = dir.create_group(&unique("staff"), &[team]).await;
    let admins = dir
        .create_group(&unique("admins"), &[dir.user_dn(&boss)])
        .await;

    // Selected: members of staff, nested membership counting.
    let p = set_policy(&mut admin, |p| {
        p.scope = pb::Scope::Selected as i32;
        p.scope_groups = vec![staff.clone()];
    })
    .await;
    assert!(p.version >= 1);
    let u = admin.get_user(user(&inner)).await.unwrap().into_inner();
    assert!(u.in_scope, "nested member in scope");
    let u = admin.get_user(user(&outer)).await.unwrap().into_inner();
    assert!(!u.in_scope, "non-member out of scope");
    assert!(answers_verify(&mut c, &inner).await, "in scope: real flow");
    assert!(
        !answers_verify(&mut c, &outer).await,
        "out of scope: a decoy flow, indistinguishable until verification fails"
    );
    let e = c
        .reg
        .begin_registration(pb::BeginRegistrationRequest {
            username: outer.clone(),
            password: pw.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "NOT_IN_SCOPE");

    // None: nobody; All: everybody.
    set_policy(&mut admin, |p| p.scope = pb::Scope::None as i32).await;
    assert!(!answers_verify(&mut c, &inner).await, "scope none");
    set_policy(&mut admin, |p| {
        p.scope = pb::Scope::All as i32;
        p.scope_groups.clear();
    })
    .await;
    assert!(answers_verify(&mut c, &outer).await, "scope all");

    // Admin policy: members of the admin group need two methods and no questions; with
    // questions only enabled here, they cannot use SSPR.
    set_policy(&mut admin, |p| p.admin_groups = vec![admins.clone()]).await;
    let u = admin.get_user(user(&boss)).await.unwrap().into_inner();
    assert!(u.admin);
    let reg = u.registration.unwrap();
    assert_eq!(reg.methods_required, 2);
    assert!(!reg.complete);
    assert!(
        !reg.enabled_methods
            .contains(&(pb::Method::SecurityQuestions as i32))
    );
    assert!(!answers_verify(&mut c, &boss).await, "admin refused");
    set_policy(&mut admin, |p| p.admin_policy = false).await;
    assert!(answers_verify(&mut c, &boss).await, "admin policy off");
    set_policy(&mut admin, |p| p.admin_policy = true).await;
    if dir.name() == "samba-ad" {
        // AD: adminCount=1 (AdminSDHolder-protected) accounts are administrators.
        dir.set_attribute(&outer, "adminCount", "1").await;
        let u = admin.get_user(user(&outer)).await.unwrap().into_inner();
        assert!(u.admin, "adminCount=1 is an administrator");
        assert!(!answers_verify(&mut c, &outer).await);
        set_policy(&mut admin, |p| p.admin_count_is_admin = false).await;
        assert!(
            !admin
                .get_user(user(&outer))
                .await
                .unwrap()
                .into_inner()
                .admin
        );
    }

    // Admin reset: a generated password, a change required at next sign-in.
    let r = admin
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: boss.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.must_change);
    assert!(r.generated_password.len() >= 16);
    assert!(!dir.can_bind(&boss, pw).await, "old password gone");
    assert!(
        dir.must_change(&boss, &r.generated_password).await,
        "the directory demands a change at next sign-in"
    );
    // A given password without the change requirement.
    let given = "Given-By-Admin-5678";
    let r = admin
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: boss.clone(),
            new_password: given.into(),
            no_change_required: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.generated_password.is_empty() && !r.must_change);
    assert!(dir.can_bind(&boss, given).await);

    // Admin unlock.
    dir.lock(&inner).await;
    assert!(!dir.can_bind(&inner, pw).await, "locked");
    admin
        .unlock_user(pb::UnlockUserRequest {
            username: inner.clone(),
        })
        .await
        .unwrap();
    assert!(dir.can_bind(&inner, pw).await, "unlocked by an admin");

    // Unknown users: NOT_FOUND for administrators (they are authenticated).
    let e = admin.get_user(user("nobody-here")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    d.stop().await;
}

// ------------------------------------------------------------ crash consistency ----

/// A daemon process of a test: killed when dropped, so a test that fails part-way leaves
/// no daemon behind (holding its port, its store and the test runner's output pipe).
pub struct Spawned(pub Child);

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Spawned {
    /// Waits for the daemon to exit, at most `secs` seconds: a stop that takes longer is a
    /// failure of the test (with a message), never a suite that hangs until CI's limit.
    pub fn exit_within(&mut self, secs: u64) -> std::process::ExitStatus {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > until {
                let _ = self.0.kill();
                panic!("the daemon did not exit within {secs} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn spawn_daemon(cfg: &Path, failpoint: Option<&str>) -> Spawned {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssprd"));
    c.args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("SSPRD_FAILPOINT")
        .env("RUST_LOG", "warn");
    if let Some(fp) = failpoint {
        c.env("SSPRD_FAILPOINT", fp);
    }
    Spawned(c.spawn().unwrap())
}

pub async fn connect_daemon(port: u16, ca: &str) -> Clients {
    for _ in 0..200 {
        let ch = Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await;
        if let Ok(ch) = ch {
            return Clients {
                reg: pb::registration_service_client::RegistrationServiceClient::new(ch.clone()),
                reset: pb::reset_service_client::ResetServiceClient::new(ch),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("daemon did not come up");
}

/// SIGTERM, then the exit within the unit's `TimeoutStopSec` (20 s).
pub fn stop_daemon(mut child: Spawned) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.exit_within(20);
}

/// Reliability item 1 (see `tests/crash.rs`): the real binary aborted at each step of
/// CompleteReset, then restarted.
pub async fn crash_consistency(dir: &dyn TestDirectory, base: &Path) {
    for point in [
        "complete.intent",
        "complete.after_write",
        "complete.after_commit",
    ] {
        let work = tempfile::tempdir_in(base).unwrap();
        let (_raw, ca, port, cfg) = Daemon::config_file(work.path(), dir);

        let login = unique("crash");
        let (old, new, newer) = ("Crash-Old-1234", "Crash-New-5678", "Crash-Newer-9012");
        dir.create_user(&login, old).await;

        let mut daemon = spawn_daemon(&cfg, Some(point));
        let mut c = connect_daemon(port, &ca).await;
        c.register(&login, old).await;
        let flow = c.verified_flow(&login).await;
        let e = c.complete(&flow, new, false).await.unwrap_err();
        eprintln!("{point}: the client saw {:?}", e.code());
        let status = daemon.exit_within(30);
        assert!(!status.success(), "{point}: the daemon aborted");

        // Restart without the crash point; the flow id from before the crash is used.
        daemon = spawn_daemon(&cfg, None);
        let mut c = connect_daemon(port, &ca).await;
        match point {
            "complete.intent" => {
                assert!(dir.can_bind(&login, old).await, "{point}: nothing changed");
                assert!(!dir.can_bind(&login, new).await);
                let done = c.complete(&flow, newer, false).await;
                assert!(done.is_ok(), "{point}: the flow is still usable: {done:?}");
                assert!(dir.can_bind(&login, newer).await);
            }
            "complete.after_write" => {
                assert!(
                    dir.can_bind(&login, new).await,
                    "{point}: the password changed"
                );
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(reason(&e), "RESET_ALREADY_COMPLETED", "{point}");
                assert!(dir.can_bind(&login, new).await, "{point}: no second write");
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(
                    reason(&e),
                    "RESET_ALREADY_COMPLETED",
                    "{point}: the flow is used"
                );
            }
            _ => {
                assert!(
                    dir.can_bind(&login, new).await,
                    "{point}: the password changed"
                );
                let e = c.complete(&flow, newer, false).await.unwrap_err();
                assert_eq!(
                    reason(&e),
                    "RESET_ALREADY_COMPLETED",
                    "{point}: the flow is used"
                );
            }
        }
        stop_daemon(daemon);
    }
}

/// Security item 37: the service account the tests use has the documented rights and no
/// more — it may clear a lockout but may not change a user's other attributes.
pub async fn least_privilege(dir: &dyn TestDirectory) {
    let login = unique("leastpriv");
    dir.create_user(&login, "Least-Priv-1234").await;
    let lockout = if dir.name() == "samba-ad" {
        ("lockoutTime", "0")
    } else {
        ("pwdReset", "TRUE")
    };
    assert!(
        dir.service_may_write(&login, lockout.0, lockout.1).await,
        "{}: the service account may write {}",
        dir.name(),
        lockout.0
    );
    for attr in ["description", "mail", "displayName"] {
        assert!(
            !dir.service_may_write(&login, attr, "changed by the service account")
                .await,
            "{}: the service account must not write {attr}",
            dir.name()
        );
    }
}

/// BeginRegistration with a wrong password, from `clients` clients at once.
/// Wrong passwords to BeginRegistration for `login`: `rounds` rounds of `clients` at once
/// (each a TLS connection of its own). How many were checked and wrong
/// (INVALID_CREDENTIALS), and how many found sign-in paused (SIGN_IN_PAUSED, no bind).
async fn wrong_sign_ins(d: &Daemon, login: &str, clients: usize, rounds: usize) -> (u32, u32) {
    let (mut wrong, mut paused) = (0, 0);
    for _ in 0..rounds {
        let mut tasks = Vec::new();
        for i in 0..clients {
            let mut c = d.clients().await;
            let login = login.to_string();
            tasks.push(tokio::spawn(async move {
                c.reg
                    .begin_registration(pb::BeginRegistrationRequest {
                        username: login,
                        password: format!("Wrong-Guess-{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap_err()
            }));
        }
        for t in tasks {
            let e = t.await.unwrap();
            match (e.code(), reason(&e).as_str()) {
                (Code::Unauthenticated, "INVALID_CREDENTIALS") => wrong += 1,
                (Code::ResourceExhausted, "SIGN_IN_PAUSED") => paused += 1,
                _ => panic!("{e:?}"),
            }
        }
    }
    (wrong, paused)
}

/// The time a refusal's `RetryInfo` says to wait, if it has one.
fn retry_after(e: &tonic::Status) -> Option<std::time::Duration> {
    tonic_types::StatusExt::get_details_retry_info(e).and_then(|r| r.retry_delay)
}

/// Issue 10 item 2 and issue 24 item 6: wrong passwords sent to BeginRegistration — one at
/// a time from one client, and 20 at once from 20 clients — never lock the directory
/// account, for the directory's default threshold and for a user policy that locks after
/// 5. ssprd stops one failed bind short of the threshold (the default margin), then pauses
/// password sign-in: no bind, and the answer says so (SIGN_IN_PAUSED; a right password is
/// not checked either), with how long — until the window ends, or (`RetryInfo` absent)
/// until the password is reset where the directory keeps failures until the next
/// successful bind. The pause is shown and audited; an administrator's ClearBlock lifts it
/// at once (the directory's own count cleared too), and so does a self-service reset. A
/// name the directory does not know is paused after the same count, and says the same.
pub async fn sign_in_never_locks(dir: &dyn TestDirectory, work: &Path) {
    let mut raw_certs = None;
    let d = daemon_with(dir, work, |raw| {
        raw_certs = Some(super::Certs::install(raw, work));
    })
    .await;
    let certs = raw_certs.unwrap();
    let mut admin = d.admin(&certs.admin);
    let pw = "Guard-Pass-1234";
    let begin = |login: String, password: &str| {
        let d = &d;
        let password = password.to_string();
        async move {
            d.clients()
                .await
                .reg
                .begin_registration(pb::BeginRegistrationRequest {
                    username: login,
                    password,
                    ..Default::default()
                })
                .await
        }
    };
    let default = dir.default_lockout_threshold();
    let mut default_pause = None;
    for threshold in [default, 5] {
        for clients in [1, 20] {
            let login = unique("guard");
            dir.create_user(&login, pw).await;
            if threshold != default {
                dir.set_lockout_threshold(&login, threshold).await;
            }
            // One client sends twice the threshold one by one; 20 clients send at once.
            let rounds = if clients == 1 {
                2 * threshold as usize
            } else {
                2
            };
            let (wrong, paused) = wrong_sign_ins(&d, &login, clients, rounds).await;
            let what = format!("{} threshold {threshold}, {clients} client(s)", dir.name());
            assert!(!dir.locked_out(&login).await, "{what}: locked out");
            // Exactly the budget was used: the threshold minus the default margin of 1 (so
            // the threshold was read, a fine-grained one included).
            let counted = dir.failed_binds(&login).await;
            assert_eq!(
                counted,
                threshold - 1,
                "{what}: the directory counts {counted} failed binds"
            );
            assert_eq!(wrong, threshold - 1, "{what}: binds checked");
            assert_eq!(wrong + paused, (clients * rounds) as u32, "{what}");
            // Paused now: the right password is not checked either, and the answer says so.
            let e = begin(login.clone(), pw).await.unwrap_err();
            assert_eq!(
                (e.code(), reason(&e).as_str()),
                (Code::ResourceExhausted, "SIGN_IN_PAUSED"),
                "{what}"
            );
            assert!(e.message().contains("paused"), "{what}: {}", e.message());
            if threshold == default {
                default_pause = Some(retry_after(&e).is_some());
            }
            assert_eq!(dir.failed_binds(&login).await, counted, "{what}: no bind");
            let user = admin
                .get_user(pb::GetUserRequest {
                    username: login.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(user.sign_in_blocked_until > 0, "{what}: shown as blocked");
            assert!(!user.directory_locked, "{what}");
            let mut audit = admin
                .query_audit(pb::QueryAuditRequest {
                    username: login.clone(),
                    kind: "sign_in.blocked".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(audit.message().await.unwrap().is_some(), "{what}: audited");
            // An administrator's ClearBlock lifts the pause at once, the directory's count
            // of failures included: the real password signs in.
            admin
                .clear_block(pb::ClearBlockRequest {
                    username: login.clone(),
                })
                .await
                .unwrap();
            begin(login.clone(), pw).await.expect(&what);
            assert!(!dir.locked_out(&login).await, "{what}: locked out");
        }
    }
    // A name the directory does not know: the same count, then the same pause.
    let ghost = unique("guard");
    let (wrong, paused) = wrong_sign_ins(&d, &ghost, 1, 2 * default as usize).await;
    assert_eq!((wrong, paused), (default - 1, default + 1), "unknown name");
    let e = begin(ghost, pw).await.unwrap_err();
    assert_eq!(reason(&e), "SIGN_IN_PAUSED");
    assert_eq!(
        Some(retry_after(&e).is_some()),
        default_pause,
        "as long as an account's"
    );
    // A self-service reset lifts the pause: the new password signs in.
    let login = unique("guard");
    dir.create_user(&login, pw).await;
    let mut c = d.clients().await;
    c.register(&login, pw).await;
    wrong_sign_ins(&d, &login, 1, default as usize).await;
    assert_eq!(
        reason(&begin(login.clone(), pw).await.unwrap_err()),
        "SIGN_IN_PAUSED"
    );
    let flow = c.verified_flow(&login).await;
    let new = "Guard-After-Reset-5678";
    c.complete(&flow, new, false).await.unwrap();
    begin(login.clone(), new)
        .await
        .expect("signed in after the reset");
    d.stop().await;
}

/// ChangePassword: a wrong current password and an unknown user answer alike and change
/// nothing; a known password is changed; the directory's history for a user's own change
/// applies; after an administrator's reset that requires a change, the given password is
/// changed and no change is required any more.
pub async fn change_password(dir: &dyn TestDirectory, work: &Path) {
    let (mut raw, ca) = Daemon::config(work, dir.directory_config(&work.join("dir")));
    let certs = super::Certs::install(&mut raw, work);
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;
    let mut admin = d.admin(&certs.admin);
    let req = |user: &str, current: &str, new: &str| pb::ChangePasswordRequest {
        username: user.into(),
        current_password: current.into(),
        new_password: new.into(),
    };
    let login = unique("change");
    let (first, second, third) = (
        "Change-First-1234",
        "Change-Second-5678",
        "Change-Third-9753",
    );
    dir.create_user(&login, first).await;

    for (user, current) in [
        (login.clone(), "Wrong-Current-1"),
        (unique("nobody"), first),
    ] {
        let e = c
            .reset
            .change_password(req(&user, current, second))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        assert_eq!(reason(&e), "INVALID_CREDENTIALS");
    }
    assert!(dir.can_bind(&login, first).await, "nothing changed");

    let r = c
        .reset
        .change_password(req(&login, first, second))
        .await
        .expect("a known password is changed")
        .into_inner();
    assert!(!r.was_expired && !r.was_must_change, "{r:?}");
    assert!(dir.can_bind(&login, second).await);
    assert!(!dir.can_bind(&login, first).await);

    let e = c
        .reset
        .change_password(req(&login, second, first))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        ["PASSWORD_IN_HISTORY", "PASSWORD_POLICY_NOT_MET"].contains(&reason(&e).as_str()),
        "the directory's history refuses it: {e:?}"
    );
    assert!(dir.can_bind(&login, second).await);

    admin
        .reset_user_password(pb::ResetUserPasswordRequest {
            username: login.clone(),
            new_password: "Admin-Given-2468".into(),
            ..Default::default()
        })
        .await
        .expect("admin reset");
    assert!(dir.must_change(&login, "Admin-Given-2468").await);
    let r = c
        .reset
        .change_password(req(&login, "Admin-Given-2468", third))
        .await
        .expect("a must-change password is changed")
        .into_inner();
    assert!(r.was_must_change && !r.was_expired, "{r:?}");
    assert!(dir.can_bind(&login, third).await);
    assert!(
        !dir.must_change(&login, third).await,
        "no change required any more"
    );
    d.stop().await;
}

/// ChangePassword of a password that has expired (no grace binds: OpenLDAP refuses the
/// bind; AD with `data 532`): the service account sets it after the current password was
/// checked; a wrong current password is refused like any other.
pub async fn change_expired(dir: &dyn TestDirectory, work: &Path) {
    let d = daemon(dir, work).await;
    let mut c = d.clients().await;
    let req = |user: &str, current: &str, new: &str| pb::ChangePasswordRequest {
        username: user.into(),
        current_password: current.into(),
        new_password: new.into(),
    };
    let login = unique("expired");
    let old = "Expiring-Pass-1234";
    dir.create_user(&login, old).await;
    dir.expire_password(&login, old).await;
    assert!(dir.expired(&login, old).await, "expired: no bind");

    let new = "Renewed-Pass-5678";
    let r = c
        .reset
        .change_password(req(&login, old, new))
        .await
        .expect("an expired password is changed")
        .into_inner();
    assert!(r.was_expired && !r.was_must_change, "{r:?}");
    assert!(dir.can_bind(&login, new).await, "the new password binds");
    assert!(!dir.must_change(&login, new).await, "and needs no change");

    // A wrong current password for an expired account is refused like any other.
    dir.expire_password(&login, new).await;
    assert!(dir.expired(&login, new).await, "expired again");
    let e = c
        .reset
        .change_password(req(&login, "Not-The-Password-1", "Another-Pass-9753"))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "INVALID_CREDENTIALS");
    assert!(dir.expired(&login, new).await, "nothing changed");
    d.stop().await;
}
