//! Reset: start a flow, send codes, verify proofs, complete (write the password) or unlock.

use super::{
    CodeSent, Completed, Service, ServiceError, StartedReset, Verification, check_login,
    check_new_password, new_token, sending, token_hash,
};
use crate::delivery::Content;
use crate::delivery::text::phrase;
use crate::directory::{BindOutcome, DirectoryError, DirectoryUser};
use crate::flow::{self, reset, write};
use crate::method::{Method, code, questions, totp};
use crate::secret::Secret;
use crate::store::{Batch, CounterUpdate, Registration, ResetFlow, TokenHash, WriteIntent};
use std::sync::Arc;
use tokio::sync::oneshot;
use tracing::{Instrument, instrument, warn};

/// What settling a proof came to.
enum Settled {
    /// The answer to the proof.
    Answer(Verification),
    /// The registration the proof relied on (an authenticator's last step) changed before
    /// the batch committed: check the proof again.
    RegistrationChanged,
}

impl Service {
    /// What a proof's answer says about `flow` ([`reset::verification`]).
    async fn verification(
        &self,
        flow: &ResetFlow,
        verified: bool,
    ) -> Result<Verification, ServiceError> {
        let counters = self.store.counters(&flow.user_key).await?;
        let left = flow::attempts_left(flow, &counters, self.now(), &self.policy);
        Ok(reset::verification(
            flow,
            verified,
            self.limits.codes.length,
            left,
        ))
    }

    /// Starts a flow. Unknown, disabled, unregistered and insufficiently registered users get
    /// a decoy flow of the same shape; it can never be verified.
    #[instrument(skip_all)]
    pub async fn start_reset(&self, login: &str) -> Result<StartedReset, ServiceError> {
        self.uniformly(self.start_reset_unpadded(login)).await
    }

    async fn start_reset_unpadded(&self, login: &str) -> Result<StartedReset, ServiceError> {
        let login = check_login(login)?;
        let sspr = self.sspr();
        let user = self.directory.find_user(login).await?;
        // Out of scope, or an administrator who cannot meet the admin policy: a decoy too.
        let (standing, reg) = match &user {
            Some(u) if !u.disabled => {
                let st = self.standing(&sspr, u).await?;
                // Read either way: the same work in and out of scope.
                let reg = self.store.registration(&u.id).await?;
                (Some(st), reg.filter(|_| st.in_scope))
            }
            _ => {
                // The same directory and store work as for a real user (a membership
                // search for a name no group holds, a registration read that finds
                // nothing), so the timing does not tell; their outcome is not used.
                let stand_in = self.stand_in(login);
                let _ = self.standing(&sspr, &stand_in).await;
                let _ = self.store.registration(&stand_in.id).await;
                (None, None)
            }
        };
        let t = self.now();
        let qp = sspr.question_policy();
        let real = match (&user, &reg, standing) {
            (Some(u), Some(r), Some(st)) => self.methods_of(st.admin).and_then(|mp| {
                let offered = self.usable(r, &mp);
                let methods: Vec<Method> = offered.iter().map(|o| o.method).collect();
                (mp.unmet(&methods).is_none()).then(|| reset::Subject::User {
                    key: &u.id,
                    login: &u.login,
                    display_name: &u.display_name,
                    dn: &u.dn,
                    admin: st.admin,
                    offered,
                    required: mp.required,
                    registered: r.questions.iter().map(|q| q.question_id.clone()).collect(),
                    locked: u.locked,
                })
            }),
            _ => None,
        };
        let decoy_methods = self.methods_or_none(false);
        let likenesses = self.likenesses();
        let subject = real.unwrap_or(reset::Subject::Decoy {
            login,
            key: &self.decoy_key,
            bank: &self.bank,
            methods: &decoy_methods,
            email_domain: &self.opts.decoy_email_domain,
            likeness: likenesses.worn_by(&self.decoy_key, login, &decoy_methods),
        });
        let flow = reset::start(subject, t, &self.policy, qp, &mut rand::rng());
        let counters = self.store.counters(&flow.user_key).await?;
        if flow::blocked(&counters, t) {
            return Err(self.blocked(&counters));
        }
        let flow_id = new_token();
        // The flow and its record, as one atomic batch with one flush.
        let batch = Batch {
            created: vec![(TokenHash::of(&flow_id), flow.clone())],
            audit: vec![self.audit_event("reset.start", &flow.login, "success", "")],
            ..Batch::default()
        };
        let records = self.store.commit(&batch).await?.unwrap_or_default();
        for r in &records {
            self.forward_audit(r).await;
        }
        Ok(StartedReset {
            flow_id,
            expires_at: flow.expires_at,
            methods_required: flow.methods_required,
            challenges: reset::remaining(&flow, self.limits.codes.length),
            attempts_left: flow::attempts_left(&flow, &counters, t, &self.policy),
        })
    }

    async fn live_flow(&self, flow_id: &str) -> Result<(TokenHash, ResetFlow), ServiceError> {
        let h = token_hash(flow_id, "flow_id")?;
        self.live_flow_by_hash(&h).await
    }

    async fn live_flow_by_hash(
        &self,
        h: &TokenHash,
    ) -> Result<(TokenHash, ResetFlow), ServiceError> {
        Ok((*h, reset::live(self.store.flow(h).await?, self.now())?))
    }

    async fn check_not_blocked(&self, flow: &ResetFlow) -> Result<(), ServiceError> {
        let c = self.store.counters(&flow.user_key).await?;
        if flow::blocked(&c, self.now()) {
            Err(self.blocked(&c))
        } else {
            Ok(())
        }
    }

    /// Takes one attempt from the account's failure budget before a proof is evaluated
    /// (see [`flow::take_attempt`]): concurrent guesses from any number of flows and
    /// clients never get more wrong guesses evaluated than the policy allows. SSPR_BLOCKED
    /// when the account is blocked or its budget is taken by checks in progress.
    async fn take_attempt(&self, flow: &ResetFlow) -> Result<u64, ServiceError> {
        let id: u64 = rand::random();
        let (t, policy, run) = (self.now(), self.policy.clone(), self.run);
        let counters = self
            .store
            .update_counters(&flow.user_key, &move |c| {
                flow::take_attempt(c, id, run, t, &policy)
            })
            .await?;
        if flow::holds_attempt(&counters, id) {
            crate::failpoint::hit("verify.after_attempt");
            Ok(id)
        } else if flow::blocked(&counters, t) {
            Err(self.blocked(&counters))
        } else {
            Err(ServiceError::VerificationsInProgress)
        }
    }

    /// Releases the attempts and sign-in checks that earlier runs of the daemon took and
    /// never settled ([`flow::release_interrupted`]): at start, before any call is served,
    /// so that an attempt cut off by a crash never refuses a right proof afterwards. Each
    /// is audited (`interrupted`). How many were released.
    ///
    /// This store is this daemon's alone (sled): every other run is gone. A store shared by
    /// daemons will release only the attempts of runs whose lease has expired.
    pub async fn release_interrupted_checks(&self) -> Result<usize, ServiceError> {
        let run = self.run;
        let mut total = 0;
        for (key, c) in self.store.all_counters().await? {
            let stale = |a: &crate::store::PendingAttempt| a.owner != run;
            if !c.pending.iter().any(stale) && !c.sign_in.pending.iter().any(stale) {
                continue;
            }
            let released = std::sync::Mutex::new((0, 0));
            self.store
                .update_counters(&key, &|c| {
                    let (c, n) = flow::release_interrupted(c, |owner| owner != run);
                    *released.lock().expect("lock") = n;
                    c
                })
                .await?;
            let (proofs, sign_ins) = released.into_inner().expect("lock");
            let login = match self.store.registration(&key).await? {
                Some(r) => r.login,
                None => key.clone(),
            };
            for (kind, n) in [("reset.verify", proofs), ("sign_in", sign_ins)] {
                for _ in 0..n {
                    self.audit(kind, &login, "interrupted", "daemon_stopped")
                        .await;
                }
            }
            total += proofs + sign_ins;
        }
        Ok(total)
    }

    /// Gives an attempt back: the proof was right, or its outcome was not decided here.
    async fn give_back(&self, flow: &ResetFlow, attempt: u64) -> Result<(), ServiceError> {
        let (t, policy) = (self.now(), self.policy.clone());
        self.store
            .update_counters(&flow.user_key, &move |c| {
                flow::settle_attempt(c, attempt, flow::Settled::GivenBack, t, &policy)
            })
            .await?;
        Ok(())
    }

    /// Turns the attempt of a wrong proof into a failure of the account; errors when it
    /// blocks the account.
    async fn count_failure(
        &self,
        flow: &ResetFlow,
        attempt: u64,
        what: &str,
    ) -> Result<(), ServiceError> {
        let (t, policy) = (self.now(), self.policy.clone());
        let counters = self
            .store
            .update_counters(&flow.user_key, &move |c| {
                flow::settle_attempt(c, attempt, flow::Settled::Failed, t, &policy)
            })
            .await?;
        self.audit("reset.verify", &flow.login, "failure", what)
            .await;
        if flow::blocked(&counters, self.now()) {
            self.audit("sspr.blocked", &flow.login, "blocked", "too_many_failures")
                .await;
            return Err(self.blocked(&counters));
        }
        Ok(())
    }

    /// [`Self::settle_proof`] for a proof that changes no registration.
    async fn settle(
        &self,
        h: &TokenHash,
        flow: &ResetFlow,
        attempt: u64,
        verdict: reset::Verdict,
    ) -> Result<Verification, ServiceError> {
        match self.settle_proof(h, flow, attempt, verdict, None).await? {
            Settled::Answer(v) => Ok(v),
            // Only a registration swapped in the batch can change under it.
            Settled::RegistrationChanged => Err(ServiceError::FlowInvalid),
        }
    }

    /// Carries out the core's [`reset::Verdict`] on a checked proof, in a fixed order.
    /// Right: the attempt given back, the flow stored, `registration` swapped (an
    /// authenticator's last step) and the success audited, as one atomic batch
    /// (compare-and-swap on the flow: of racing proofs of one flow, one wins; the loser
    /// gives its attempt back and is told "not verified"; when the registration changed
    /// instead, the proof is checked again). Wrong:
    /// the flow stored, the failure counted (evaluated and wrong, it counts even when a
    /// racing call changed the flow), then the answer.
    async fn settle_proof(
        &self,
        h: &TokenHash,
        flow: &ResetFlow,
        attempt: u64,
        verdict: reset::Verdict,
        registration: Option<(Registration, Registration)>,
    ) -> Result<Settled, ServiceError> {
        match verdict {
            reset::Verdict::Verified { next, method } => {
                let (t, policy) = (self.now(), self.policy.clone());
                let give_back = CounterUpdate::new(move |c| {
                    flow::settle_attempt(c, attempt, flow::Settled::GivenBack, t, &policy)
                });
                let expected = registration.as_ref().map(|(old, _)| old.clone());
                let batch = Batch {
                    flows: vec![(*h, flow.clone(), next.clone())],
                    registrations: registration
                        .map(|(old, new)| (Some(old), new))
                        .into_iter()
                        .collect(),
                    counters: Some((flow.user_key.clone(), give_back)),
                    audit: vec![self.audit_event(
                        "reset.verify",
                        &flow.login,
                        "success",
                        method.name(),
                    )],
                    ..Batch::default()
                };
                match self.store.commit(&batch).await? {
                    Some(records) => {
                        for r in &records {
                            self.forward_audit(r).await;
                        }
                        Ok(Settled::Answer(self.verification(&next, true).await?))
                    }
                    // The registration changed (a racing code took the step): check again.
                    None if expected.is_some()
                        && self.store.registration(&flow.user_key).await? != expected =>
                    {
                        Ok(Settled::RegistrationChanged)
                    }
                    None => {
                        self.give_back(flow, attempt).await?;
                        let (_, current) = self.live_flow_by_hash(h).await?;
                        Ok(Settled::Answer(self.verification(&current, false).await?))
                    }
                }
            }
            reset::Verdict::Wrong {
                next,
                reason,
                closed,
            } => {
                let swapped = match &next {
                    Some(next) => self.store.swap_flow(h, flow, next).await?,
                    None => true,
                };
                self.count_failure(flow, attempt, reason).await?;
                if !swapped {
                    return Err(ServiceError::FlowInvalid);
                }
                if closed {
                    return Err(ServiceError::TooManyAttempts);
                }
                let v = self
                    .verification(next.as_ref().unwrap_or(flow), false)
                    .await?;
                Ok(Settled::Answer(v))
            }
        }
    }

    /// Checks the answers to the questions currently drawn in the flow.
    #[instrument(skip_all)]
    pub async fn verify_questions(
        &self,
        flow_id: &str,
        answers: Vec<(String, Secret)>,
    ) -> Result<Verification, ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        self.check_not_blocked(&flow).await?;
        reset::answers_fit(&flow, answers.iter().map(|(q, _)| q.as_str()))?;
        let reg = if flow.decoy {
            None
        } else {
            self.store.registration(&flow.user_key).await?
        };
        let attempt = self.take_attempt(&flow).await?;
        // Every answer is checked (same work whatever fails first, and for decoys).
        let mut all_right = true;
        for (qid, answer) in answers {
            let stored = reg.as_ref().and_then(|r| {
                r.questions
                    .iter()
                    .find(|q| q.question_id == qid)
                    .map(|q| q.answer_hash.clone())
            });
            let ok = self
                .hasher
                .verify(questions::normalise(answer.expose()), stored)
                .await;
            all_right &= ok;
        }
        let qp = self.question_policy();
        let registered: Vec<String> = match &reg {
            Some(r) => r.questions.iter().map(|q| q.question_id.clone()).collect(),
            None if !flow.decoy_questions.is_empty() => flow.decoy_questions.clone(),
            None => flow::decoy_registration(
                &self.bank,
                &self.decoy_key,
                &flow.login,
                qp.register_count,
            ),
        };
        let verdict = reset::questions_checked(
            &flow,
            all_right,
            &registered,
            qp,
            &self.policy,
            &mut rand::rng(),
        );
        self.settle(&h, &flow, attempt, verdict).await
    }

    /// Sends a code for an email or phone method of the flow; a resend replaces the
    /// previous code. The message goes out in the background (see `sending`): the answer
    /// comes once the provider took it, or at the uniform response time with `pending`
    /// set. A decoy flow goes through the same steps without sending anything.
    #[instrument(skip_all)]
    pub async fn send_code(&self, flow_id: &str, method: Method) -> Result<CodeSent, ServiceError> {
        let started = tokio::time::Instant::now();
        let result = match self.send_code_now(flow_id, method).await {
            Ok((login, expires_at, done)) => {
                let outcome = if self.opts.uniform_response.is_zero() {
                    Some(done.await)
                } else {
                    tokio::time::timeout_at(started + self.opts.uniform_response, done)
                        .await
                        .ok()
                };
                let (audit, result) = match outcome {
                    Some(Ok(Ok(()))) => (
                        "success",
                        Ok(CodeSent {
                            expires_at,
                            pending: false,
                        }),
                    ),
                    Some(Ok(Err(why))) => ("failure", Err(why.into())),
                    // Stopped at shutdown, or still going: the code stays valid.
                    Some(Err(_)) | None => (
                        "pending",
                        Ok(CodeSent {
                            expires_at,
                            pending: true,
                        }),
                    ),
                };
                self.audit("reset.code_sent", &login, audit, method.name())
                    .await;
                result
            }
            Err(e) => Err(e),
        };
        self.pad(started).await;
        result
    }

    /// Checks and records the send, then starts the delivery: the login (for the audit
    /// record), when the code expires, and where the delivery's outcome arrives.
    async fn send_code_now(
        &self,
        flow_id: &str,
        method: Method,
    ) -> Result<(String, u64, oneshot::Receiver<sending::Outcome>), ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        self.check_not_blocked(&flow).await?;
        reset::may_send(&flow, method, &self.limits.codes)?;
        let kind = method.contact_kind().expect("checked by may_send");
        // Per account, whichever flow or client asks (decoys alike): over the windows,
        // sends are throttled, never the account blocked (another method still verifies).
        self.take_send(&flow.user_key, &flow.login, "reset.code_sent")
            .await?;
        // The same read for decoys (whose key has no registration). A decoy's code is
        // random too; nobody ever sees it.
        let reg = self.store.registration(&flow.user_key).await?;
        let code = code::generate(self.limits.codes.length);
        let mac = code::mac(
            &self.code_key,
            &reset::code_context(&h, method),
            code.expose(),
        );
        let job = if flow.decoy {
            sending::Job::Decoy
        } else {
            let reg = reg.as_ref();
            let value = reg
                .and_then(|r| r.contact(kind))
                .map(|c| c.value.clone())
                .ok_or(ServiceError::MethodNotAvailable)?;
            sending::Job::Real {
                to: Self::channel(method, &value).expect("a code method"),
                content: Content::ResetCode {
                    code,
                    minutes: self.limits.codes.ttl_secs / 60,
                },
                language: reg.and_then(|r| r.language.clone()),
            }
        };
        let (next, expires_at) =
            reset::code_sent(&flow, method, mac.clone(), self.now(), &self.limits.codes);
        if !self.store.swap_flow(&h, &flow, &next).await? {
            return Err(ServiceError::FlowInvalid);
        }
        let target = sending::Target {
            flow: h,
            method,
            mac,
        };
        Ok((flow.login, expires_at, self.deliver_code(target, job)))
    }

    /// Checks a code sent by SendCode. Single use; wrong tries are limited per code and
    /// counted against the account.
    #[instrument(skip_all)]
    pub async fn verify_code(
        &self,
        flow_id: &str,
        method: Method,
        submitted: &Secret,
    ) -> Result<Verification, ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        self.check_not_blocked(&flow).await?;
        let code = match reset::code_submitted(&flow, method, self.now())? {
            reset::CodeCheck::NoCode => return self.verification(&flow, false).await,
            reset::CodeCheck::Undelivered { next, why } => {
                // The provider failed after SendCode answered: say so; the user resends.
                self.store.swap_flow(&h, &flow, &next).await?;
                self.audit("reset.code_sent", &flow.login, "failure", method.name())
                    .await;
                return Err(why.into());
            }
            reset::CodeCheck::Expired { next } => {
                self.store.swap_flow(&h, &flow, &next).await?;
                return self.verification(&next, false).await;
            }
            reset::CodeCheck::Compare { code } => code,
        };
        let attempt = self.take_attempt(&flow).await?;
        let right = code::verify(
            &self.code_key,
            &reset::code_context(&h, method),
            submitted.expose(),
            &code.mac,
        );
        let verdict = reset::code_checked(&flow, code, right);
        self.settle(&h, &flow, attempt, verdict).await
    }

    /// Checks an authenticator app code: ±1 step of the server clock, and only a step after
    /// the last one accepted for this user (a code is never accepted twice). The step
    /// accepted is stored in the same batch as the verified flow: of two racing submissions
    /// of one code, exactly one commits; the other checks again against the step now stored
    /// and is refused like any used code.
    #[instrument(skip_all)]
    pub async fn verify_authenticator(
        &self,
        flow_id: &str,
        submitted: &Secret,
    ) -> Result<Verification, ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        self.check_not_blocked(&flow).await?;
        reset::may_prove(&flow, Method::AuthenticatorCode)?;
        let attempt = self.take_attempt(&flow).await?;
        let mut races = super::cas::Races::new("registration");
        loop {
            let step = if flow.decoy {
                // Same work as a real check, never a match.
                let _ = totp::check(
                    &[0u8; 20],
                    submitted.expose(),
                    self.wall_now(),
                    Some(u64::MAX),
                );
                None
            } else {
                self.totp_step(&flow.user_key, submitted).await?
            };
            let verdict = reset::authenticator_checked(&flow, step.is_some());
            match self.settle_proof(&h, &flow, attempt, verdict, step).await? {
                Settled::Answer(v) => return Ok(v),
                Settled::RegistrationChanged => races.lost().await?,
            }
        }
    }

    /// The registration with its authenticator's last step moved to the step `submitted`
    /// matches (with the registration as read, to swap from); `None` when it matches no
    /// step after the last one accepted, or the user has no authenticator.
    async fn totp_step(
        &self,
        user_id: &str,
        submitted: &Secret,
    ) -> Result<Option<(Registration, Registration)>, ServiceError> {
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        let Some(reg) = self.store.registration(user_id).await? else {
            return Ok(None);
        };
        let Some(auth) = &reg.authenticator else {
            return Ok(None);
        };
        let Some(secret) = sealer.open(&auth.sealed_secret, user_id) else {
            warn!("authenticator secret cannot be opened (wrong totp key?)");
            return Ok(None);
        };
        let Some(step) = totp::check(
            &secret,
            submitted.expose(),
            self.wall_now(),
            Some(auth.last_step),
        ) else {
            return Ok(None);
        };
        let mut next = reg.clone();
        if let Some(a) = next.authenticator.as_mut() {
            a.last_step = step;
        }
        Ok(Some((reg, next)))
    }

    fn user_of(flow: &ResetFlow) -> DirectoryUser {
        DirectoryUser {
            dn: flow.dn.clone(),
            id: flow.user_key.clone(),
            login: flow.login.clone(),
            display_name: String::new(),
            locked: false,
            disabled: false,
            admin_count: false,
        }
    }

    /// Loads a live, verified flow under the user's lock. The lock is held by the caller
    /// for the directory write and the commit, so a flow is written at most once.
    async fn verified_flow(
        &self,
        flow_id: &str,
    ) -> Result<(TokenHash, ResetFlow, tokio::sync::OwnedMutexGuard<()>), ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        // Another call holds the lock while it writes (perhaps an earlier attempt of this
        // flow whose answer was lost): wait for it, but answer before the deadline.
        let guard = self.lock_user_in_time(&flow.user_key).await?;
        // Re-read under the lock: a racing call may have completed it.
        let (h, mut flow) = self.live_flow_by_hash(&h).await?;
        if flow.write.is_some() {
            flow = self.resolve_write(&h, flow).await?;
        }
        // Another flow's write (or an administrator's) that was cut off is decided before
        // this one may write; if it changed the password, this flow was closed with it.
        if self.settle_writes(&flow.user_key, Some(&h)).await? {
            return Err(ServiceError::FlowInvalid);
        }
        self.check_not_blocked(&flow).await?;
        reset::may_complete(&flow, &self.methods_or_none(flow.admin))?;
        Ok((h, flow, guard))
    }

    /// The user's lock, for a password write and its commit: waits for a call that holds it,
    /// but answers (OUTCOME_PENDING) before the request's deadline.
    pub(super) async fn lock_user_in_time(
        &self,
        user_key: &str,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, ServiceError> {
        let lock = self.user_lock(user_key).lock_owned();
        match crate::deadline::answer_by() {
            Some(by) => tokio::time::timeout_at(by, lock)
                .await
                .map_err(|_| ServiceError::OutcomePending),
            None => Ok(lock.await),
        }
    }

    /// Decides the cut-off password writes of the user's open flows (self-service or an
    /// administrator's), except `except`, before a new write — so that a marker moved by
    /// the new write is never taken for theirs. Says whether one of them changed the
    /// password. Called under the user's lock.
    pub(super) async fn settle_writes(
        &self,
        user_key: &str,
        except: Option<&TokenHash>,
    ) -> Result<bool, ServiceError> {
        let mut changed = false;
        for other in self.store.flows_of(user_key).await? {
            if Some(&other) == except {
                continue;
            }
            let Some(f) = self.store.flow(&other).await? else {
                continue;
            };
            if !f.write_undecided() {
                continue;
            }
            match self.resolve_write(&other, f).await {
                Ok(_) | Err(ServiceError::FlowInvalid) => {}
                Err(ServiceError::AlreadyCompleted) => changed = true,
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    /// Decides a password write that was interrupted (a crash, or an error that left the
    /// outcome unknown) from the directory: if the user's password-change marker moved, the
    /// password was changed and the flow is spent (RESET_ALREADY_COMPLETED); otherwise the
    /// intent is dropped and the flow is usable again. A directory that cannot be asked
    /// leaves the intent in place (UNAVAILABLE): never a blind retry.
    async fn resolve_write(
        &self,
        h: &TokenHash,
        flow: ResetFlow,
    ) -> Result<ResetFlow, ServiceError> {
        let Some(intent) = flow.write.clone() else {
            return Ok(flow);
        };
        // A write may have happened: while the directory cannot say, the outcome is pending.
        if crate::deadline::answer_by()
            .is_some_and(|by| tokio::time::Instant::now() + WRITE_SETTLE >= by)
        {
            return Err(ServiceError::OutcomePending);
        }
        let read_back = self
            .read_back(&Self::user_of(&flow), &intent.marker)
            .await?;
        match write::after_interruption(read_back) {
            write::Interrupted::Pending => return Err(ServiceError::OutcomePending),
            write::Interrupted::Applied => {
                let (reason, unlocked) = self.complete_intent(&flow, &intent).await?;
                let record =
                    self.audit_event(reset::write_kind(&flow), &flow.login, "success", &reason);
                let what = reset::written_what(&flow, unlocked);
                self.finish(h, &flow, Some(what), true, record).await?;
                return Err(ServiceError::AlreadyCompleted);
            }
            write::Interrupted::NotApplied => {}
        }
        let cleared = reset::without_write(&flow);
        if !self.store.swap_flow(h, &flow, &cleared).await? {
            return Err(ServiceError::FlowInvalid);
        }
        self.audit(
            reset::write_kind(&flow),
            &flow.login,
            "failure",
            "write_not_applied",
        )
        .await;
        Ok(cleared)
    }

    /// Carries out what a write decided as applied after an interruption may still lack —
    /// the password and its flags are one intent: "change at next sign-in" is set (again:
    /// harmless when the crash came after it), and the account unlocked when asked and it
    /// was locked. The record's reason says what was done (`resolved_after_interruption`,
    /// `+must_change`, or `+must_change_not_set` when the directory refused the flag); a
    /// directory that cannot be asked leaves the write undecided (OUTCOME_PENDING).
    async fn complete_intent(
        &self,
        flow: &ResetFlow,
        intent: &WriteIntent,
    ) -> Result<(String, bool), ServiceError> {
        let user = Self::user_of(flow);
        let mut reason = "resolved_after_interruption".to_string();
        if intent.must_change {
            match self.directory.require_change(&user).await {
                Ok(()) => reason.push_str("+must_change"),
                Err(DirectoryError::Unavailable(why)) => {
                    warn!(reason = %why, "the password was changed; its change-at-next-sign-in flag waits for the directory");
                    return Err(ServiceError::OutcomePending);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the password was changed, but the directory refused the change-at-next-sign-in flag");
                    reason.push_str("+must_change_not_set");
                }
            }
        }
        let mut unlocked = false;
        if intent.unlock {
            match self.directory.unlock(&user).await {
                Ok(()) => unlocked = flow.locked,
                Err(e) => warn!(error = %e, "password set but unlock failed"),
            }
        }
        Ok((reason, unlocked))
    }

    /// Decides every write that a crash (or an outcome the directory left unknown) cut
    /// off, each under its user's lock — at start, so the decision and its record do not
    /// wait for the user's next write, and again while any stays undecided (a directory
    /// that cannot be asked yet). How many users still have one.
    pub async fn decide_interrupted_writes(&self) -> Result<usize, ServiceError> {
        let mut left = 0;
        for user in self.store.undecided_writes().await? {
            let _guard = self.user_lock(&user).lock_owned().await;
            if let Err(e) = self.settle_writes(&user, None).await {
                warn!(error = %e, "an interrupted password write is not decided yet");
                left += 1;
            }
        }
        Ok(left)
    }

    /// Whether a password write whose outcome is unknown (a crash, a timeout, a lost reply)
    /// was applied, from the user's password-change marker: changed means applied. An
    /// unchanged marker is trusted only when it is still unchanged [`WRITE_SETTLE`] later: a
    /// directory that stalled may still be holding the write it received and apply it the
    /// moment it runs again — right after, or even while, the first read is answered.
    async fn write_applied(
        &self,
        user: &DirectoryUser,
        before: &Option<String>,
    ) -> Result<bool, DirectoryError> {
        if self.directory.password_marker(user).await? != *before {
            return Ok(true);
        }
        tokio::time::sleep(WRITE_SETTLE).await;
        Ok(self.directory.password_marker(user).await? != *before)
    }

    /// [`Self::write_applied`] as a [`write::ReadBack`]: a directory that cannot be asked
    /// is `Unreadable`; other directory errors are errors.
    async fn read_back(
        &self,
        user: &DirectoryUser,
        before: &Option<String>,
    ) -> Result<write::ReadBack, ServiceError> {
        match self.write_applied(user, before).await {
            Ok(true) => Ok(write::ReadBack::Moved),
            Ok(false) => Ok(write::ReadBack::Unchanged),
            Err(DirectoryError::Unavailable(why)) => {
                warn!(reason = %why, "cannot read the password-change marker back yet");
                Ok(write::ReadBack::Unreadable)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Drops the write intent of a flow whose write certainly did not happen: a
    /// self-service flow is usable again, an administrator's reset is over.
    async fn clear_write(&self, h: &TokenHash, pending: &ResetFlow) -> Result<(), ServiceError> {
        let intent = pending.write.clone();
        self.change_flow(h, |f| (f.write == intent).then(|| reset::without_write(f)))
            .await?;
        Ok(())
    }

    /// Applies `change` to the stored flow `h` with compare-and-swap ([`super::cas`]):
    /// `change` decides from the flow as stored (`None`: leave it). Whether it was applied.
    async fn change_flow(
        &self,
        h: &TokenHash,
        change: impl Fn(&ResetFlow) -> Option<ResetFlow>,
    ) -> Result<bool, ServiceError> {
        let mut races = super::cas::Races::new("flow");
        loop {
            let Some(current) = self.store.flow(h).await? else {
                return Ok(false);
            };
            let Some(next) = change(&current) else {
                return Ok(false);
            };
            if self.store.swap_flow(h, &current, &next).await? {
                return Ok(true);
            }
            races.lost().await?;
        }
    }

    /// Spends the flow, closes the user's other open flows (a reset ends every other attempt
    /// in progress), resets the failure counters (after a self-service reset; an
    /// administrator lifts a block with ClearBlock), tells the user's confirmed contacts
    /// `what` happened (when anything did), and stores `record` — as one atomic batch with
    /// one flush ([`Batch`]).
    async fn finish(
        &self,
        h: &TokenHash,
        flow: &ResetFlow,
        what: Option<&'static str>,
        password_changed: bool,
        record: crate::audit::AuditEvent,
    ) -> Result<(), ServiceError> {
        let outbox = match (what, self.sspr().notify_users) {
            (Some(what), true) => {
                let notice = crate::delivery::Notice::AccountRecovered {
                    what: what.to_string(),
                };
                self.store
                    .registration(&flow.user_key)
                    .await?
                    .map(|reg| self.contact_items(&reg, &notice))
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        // Under the user's lock no other write can end the flow; a racing proof may still
        // change it or another flow of the user, and is overtaken: read again, decide again.
        let mut races = super::cas::Races::new("flow");
        loop {
            let mut batch = Batch {
                outbox: outbox.clone(),
                audit: vec![record.clone()],
                counters: (!flow.by_admin).then(|| {
                    let clear = CounterUpdate::new(flow::clear_failures);
                    (flow.user_key.clone(), clear)
                }),
                ..Batch::default()
            };
            let current = self.store.flow(h).await?;
            let mut others = Vec::new();
            for other in self.store.flows_of(&flow.user_key).await? {
                if other == *h {
                    continue;
                }
                if let Some(f) = self.store.flow(&other).await? {
                    others.push((other, f));
                }
            }
            batch.flows = reset::ending(h, current, others, password_changed);
            if let Some(records) = self.store.commit(&batch).await? {
                for r in &records {
                    self.forward_audit(r).await;
                }
                if !batch.outbox.is_empty() {
                    self.wake_outbox();
                }
                let mut methods: Vec<_> = flow.verified.iter().map(|m| m.name()).collect();
                methods.sort_unstable();
                let methods = if methods.is_empty() {
                    "none".to_string()
                } else {
                    methods.join("+")
                };
                metrics::counter!(
                    "ssprd_recoveries_total",
                    "action" => crate::audit::label(&record.kind),
                    "methods" => methods
                )
                .increment(1);
                return Ok(());
            }
            races.lost().await?;
        }
    }

    /// Writes the new password (and unlocks if asked), verifies it by a bind, and spends
    /// the flow. Any directory failure leaves the flow verified and retryable.
    ///
    /// From the write intent on, the work runs in a task of its own, holding the user's
    /// lock: a client that goes away or a gRPC deadline that expires mid-write cancels the
    /// answer, not the write and its record. The flow id works as an idempotency key: a
    /// retry waits for that outcome, then learns that the password was changed
    /// (RESET_ALREADY_COMPLETED) or finds the flow usable again (the write did not happen),
    /// and never writes twice.
    #[instrument(skip_all)]
    pub async fn complete_reset(
        self: &Arc<Self>,
        flow_id: &str,
        new_password: &Secret,
        unlock: bool,
    ) -> Result<Completed, ServiceError> {
        let (h, flow, guard) = match self.verified_flow(flow_id).await {
            // A retry after the password was written (e.g. the first call's deadline
            // expired): say so, rather than "unknown flow".
            Err(ServiceError::FlowInvalid) if self.password_changed_in(flow_id).await => {
                return Err(ServiceError::AlreadyCompleted);
            }
            other => other?,
        };
        check_new_password(new_password)?;
        if let Err(r) = self
            .password
            .check(new_password, &flow.login, &flow.display_name)
        {
            self.audit("reset.complete", &flow.login, "failure", r.reason())
                .await;
            return Err(ServiceError::PasswordRules(r));
        }
        let opts = WriteOptions {
            must_change: self.opts.require_change_after_reset,
            unlock,
            verify_by_bind: self.opts.verify_after_write,
        };
        self.write_in_task(guard, h, flow, new_password, opts).await
    }

    /// Runs [`Self::write_and_commit`] in a task of its own that holds the user's lock
    /// (`guard`) until the outcome is recorded, and waits for it until the request's
    /// deadline: a client that goes away or a deadline that expires cancels the answer
    /// (OUTCOME_PENDING), never the write and its record.
    pub(super) async fn write_in_task(
        self: &Arc<Self>,
        guard: tokio::sync::OwnedMutexGuard<()>,
        h: TokenHash,
        flow: ResetFlow,
        new_password: &Secret,
        opts: WriteOptions,
    ) -> Result<Completed, ServiceError> {
        let this = self.clone();
        let password = new_password.clone();
        let work = super::as_actor(super::current_actor(), async move {
            let _guard = guard;
            this.write_and_commit(h, flow, &password, opts).await
        });
        let mut task = tokio::spawn(work.in_current_span());
        // The answer comes before the request's deadline: if the write has not finished by
        // then, the client learns the outcome by calling again with the same flow id.
        let finished = match crate::deadline::answer_by() {
            Some(by) => match tokio::time::timeout_at(by, &mut task).await {
                Ok(done) => done,
                Err(_) => {
                    warn!("the password write outlasts the request: its outcome is pending");
                    return Err(ServiceError::OutcomePending);
                }
            },
            None => task.await,
        };
        finished.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the password write task failed");
            Err(ServiceError::DirectoryFailed)
        })
    }

    /// Whether `flow_id` names a flow, not yet expired, that changed the password.
    async fn password_changed_in(&self, flow_id: &str) -> bool {
        let Ok(h) = token_hash(flow_id, "flow_id") else {
            return false;
        };
        matches!(
            self.store.flow(&h).await,
            Ok(Some(f)) if reset::changed_password(&f, self.now())
        )
    }

    /// The write protocol, for self-service and administrators' resets alike: the write
    /// intent (with the user's password-change marker) is durable before the directory is
    /// touched; a refused write drops it; an outcome the directory left unknown is decided
    /// from the marker, or left pending for the next call to decide; a done write unlocks if
    /// asked, verifies by a bind if asked, and spends the flow ([`Self::finish`]).
    async fn write_and_commit(
        &self,
        h: TokenHash,
        flow: ResetFlow,
        new_password: &Secret,
        opts: WriteOptions,
    ) -> Result<Completed, ServiceError> {
        let h = &h;
        let user = Self::user_of(&flow);
        let kind = reset::write_kind(&flow);
        let must_change = opts.must_change;
        // The intent is durable before the directory is touched (see `resolve_write`).
        let marker = self.directory.password_marker(&user).await?;
        let mut pending = flow.clone();
        pending.write = Some(WriteIntent {
            marker: marker.clone(),
            must_change,
            unlock: opts.unlock,
        });
        if !self.store.swap_flow(h, &flow, &pending).await? {
            return Err(ServiceError::FlowInvalid);
        }
        crate::failpoint::hit("complete.intent");
        crate::failpoint::delay("complete.slow_write").await;
        let mut written = self
            .directory
            .set_password(&user, new_password, must_change)
            .await;
        crate::failpoint::hit("complete.after_write");
        if written.is_ok() && crate::failpoint::active("complete.reply_lost") {
            written = Err(DirectoryError::Unavailable(
                "failpoint: the reply to the write was lost".into(),
            ));
        }
        if let Err(e) = written {
            // A refusal is definite. Anything else may have happened after the server
            // applied the write (a timeout, a dropped connection): the user's
            // password-change marker (pwdChangedTime / pwdLastSet) tells. No second write,
            // and no bind that could count against the account.
            let answer = match &e {
                DirectoryError::Refused(r) => write::Answer::Refused { reason: r.code() },
                DirectoryError::InsecureTransport => write::Answer::Refused {
                    reason: "directory_error",
                },
                DirectoryError::Unavailable(_) => write::Answer::Unknown {
                    reason: "directory_unavailable",
                },
                _ => write::Answer::Unknown {
                    reason: "directory_error",
                },
            };
            let read_back = if write::needs_read_back(answer) {
                Some(
                    self.read_back(&user, &marker)
                        .await
                        .unwrap_or(write::ReadBack::Unreadable),
                )
            } else {
                None
            };
            match write::after_write(answer, read_back) {
                write::Decision::Commit { .. } => {
                    warn!(error = %e, "the directory reported an error, but the password did change");
                    self.audit(kind, &flow.login, "indeterminate", "resolved_applied")
                        .await;
                }
                write::Decision::Drop { reason } => {
                    self.clear_write(h, &pending).await?;
                    self.audit(kind, &flow.login, "failure", reason).await;
                    return Err(e.into());
                }
                write::Decision::Pending { reason } => {
                    // Undecidable now: the intent stays; the next attempt decides it.
                    self.audit(kind, &flow.login, "indeterminate", reason).await;
                    return Err(ServiceError::OutcomePending);
                }
            }
        }
        let flow = pending;
        // "Unlocked" only for an account that was locked: a false notice teaches users to
        // ignore the real ones.
        let mut unlocked = false;
        if opts.unlock {
            match self.directory.unlock(&user).await {
                Ok(()) => unlocked = flow.locked,
                Err(e) => warn!(error = %e, "password set but unlock failed"),
            }
        }
        let verified_by_bind = if opts.verify_by_bind {
            match self.directory.bind_as_user(&user.dn, new_password).await {
                Ok(BindOutcome::Ok | BindOutcome::MustChange) => true,
                Ok(other) => {
                    warn!(outcome = ?other, "bind with the new password did not succeed");
                    false
                }
                Err(e) => {
                    warn!(error = %e, "verification bind failed");
                    false
                }
            }
        } else {
            false
        };
        let detail = if flow.by_admin && must_change {
            "must_change"
        } else {
            ""
        };
        let record = self.audit_event(kind, &flow.login, "success", detail);
        let what = reset::written_what(&flow, unlocked);
        self.finish(h, &flow, Some(what), true, record).await?;
        crate::failpoint::hit("complete.after_commit");
        Ok(Completed {
            verified_by_bind,
            unlocked,
        })
    }

    /// The rules the new password must meet: local rules merged with the directory's. A
    /// decoy flow has no DN, so the directory answers with its default policy — what most
    /// real users get too.
    #[instrument(skip_all)]
    pub async fn password_policy(
        &self,
        flow_id: &str,
    ) -> Result<super::EffectivePasswordPolicy, ServiceError> {
        let (_, flow) = self.live_flow(flow_id).await?;
        self.merged_policy(&Self::user_of(&flow)).await
    }

    /// The rules for a user not known yet (the portal's change page, before the name is
    /// typed): the local rules merged with the directory's default policy, which most
    /// users have; the local rules alone while the directory cannot be asked.
    pub async fn default_password_policy(&self) -> super::EffectivePasswordPolicy {
        let nobody = DirectoryUser {
            dn: String::new(),
            id: String::new(),
            login: String::new(),
            display_name: String::new(),
            locked: false,
            disabled: false,
            admin_count: false,
        };
        match self.merged_policy(&nobody).await {
            Ok(p) => p,
            Err(_) => self.local_password_policy(),
        }
    }

    /// The local rules merged with the directory's policy for `user`.
    async fn merged_policy(
        &self,
        user: &DirectoryUser,
    ) -> Result<super::EffectivePasswordPolicy, ServiceError> {
        let dir = self.directory.password_policy(user).await?;
        let local = self.local_password_policy();
        Ok(super::EffectivePasswordPolicy {
            min_length: local.min_length.max(dir.min_length),
            history: dir.history,
            complexity_required: dir.complexity,
            ..local
        })
    }

    /// The local rules (`[password]`) alone.
    pub fn local_password_policy(&self) -> super::EffectivePasswordPolicy {
        let local = &self.password;
        super::EffectivePasswordPolicy {
            min_length: local.min_length as u32,
            max_length: local.max_length as u32,
            history: 0,
            complexity_required: false,
            banned_terms_checked: !local.banned.is_empty(),
            names_refused: local.reject_names,
            min_strength: local.min_strength.map_or(0, u32::from),
            breached_checked: local.breached.is_some(),
            common_checked: local.common.is_some(),
        }
    }

    /// Unlocks the account without a password change.
    #[instrument(skip_all)]
    /// Unlocks the flow's account; whether it was locked (when it was not, nothing is
    /// claimed: the record says `not_locked` and no notice goes out).
    pub async fn unlock_account(&self, flow_id: &str) -> Result<bool, ServiceError> {
        let (h, flow, _guard) = self.verified_flow(flow_id).await?;
        if let Err(e) = self.directory.unlock(&Self::user_of(&flow)).await {
            self.audit("unlock", &flow.login, "failure", "directory")
                .await;
            return Err(e.into());
        }
        let (detail, notice) = match flow.locked {
            true => ("", Some(phrase::UNLOCKED)),
            false => ("not_locked", None),
        };
        let record = self.audit_event("unlock", &flow.login, "success", detail);
        self.finish(&h, &flow, notice, false, record).await?;
        Ok(flow.locked)
    }
}

/// How long an unchanged password-change marker must stay unchanged before a write whose
/// outcome was unknown counts as not applied (see `Service::write_applied`).
const WRITE_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How a password write is carried out, beyond the flow that holds its intent.
pub(super) struct WriteOptions {
    /// Require a change at the next sign-in (`pwdReset` / `pwdLastSet=0`).
    pub must_change: bool,
    /// Clear the directory lockout after the write.
    pub unlock: bool,
    /// Bind as the user with the new password afterwards.
    pub verify_by_bind: bool,
}
