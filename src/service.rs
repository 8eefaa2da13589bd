//! The SSPR service: registration and reset use cases. It validates input, loads state from
//! the [`Store`], asks the pure [`flow`] functions what to do, talks to the [`Directory`], and
//! persists the outcome. Errors are [`ServiceError`], mapped once to gRPC in `api`.

use crate::directory::{BindOutcome, Directory, DirectoryError, DirectoryUser, PolicyReason};
use crate::flow;
use crate::method::{Method, questions};
use crate::policy::{QuestionBank, QuestionPolicy, ResetPolicy};
use crate::secret::Secret;
use crate::store::{
    AuditEvent, FlowState, RegisteredQuestion, Registration, RegistrationSession, ResetFlow, Store,
    StoreError, TokenHash,
};
use base64::Engine;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{info, instrument, warn};

/// Longest login name accepted.
pub const MAX_LOGIN_CHARS: usize = 256;
/// Longest password accepted (NIST: at least 64 must be accepted; longer is refused clearly).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Service-layer errors. Authentication failures stay generic on purpose.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    InvalidArgument {
        field: &'static str,
        reason: &'static str,
        message: String,
    },
    #[error("the username or password is not correct")]
    InvalidCredentials,
    #[error("the registration token is unknown or has expired")]
    RegistrationTokenInvalid,
    #[error("the reset flow is unknown, has expired or is finished")]
    FlowInvalid,
    #[error("verify {required} method(s) before completing ({verified} verified)")]
    NotVerified { verified: u32, required: u32 },
    #[error("too many wrong answers: this reset flow is closed; start a new one")]
    TooManyAttempts,
    #[error(
        "self-service password reset is blocked for this account for now; try later or contact the helpdesk"
    )]
    Blocked,
    #[error("{}", .0.message())]
    PasswordRefused(PolicyReason),
    #[error(
        "the directory is unavailable; try again (the verified flow stays valid until it expires)"
    )]
    DirectoryUnavailable,
    #[error(
        "the directory refused the operation; the administrator has been told (see the daemon log)"
    )]
    DirectoryFailed,
    #[error("storage is unavailable; nothing was changed")]
    StoreUnavailable,
}

impl ServiceError {
    fn invalid(field: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        Self::StoreUnavailable
    }
}

impl From<DirectoryError> for ServiceError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Unavailable(ref why) => {
                warn!(reason = %why, "directory unavailable");
                Self::DirectoryUnavailable
            }
            DirectoryError::Refused(r) => Self::PasswordRefused(r),
            other => {
                tracing::error!(error = %other, "directory error");
                Self::DirectoryFailed
            }
        }
    }
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A 128-bit bearer token from the OS CSPRNG, base64url without padding.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Accepts only well-formed tokens before hashing them for a lookup.
fn token_hash(token: &str, field: &'static str) -> Result<TokenHash, ServiceError> {
    let ok = token.len() == 22
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(TokenHash::of(token))
    } else {
        Err(ServiceError::invalid(
            field,
            "MALFORMED_TOKEN",
            format!("{field} is not a token issued by ssprd"),
        ))
    }
}

fn check_login(login: &str) -> Result<&str, ServiceError> {
    let login = login.trim();
    if login.is_empty() {
        return Err(ServiceError::invalid(
            "username",
            "USERNAME_REQUIRED",
            "username is required",
        ));
    }
    if login.chars().count() > MAX_LOGIN_CHARS || login.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "username",
            "USERNAME_INVALID",
            format!(
                "username must be at most {MAX_LOGIN_CHARS} characters without control characters"
            ),
        ));
    }
    Ok(login)
}

fn check_new_password(pw: &Secret) -> Result<(), ServiceError> {
    let n = pw.expose().chars().count();
    if n == 0 {
        return Err(ServiceError::invalid(
            "new_password",
            "PASSWORD_REQUIRED",
            "a new password is required",
        ));
    }
    if pw.expose().contains('\0') {
        return Err(ServiceError::invalid(
            "new_password",
            "PASSWORD_INVALID_CHARACTER",
            "the new password contains a NUL character",
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ServiceError::invalid(
            "new_password",
            "PASSWORD_TOO_LONG",
            format!("the new password is longer than {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// What the registration RPCs report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationStatus {
    pub login: String,
    pub complete: bool,
    pub methods: Vec<Method>,
    pub question_ids: Vec<String>,
    pub updated_at: u64,
}

/// A challenge for one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    SecurityQuestions(Vec<String>),
}

/// Returned by StartReset.
#[derive(Debug)]
pub struct StartedReset {
    pub flow_id: String,
    pub expires_at: u64,
    pub methods_required: u32,
    pub challenges: Vec<Challenge>,
}

/// Returned by VerifyMethod.
#[derive(Debug)]
pub struct Verification {
    pub verified: bool,
    pub methods_verified: u32,
    pub methods_required: u32,
    pub remaining: Vec<Challenge>,
}

/// Returned by CompleteReset.
#[derive(Debug)]
pub struct Completed {
    pub verified_by_bind: bool,
    pub unlocked: bool,
}

/// Settings the service needs beyond the policy.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub verify_after_write: bool,
    pub require_change_after_reset: bool,
}

pub struct Service {
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
    hasher: questions::AnswerHasher,
    policy: ResetPolicy,
    questions: QuestionPolicy,
    bank: QuestionBank,
    opts: ServiceOptions,
    decoy_key: [u8; 32],
    /// Writes are serialised per user (one directory write at a time per account).
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Service {
    pub async fn new(
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
        hasher: questions::AnswerHasher,
        policy: ResetPolicy,
        questions: QuestionPolicy,
        bank: QuestionBank,
        opts: ServiceOptions,
    ) -> Result<Self, StoreError> {
        let decoy_key = store.server_key("decoy").await?;
        Ok(Self {
            store,
            directory,
            hasher,
            policy,
            questions,
            bank,
            opts,
            decoy_key,
            user_locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn bank(&self) -> &QuestionBank {
        &self.bank
    }

    pub fn question_policy(&self) -> QuestionPolicy {
        self.questions
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn user_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.user_locks.lock().expect("lock poisoned");
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(key.to_string()).or_default().clone()
    }

    async fn audit(&self, kind: &str, user: &str, outcome: &str, reason: &str) {
        let ev = AuditEvent {
            at: now(),
            kind: kind.into(),
            user: user.into(),
            outcome: outcome.into(),
            reason: reason.into(),
        };
        info!(kind, user, outcome, reason, "audit");
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::error!(error = %e, "audit event not stored");
        }
    }

    fn status(&self, login: &str, reg: Option<&Registration>) -> RegistrationStatus {
        let question_ids: Vec<String> = reg
            .map(|r| r.questions.iter().map(|q| q.question_id.clone()).collect())
            .unwrap_or_default();
        let complete = question_ids.len() >= self.questions.register_count;
        RegistrationStatus {
            login: login.into(),
            complete,
            methods: if complete {
                vec![Method::SecurityQuestions]
            } else {
                vec![]
            },
            question_ids,
            updated_at: reg.map_or(0, |r| r.updated_at),
        }
    }

    // ---------------------------------------------------------------- registration ----

    /// Proves the user by a bind with the current password; opens a registration session.
    #[instrument(skip_all)]
    pub async fn begin_registration(
        &self,
        login: &str,
        password: &Secret,
    ) -> Result<(String, u64, RegistrationStatus), ServiceError> {
        let login = check_login(login)?;
        if password.is_empty() {
            return Err(ServiceError::InvalidCredentials);
        }
        let Some(user) = self.directory.find_user(login).await? else {
            self.audit(
                "registration.begin",
                login,
                "failure",
                "invalid_credentials",
            )
            .await;
            return Err(ServiceError::InvalidCredentials);
        };
        match self.directory.bind_as_user(&user.dn, password).await? {
            BindOutcome::Ok | BindOutcome::MustChange => {}
            other => {
                self.audit(
                    "registration.begin",
                    login,
                    "failure",
                    &format!("{other:?}").to_lowercase(),
                )
                .await;
                return Err(ServiceError::InvalidCredentials);
            }
        }
        let token = new_token();
        let expires_at = now() + self.policy.registration_ttl_secs;
        let session = RegistrationSession {
            user_id: user.id.clone(),
            login: user.login.clone(),
            dn: user.dn.clone(),
            expires_at,
        };
        self.store
            .put_session(&TokenHash::of(&token), &session)
            .await?;
        let reg = self.store.registration(&user.id).await?;
        self.audit("registration.begin", &user.login, "success", "")
            .await;
        Ok((token, expires_at, self.status(&user.login, reg.as_ref())))
    }

    async fn session(&self, token: &str) -> Result<RegistrationSession, ServiceError> {
        let h = token_hash(token, "registration_token")?;
        match self.store.session(&h).await? {
            Some(s) if s.expires_at > now() => Ok(s),
            _ => Err(ServiceError::RegistrationTokenInvalid),
        }
    }

    pub async fn get_registration(&self, token: &str) -> Result<RegistrationStatus, ServiceError> {
        let s = self.session(token).await?;
        let reg = self.store.registration(&s.user_id).await?;
        Ok(self.status(&s.login, reg.as_ref()))
    }

    /// Replaces the user's questions and answers.
    #[instrument(skip_all)]
    pub async fn set_security_questions(
        &self,
        token: &str,
        answers: Vec<(String, Secret)>,
    ) -> Result<RegistrationStatus, ServiceError> {
        let s = self.session(token).await?;
        let want = self.questions.register_count;
        if answers.len() != want {
            return Err(ServiceError::invalid(
                "answers",
                "WRONG_QUESTION_COUNT",
                format!(
                    "register exactly {want} questions ({} given)",
                    answers.len()
                ),
            ));
        }
        let mut seen_q = HashSet::new();
        let mut seen_a = HashSet::new();
        let mut normalised = Vec::with_capacity(want);
        for (qid, answer) in &answers {
            if self.bank.get(qid).is_none() {
                return Err(ServiceError::invalid(
                    "answers.question_id",
                    "UNKNOWN_QUESTION",
                    format!("{qid:?} is not a question of the bank (see ListSecurityQuestions)"),
                ));
            }
            if !seen_q.insert(qid.clone()) {
                return Err(ServiceError::invalid(
                    "answers.question_id",
                    "DUPLICATE_QUESTION",
                    format!("question {qid:?} is answered twice"),
                ));
            }
            let n = questions::normalise_checked(answer.expose()).map_err(|e| {
                ServiceError::invalid(
                    "answers.answer",
                    match e {
                        questions::AnswerError::TooShort => "ANSWER_TOO_SHORT",
                        questions::AnswerError::TooLong => "ANSWER_TOO_LONG",
                    },
                    format!("answer to {qid:?}: {e}"),
                )
            })?;
            if !seen_a.insert(n.expose().to_owned()) {
                return Err(ServiceError::invalid(
                    "answers.answer",
                    "DUPLICATE_ANSWER",
                    "two questions have the same answer; each answer must be different",
                ));
            }
            normalised.push((qid.clone(), n));
        }
        seen_a.clear();
        let mut registered = Vec::with_capacity(want);
        for (qid, n) in normalised {
            registered.push(RegisteredQuestion {
                question_id: qid,
                answer_hash: self.hasher.hash(n).await,
            });
        }
        let t = now();
        let created_at = self
            .store
            .registration(&s.user_id)
            .await?
            .map_or(t, |r| r.created_at);
        let reg = Registration {
            user_id: s.user_id.clone(),
            login: s.login.clone(),
            questions: registered,
            created_at,
            updated_at: t,
        };
        self.store.put_registration(&reg).await?;
        self.audit("registration.questions", &s.login, "success", "")
            .await;
        Ok(self.status(&s.login, Some(&reg)))
    }

    // ---------------------------------------------------------------------- reset ----

    /// Starts a flow. Unknown, disabled and unregistered users get a decoy flow of the same
    /// shape; it can never be verified.
    #[instrument(skip_all)]
    pub async fn start_reset(&self, login: &str) -> Result<StartedReset, ServiceError> {
        let login = check_login(login)?;
        let user = self.directory.find_user(login).await?;
        let reg = match &user {
            Some(u) if !u.disabled => self.store.registration(&u.id).await?,
            _ => None,
        };
        let t = now();
        let real = match (&user, &reg) {
            (Some(u), Some(r)) if r.questions.len() >= self.questions.reset_count => Some((u, r)),
            _ => None,
        };
        let flow = match real {
            Some((u, r)) => {
                let ids: Vec<String> = r.questions.iter().map(|q| q.question_id.clone()).collect();
                ResetFlow {
                    user_key: u.id.clone(),
                    login: u.login.clone(),
                    dn: u.dn.clone(),
                    decoy: false,
                    created_at: t,
                    expires_at: t + self.policy.session_ttl_secs,
                    methods_required: self.policy.methods_required,
                    questions_drawn: flow::draw_questions(&ids, self.questions.reset_count),
                    verified: vec![],
                    failed_attempts: 0,
                    state: FlowState::Open,
                }
            }
            None => {
                let fake = flow::decoy_registration(
                    &self.bank,
                    &self.decoy_key,
                    login,
                    self.questions.register_count,
                );
                ResetFlow {
                    user_key: flow::decoy_user_key(&self.decoy_key, login),
                    login: login.to_string(),
                    dn: String::new(),
                    decoy: true,
                    created_at: t,
                    expires_at: t + self.policy.session_ttl_secs,
                    methods_required: self.policy.methods_required,
                    questions_drawn: flow::draw_questions(&fake, self.questions.reset_count),
                    verified: vec![],
                    failed_attempts: 0,
                    state: FlowState::Open,
                }
            }
        };
        let counters = self.store.counters(&flow.user_key).await?;
        if flow::blocked(&counters, t) {
            return Err(ServiceError::Blocked);
        }
        let flow_id = new_token();
        self.store.put_flow(&TokenHash::of(&flow_id), &flow).await?;
        self.audit("reset.start", login, "success", "").await;
        Ok(StartedReset {
            flow_id,
            expires_at: flow.expires_at,
            methods_required: flow.methods_required,
            challenges: vec![Challenge::SecurityQuestions(flow.questions_drawn.clone())],
        })
    }

    async fn live_flow(&self, flow_id: &str) -> Result<(TokenHash, ResetFlow), ServiceError> {
        let h = token_hash(flow_id, "flow_id")?;
        match self.store.flow(&h).await? {
            Some(f) if flow::is_live(&f, now()) => Ok((h, f)),
            _ => Err(ServiceError::FlowInvalid),
        }
    }

    async fn check_not_blocked(&self, flow: &ResetFlow) -> Result<(), ServiceError> {
        let c = self.store.counters(&flow.user_key).await?;
        if flow::blocked(&c, now()) {
            Err(ServiceError::Blocked)
        } else {
            Ok(())
        }
    }

    fn remaining(&self, flow: &ResetFlow) -> Vec<Challenge> {
        if flow.verified.contains(&Method::SecurityQuestions) {
            vec![]
        } else {
            vec![Challenge::SecurityQuestions(flow.questions_drawn.clone())]
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
        if flow.verified.contains(&Method::SecurityQuestions) {
            return Err(ServiceError::invalid(
                "proof",
                "METHOD_ALREADY_VERIFIED",
                "security questions are already verified in this flow",
            ));
        }
        // The answers must be to exactly the questions asked, once each.
        let asked: HashSet<&str> = flow.questions_drawn.iter().map(String::as_str).collect();
        let given: HashSet<&str> = answers.iter().map(|(q, _)| q.as_str()).collect();
        if answers.len() != asked.len() || given != asked {
            return Err(ServiceError::invalid(
                "proof.security_answers",
                "WRONG_QUESTIONS",
                "answer exactly the questions asked in this flow, once each",
            ));
        }
        let reg = if flow.decoy {
            None
        } else {
            self.store.registration(&flow.user_key).await?
        };
        // Every answer is checked (same work whatever fails first, and for decoys).
        let mut all_ok = true;
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
            all_ok &= ok;
        }
        let mut next = flow.clone();
        if all_ok && !flow.decoy {
            next.verified.push(Method::SecurityQuestions);
            if !self.store.swap_flow(&h, &flow, &next).await? {
                return Err(ServiceError::FlowInvalid);
            }
            self.audit("reset.verify", &flow.login, "success", "security_questions")
                .await;
            return Ok(Verification {
                verified: true,
                methods_verified: next.verified.len() as u32,
                methods_required: next.methods_required,
                remaining: self.remaining(&next),
            });
        }
        // Wrong: count it against the account, close or redraw.
        let policy = self.policy.clone();
        let counters = self
            .store
            .update_counters(&flow.user_key, &move |c| {
                flow::record_failure(c, now(), &policy)
            })
            .await?;
        let outcome = flow::after_failure(&mut next, &self.policy);
        if outcome == flow::AfterFailure::Retry {
            let pool: Vec<String> = match &reg {
                Some(r) => r.questions.iter().map(|q| q.question_id.clone()).collect(),
                None => flow::decoy_registration(
                    &self.bank,
                    &self.decoy_key,
                    &flow.login,
                    self.questions.register_count,
                ),
            };
            next.questions_drawn = flow::draw_questions(&pool, self.questions.reset_count);
        }
        if !self.store.swap_flow(&h, &flow, &next).await? {
            return Err(ServiceError::FlowInvalid);
        }
        self.audit("reset.verify", &flow.login, "failure", "wrong_answer")
            .await;
        if flow::blocked(&counters, now()) {
            self.audit("sspr.blocked", &flow.login, "blocked", "too_many_failures")
                .await;
            return Err(ServiceError::Blocked);
        }
        if outcome == flow::AfterFailure::Closed {
            return Err(ServiceError::TooManyAttempts);
        }
        Ok(Verification {
            verified: false,
            methods_verified: next.verified.len() as u32,
            methods_required: next.methods_required,
            remaining: self.remaining(&next),
        })
    }

    fn user_of(flow: &ResetFlow) -> DirectoryUser {
        DirectoryUser {
            dn: flow.dn.clone(),
            id: flow.user_key.clone(),
            login: flow.login.clone(),
            display_name: String::new(),
            locked: false,
            disabled: false,
        }
    }

    /// Loads a live, verified flow under the user's lock. The lock is held by the caller
    /// for the directory write and the commit, so a flow is written at most once.
    async fn verified_flow(
        &self,
        flow_id: &str,
    ) -> Result<(TokenHash, ResetFlow, tokio::sync::OwnedMutexGuard<()>), ServiceError> {
        let (h, flow) = self.live_flow(flow_id).await?;
        let guard = self.user_lock(&flow.user_key).lock_owned().await;
        // Re-read under the lock: a racing call may have completed it.
        let (h, flow) = match self.store.flow(&h).await? {
            Some(f) if flow::is_live(&f, now()) => (h, f),
            _ => return Err(ServiceError::FlowInvalid),
        };
        self.check_not_blocked(&flow).await?;
        let verified = flow.verified.len() as u32;
        if flow.decoy || verified < flow.methods_required {
            return Err(ServiceError::NotVerified {
                verified,
                required: flow.methods_required,
            });
        }
        Ok((h, flow, guard))
    }

    async fn finish(&self, h: &TokenHash, flow: &ResetFlow) -> Result<(), ServiceError> {
        let mut done = flow.clone();
        done.state = FlowState::Completed;
        if !self.store.swap_flow(h, flow, &done).await? {
            // Cannot happen under the user lock; never report a write as not done.
            warn!("flow changed while completing");
        }
        self.store
            .update_counters(&flow.user_key, &flow::clear_failures)
            .await?;
        Ok(())
    }

    /// Writes the new password (and unlocks if asked), verifies it by a bind, and spends
    /// the flow. Any directory failure leaves the flow verified and retryable.
    #[instrument(skip_all)]
    pub async fn complete_reset(
        &self,
        flow_id: &str,
        new_password: &Secret,
        unlock: bool,
    ) -> Result<Completed, ServiceError> {
        let (h, flow, _guard) = self.verified_flow(flow_id).await?;
        check_new_password(new_password)?;
        let user = Self::user_of(&flow);
        let must_change = self.opts.require_change_after_reset;
        if let Err(e) = self
            .directory
            .set_password(&user, new_password, must_change)
            .await
        {
            let reason = match &e {
                DirectoryError::Refused(r) => r.code(),
                DirectoryError::Unavailable(_) => "directory_unavailable",
                _ => "directory_error",
            };
            self.audit("reset.complete", &flow.login, "failure", reason)
                .await;
            return Err(e.into());
        }
        let mut unlocked = false;
        if unlock {
            match self.directory.unlock(&user).await {
                Ok(()) => unlocked = true,
                Err(e) => warn!(error = %e, "password set but unlock failed"),
            }
        }
        let verified_by_bind = if self.opts.verify_after_write {
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
        self.finish(&h, &flow).await?;
        self.audit("reset.complete", &flow.login, "success", "")
            .await;
        Ok(Completed {
            verified_by_bind,
            unlocked,
        })
    }

    /// Unlocks the account without a password change.
    #[instrument(skip_all)]
    pub async fn unlock_account(&self, flow_id: &str) -> Result<(), ServiceError> {
        let (h, flow, _guard) = self.verified_flow(flow_id).await?;
        if let Err(e) = self.directory.unlock(&Self::user_of(&flow)).await {
            self.audit("unlock", &flow.login, "failure", "directory")
                .await;
            return Err(e.into());
        }
        self.finish(&h, &flow).await?;
        self.audit("unlock", &flow.login, "success", "").await;
        Ok(())
    }
}
