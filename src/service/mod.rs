//! The SSPR service: registration, reset and administration use cases. It validates input, loads state from
//! the [`Store`], asks the pure [`crate::flow`] functions and the policy what to do, talks to the
//! [`Directory`] and the delivery providers, and persists the outcome. Errors are
//! [`ServiceError`], mapped once to gRPC in `api`.
//!
//! - this file: shared types, validation helpers, the [`Service`] value;
//! - `registration`: BeginRegistration … RemoveMethod;
//! - `reset`: StartReset … UnlockAccount;
//! - [`admin`]: the administrator's use cases (policy, users, admin reset, reports);
//! - `notify`: notifications through the durable outbox;
//! - `sending`: reset codes delivered in the background, and what decoy flows imitate;
//! - `sign_in`: the guard every check of a user's current password goes through.

pub mod admin;
mod cas;
mod change;
pub mod health;
mod notify;
pub mod status;
pub use notify::{OutboxPolicy, RawOutbox};
mod registration;
mod reset;
mod sending;
mod sign_in;

#[cfg(test)]
mod executor_tests;

use crate::audit::AuditEvent;
use crate::delivery::{Channel, Deliver, DeliveryError};
use crate::directory::{Directory, DirectoryError, PolicyReason};
use crate::method::contact::{self, ContactKind};
use crate::method::{Method, questions, totp};
use crate::policy::{
    MethodLimits, MethodPolicy, PolicyContext, QuestionBank, QuestionPolicy, ResetPolicy, Scope,
    SsprPolicy,
};
use crate::secret::Secret;
use crate::store::{Registration, Store, StoreError, TokenHash};
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

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
    /// Too many wrong passwords: sign-in with the password is paused for the account
    /// (`None`: until the password is reset, or an administrator clears the block).
    #[error("{}", match .retry_after_secs {
        Some(s) => format!("password sign-in is paused for this account after failed attempts; try again in {} minute(s), or reset the password with your registered methods", s.div_ceil(60).max(1)),
        None => "password sign-in is paused for this account after failed attempts, until the password is reset (with your registered methods) or the helpdesk lifts the pause".to_string(),
    })]
    SignInPaused { retry_after_secs: Option<u64> },
    #[error("the reset flow is unknown, has expired or is finished")]
    FlowInvalid,
    #[error("{0}")]
    NotVerified(String),
    #[error("the {0} method is not enabled by the administrator")]
    MethodNotEnabled(&'static str),
    #[error("this method is not available in this reset flow")]
    MethodNotAvailable,
    #[error("this code could not be delivered now; try again later or use another method")]
    DeliveryUnavailable,
    #[error("the provider refused to deliver to this address or number")]
    DeliveryRefused,
    #[error("no provider is configured to deliver to this kind of contact")]
    DeliveryNotConfigured,
    #[error("too many codes were sent in this flow; start a new one later")]
    TooManyCodes,
    /// Codes for this account (or to this destination) are throttled: the next may be
    /// sent after `retry_after_secs`. Nothing is blocked: other methods still verify.
    #[error(
        "too many codes were sent for this account or to this address lately; the next can be sent in {} minute(s) — meanwhile another method can be used",
        .retry_after_secs.div_ceil(60).max(1)
    )]
    SendsThrottled { retry_after_secs: u64 },
    #[error("there is nothing to confirm: {0}")]
    NothingToConfirm(&'static str),
    #[error("the code is not correct")]
    CodeInvalid,
    #[error("the code has expired or was tried too often; ask for a new one")]
    CodeExpired,
    #[error("too many wrong answers: this reset flow is closed; start a new one")]
    TooManyAttempts,
    /// The rest of the account's failure budget is held by other proofs being checked
    /// right now: this one was not checked (try again in a moment).
    #[error("other proofs for this account are being checked right now; try again in a moment")]
    VerificationsInProgress,
    #[error(
        "self-service password reset is blocked for this account after too many failed verifications; it can be used again in {} minute(s), or the helpdesk can lift the block",
        .retry_after_secs.div_ceil(60).max(1)
    )]
    Blocked { retry_after_secs: u64 },
    #[error("{}", .0.message())]
    PasswordRefused(PolicyReason),
    #[error("{}", .0.message())]
    PasswordRules(crate::password::Refusal),
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
    #[error("self-service password reset is not enabled for this account; contact the helpdesk")]
    NotInScope,
    #[error(
        "the password was already changed in this reset flow (perhaps by an earlier attempt whose answer was lost); sign in with the password given then, or start a new reset"
    )]
    AlreadyCompleted,
    #[error(
        "the outcome of the password change is not known yet (the directory has not confirmed it); call again with the same flow id to learn it — a flow never writes twice"
    )]
    OutcomePending,
    #[error("no such user in the directory")]
    UserNotFound,
    #[error("the policy changed meanwhile (now version {0}); read it again and retry")]
    PolicyConflict(u64),
    #[error("invalid policy: {}", .0.iter().map(|(f, w)| format!("{f}: {w}")).collect::<Vec<_>>().join("; "))]
    InvalidPolicy(Vec<(String, String)>),
    #[error("this client sends too many requests; slow down")]
    ClientRateLimited,
    #[error("the record was changed by too many concurrent updates; try again")]
    Contended,
}

impl ServiceError {
    /// The machine-readable reason (the gRPC `ErrorInfo.reason`, and the key of the
    /// portal's translated text).
    pub fn reason(&self) -> &'static str {
        use ServiceError as E;
        match self {
            E::InvalidArgument { reason, .. } => reason,
            E::InvalidCredentials => "INVALID_CREDENTIALS",
            E::RegistrationTokenInvalid => "REGISTRATION_TOKEN_INVALID",
            E::SignInPaused { .. } => "SIGN_IN_PAUSED",
            E::FlowInvalid => "FLOW_INVALID",
            E::NotVerified(_) => "METHODS_NOT_VERIFIED",
            E::MethodNotEnabled(_) => "METHOD_NOT_ENABLED",
            E::MethodNotAvailable => "METHOD_NOT_AVAILABLE",
            E::DeliveryUnavailable => "DELIVERY_UNAVAILABLE",
            E::DeliveryRefused => "DELIVERY_REFUSED",
            E::DeliveryNotConfigured => "DELIVERY_NOT_CONFIGURED",
            E::TooManyCodes => "TOO_MANY_CODES",
            E::SendsThrottled { .. } => "SENDS_THROTTLED",
            E::NothingToConfirm(_) => "NOTHING_TO_CONFIRM",
            E::CodeInvalid => "CODE_INVALID",
            E::CodeExpired => "CODE_EXPIRED",
            E::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            E::VerificationsInProgress => "VERIFICATIONS_IN_PROGRESS",
            E::Blocked { .. } => "SSPR_BLOCKED",
            E::PasswordRefused(r) => r.code(),
            E::PasswordRules(r) => r.reason(),
            E::DirectoryUnavailable => "DIRECTORY_UNAVAILABLE",
            E::OutcomePending => "OUTCOME_PENDING",
            E::DirectoryFailed => "DIRECTORY_ERROR",
            E::StoreUnavailable => "STORE_UNAVAILABLE",
            E::NotInScope => "NOT_IN_SCOPE",
            E::UserNotFound => "USER_NOT_FOUND",
            E::AlreadyCompleted => "RESET_ALREADY_COMPLETED",
            E::PolicyConflict(_) => "POLICY_VERSION_CONFLICT",
            E::InvalidPolicy(_) => "POLICY_INVALID",
            E::ClientRateLimited => "CLIENT_RATE_LIMITED",
            E::Contended => "CONCURRENT_UPDATE",
        }
    }

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
        if let StoreError::Contended(_) = e {
            warn!(error = %e, "store update contended");
            return Self::Contended;
        }
        tracing::error!(error = %e, "store error");
        Self::StoreUnavailable
    }
}

impl From<DeliveryError> for ServiceError {
    fn from(e: DeliveryError) -> Self {
        warn!(error = %e, "delivery failed");
        match e {
            DeliveryError::Unavailable(_) => Self::DeliveryUnavailable,
            DeliveryError::Refused(_) => Self::DeliveryRefused,
            DeliveryError::NotConfigured(_) => Self::DeliveryNotConfigured,
        }
    }
}

impl From<crate::flow::reset::Refusal> for ServiceError {
    fn from(r: crate::flow::reset::Refusal) -> Self {
        use crate::flow::reset::Refusal as R;
        match r {
            R::FlowInvalid => Self::FlowInvalid,
            R::MethodNotAvailable => Self::MethodNotAvailable,
            R::AlreadyVerified => Self::invalid(
                "proof",
                "METHOD_ALREADY_VERIFIED",
                "this method is already verified in this flow",
            ),
            R::WrongQuestions => Self::invalid(
                "proof.security_answers",
                "WRONG_QUESTIONS",
                "answer exactly the questions asked in this flow, once each",
            ),
            R::NotACodeToSend => Self::invalid(
                "method",
                "NOT_A_CODE_METHOD",
                "codes are sent for email and phone methods only",
            ),
            R::NotACodeToVerify => Self::invalid(
                "proof.code.method",
                "NOT_A_CODE_METHOD",
                "codes are verified for email and phone methods only",
            ),
            R::TooManyCodes => Self::TooManyCodes,
            R::NotVerified(why) => Self::NotVerified(why),
        }
    }
}

impl From<crate::flow::registration::Refusal> for ServiceError {
    fn from(r: crate::flow::registration::Refusal) -> Self {
        use crate::flow::registration::Refusal as R;
        use crate::method::questions::AnswerError;
        match r {
            R::WrongQuestionCount(want, given) => Self::invalid(
                "answers",
                "WRONG_QUESTION_COUNT",
                format!("register exactly {want} questions ({given} given)"),
            ),
            R::UnknownQuestion(qid) => Self::invalid(
                "answers.question_id",
                "UNKNOWN_QUESTION",
                format!("{qid:?} is not a question of the bank (see ListSecurityQuestions)"),
            ),
            R::DuplicateQuestion(qid) => Self::invalid(
                "answers.question_id",
                "DUPLICATE_QUESTION",
                format!("question {qid:?} is answered twice"),
            ),
            R::BadAnswer(qid, e) => Self::invalid(
                "answers.answer",
                match e {
                    AnswerError::TooShort => "ANSWER_TOO_SHORT",
                    AnswerError::TooLong => "ANSWER_TOO_LONG",
                },
                format!("answer to {qid:?}: {e}"),
            ),
            R::DuplicateAnswer => Self::invalid(
                "answers.answer",
                "DUPLICATE_ANSWER",
                "two questions have the same answer; each answer must be different",
            ),
            R::NothingToConfirm(why) => Self::NothingToConfirm(why),
            R::TooManyCodes => Self::TooManyCodes,
        }
    }
}

impl From<crate::store::Undelivered> for ServiceError {
    fn from(e: crate::store::Undelivered) -> Self {
        use crate::store::Undelivered as U;
        match e {
            U::Unavailable => Self::DeliveryUnavailable,
            U::Refused => Self::DeliveryRefused,
            U::NotConfigured => Self::DeliveryNotConfigured,
        }
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

tokio::task_local! {
    /// The client of the request being served (see `api::actor`), for audit records.
    static ACTOR: String;
}

/// The client of the request being served ("" outside a request).
pub fn current_actor() -> String {
    ACTOR.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `f` with `actor` as the client its audit records name.
pub async fn as_actor<F: std::future::Future>(actor: String, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where the service reads the time (Unix seconds). The daemon uses [`system_clock`];
/// tests may step it to check lifetimes and TOTP windows without waiting.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The daemon's clock for lifetimes, counters and blocks: the wall time at start plus the
/// monotonic time since, so a step of the system clock (NTP, an admin) while the daemon runs
/// neither extends a flow or a code nor resets a counter. (Authenticator codes follow the
/// real wall clock: see [`Backends::wall_clock`].)
pub fn system_clock() -> Clock {
    anchored_clock(now, {
        let start = std::time::Instant::now();
        move || start.elapsed()
    })
}

/// `wall()` read once, then advanced by `elapsed()` (a monotonic source).
pub fn anchored_clock(
    wall: impl Fn() -> u64,
    elapsed: impl Fn() -> std::time::Duration + Send + Sync + 'static,
) -> Clock {
    let start = wall();
    Arc::new(move || start + elapsed().as_secs())
}

/// The real wall clock (for TOTP, whose codes follow the clocks of users' phones).
pub fn wall_clock() -> Clock {
    Arc::new(now)
}

/// A 128-bit bearer token from the OS CSPRNG, base64url without padding.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Accepts only well-formed tokens (22 base64url characters) before hashing them for a lookup.
pub fn token_hash(token: &str, field: &'static str) -> Result<TokenHash, ServiceError> {
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

pub fn check_login(login: &str) -> Result<&str, ServiceError> {
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

pub fn check_new_password(pw: &Secret) -> Result<(), ServiceError> {
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
    /// The policy requires registration and this user has not completed it.
    pub registration_required: bool,
    /// The user should re-confirm the registered methods now.
    pub reconfirm_due: bool,
    /// Methods this user may register.
    pub enabled_methods: Vec<Method>,
    /// When the user last confirmed the registered methods (0: never registered).
    pub reconfirmed_at: u64,
    pub methods: Vec<Method>,
    pub question_ids: Vec<String>,
    /// Confirmed contacts: kind and masked value.
    pub contacts: Vec<(ContactKind, String)>,
    pub methods_required: u32,
    pub updated_at: u64,
}

pub use crate::flow::reset::{Challenge, Verification};
pub use change::Changed;

/// An enrolment to show to the user once.
pub struct AuthenticatorEnrolment {
    pub uri: Secret,
    pub qr_png: Vec<u8>,
    pub qr_text: String,
}

/// Returned by StartReset.
#[derive(Debug)]
pub struct StartedReset {
    pub flow_id: String,
    pub expires_at: u64,
    pub methods_required: u32,
    pub challenges: Vec<Challenge>,
    /// Wrong proofs left ([`crate::flow::attempts_left`]).
    pub attempts_left: u32,
}

/// The effective password policy of a flow's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePasswordPolicy {
    pub min_length: u32,
    pub max_length: u32,
    pub history: u32,
    pub complexity_required: bool,
    pub banned_terms_checked: bool,
    pub names_refused: bool,
    pub min_strength: u32,
    pub breached_checked: bool,
    pub common_checked: bool,
}

/// Returned by SendCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSent {
    /// Unix time when the code expires.
    pub expires_at: u64,
    /// The provider had not yet taken the message when SendCode answered; a later failure
    /// is reported by VerifyMethod.
    pub pending: bool,
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
    /// Domain shown in decoy email hints (that of the sender address).
    pub decoy_email_domain: String,
    /// Authenticator issuer name.
    pub issuer: String,
    /// Directory attributes prefill copies into contacts.
    pub prefill: admin::PrefillMap,
    /// StartReset and SendCode answer no sooner than this after the request arrived (zero:
    /// as soon as possible), hiding the work that differs between real and decoy flows.
    pub uniform_response: std::time::Duration,
    /// How the endpoints are exposed (for the setup status).
    pub exposure: status::Exposure,
    /// A notification waiting longer than this makes the daemon not ready.
    pub outbox_stuck_after_secs: u64,
}

/// The IO the service uses.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub directory: Arc<dyn Directory>,
    pub deliver: Arc<dyn Deliver>,
    pub hasher: questions::AnswerHasher,
    /// Present when authenticator apps are enabled.
    pub sealer: Option<totp::Sealer>,
    /// Lifetimes, counters and blocks (step-immune in the daemon).
    pub clock: Clock,
    /// Authenticator codes (the real wall clock in the daemon).
    pub wall_clock: Clock,
    /// Copies audit records to syslog or journald.
    pub audit_forward: Option<crate::audit::Forwarder>,
}

/// The policy the service applies.
pub struct Policies {
    pub reset: ResetPolicy,
    pub bank: QuestionBank,
    /// Code, cool-off and notification settings; the enabled methods and the number
    /// required come from the SSPR policy per user.
    pub limits: MethodLimits,
    /// The configured SSPR policy (a stored one, set through the admin API, wins).
    pub sspr: SsprPolicy,
    pub context: PolicyContext,
    pub password: Arc<crate::password::PasswordRules>,
    /// The sign-in guard's settings.
    pub sign_in: crate::lockout::SignInPolicy,
}

/// Where a user stands under the current SSPR policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub in_scope: bool,
    pub admin: bool,
}

pub struct Service {
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
    deliver: Arc<dyn Deliver>,
    hasher: questions::AnswerHasher,
    sealer: Option<totp::Sealer>,
    clock: Clock,
    wall_clock: Clock,
    audit_forward: Option<crate::audit::Forwarder>,
    policy: ResetPolicy,
    bank: QuestionBank,
    /// Code, cool-off and notification settings (see [`Policies::methods`]).
    limits: MethodLimits,
    sspr: std::sync::RwLock<Arc<SsprPolicy>>,
    context: PolicyContext,
    password: Arc<crate::password::PasswordRules>,
    sign_in: crate::lockout::SignInPolicy,
    opts: ServiceOptions,
    decoy_key: [u8; 32],
    code_key: [u8; 32],
    /// Wakes the outbox worker when a notification is queued.
    outbox_wake: tokio::sync::Notify,
    /// This daemon run (random per start): the owner of the attempts it takes from
    /// accounts' budgets ([`crate::store::PendingAttempt::owner`]).
    run: u64,
    /// Reset codes being delivered in the background.
    deliveries: sending::Deliveries,
    /// The shapes decoy flows wear: a sample of the real registrations
    /// ([`crate::flow::decoy`]), taken at start and by [`Service::refresh_likenesses`].
    likenesses: std::sync::RwLock<Arc<crate::flow::decoy::Likenesses>>,
    /// Writes are serialised per user (one directory write at a time per account).
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Service {
    pub async fn new(
        io: Backends,
        policies: Policies,
        opts: ServiceOptions,
    ) -> Result<Self, StoreError> {
        let decoy_key = io.store.server_key("decoy").await?;
        let code_key = io.store.server_key("codes").await?;
        let sspr = match io.store.policy().await? {
            Some(stored) => {
                info!(
                    version = stored.version,
                    "the SSPR policy set through the admin API applies ([policy] in the configuration seeds it only)"
                );
                stored
            }
            None => policies.sspr,
        };
        Ok(Self {
            store: io.store,
            directory: io.directory,
            deliver: io.deliver,
            hasher: io.hasher,
            sealer: io.sealer,
            clock: io.clock,
            wall_clock: io.wall_clock,
            audit_forward: io.audit_forward,
            policy: policies.reset,
            bank: policies.bank,
            limits: policies.limits,
            sspr: std::sync::RwLock::new(Arc::new(sspr)),
            context: policies.context,
            password: policies.password,
            sign_in: policies.sign_in,
            opts,
            decoy_key,
            code_key,
            outbox_wake: tokio::sync::Notify::new(),
            run: rand::random::<u64>().max(1),
            deliveries: sending::Deliveries::default(),
            likenesses: std::sync::RwLock::default(),
            user_locks: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a new sample of the real registrations for decoys to wear (at start, then
    /// every few minutes: registrations change slowly, and a sample that lags them by a
    /// few minutes tells nothing). How many it holds.
    pub async fn refresh_likenesses(&self) -> Result<usize, ServiceError> {
        let regs = self.store.registrations().await?;
        let sample = crate::flow::decoy::Likenesses::sample(
            &self.decoy_key,
            &regs,
            &self.methods_or_none(false),
            self.now(),
            self.question_policy().reset_count,
        );
        let n = sample.len();
        *self.likenesses.write().expect("likenesses lock") = Arc::new(sample);
        Ok(n)
    }

    /// The sample decoys wear now.
    fn likenesses(&self) -> Arc<crate::flow::decoy::Likenesses> {
        self.likenesses.read().expect("likenesses lock").clone()
    }

    /// The service's current time (lifetimes, counters).
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The wall time authenticator codes are checked against.
    fn wall_now(&self) -> u64 {
        (self.wall_clock)()
    }

    /// The SSPR policy in force now.
    pub fn sspr(&self) -> Arc<SsprPolicy> {
        self.sspr.read().expect("policy lock poisoned").clone()
    }

    /// The method policy for an ordinary user or an administrator (`None`: administrators
    /// cannot use SSPR with the methods enabled now).
    fn methods_of(&self, admin: bool) -> Option<MethodPolicy> {
        self.sspr().methods_for(admin)
    }

    /// [`Self::methods_of`], or a policy offering nothing when none applies.
    fn methods_or_none(&self, admin: bool) -> MethodPolicy {
        self.methods_of(admin).unwrap_or(MethodPolicy {
            enabled: Vec::new(),
            required: 2,
            questions_not_only: true,
            sms_alone_not_allowed: true,
        })
    }

    /// The answer for an account blocked from self-service, with how long the block lasts.
    fn blocked(&self, c: &crate::store::Counters) -> ServiceError {
        ServiceError::Blocked {
            retry_after_secs: c.blocked_until.saturating_sub(self.now()).max(1),
        }
    }

    /// The stand-in of a name the directory does not know (or of a disabled account): what
    /// decoy flows and the sign-in guard count under, with a DN that names nothing, so the
    /// same directory and store work is done as for a real user.
    fn stand_in(&self, login: &str) -> crate::directory::DirectoryUser {
        let id = crate::flow::decoy_user_key(&self.decoy_key, login);
        crate::directory::DirectoryUser {
            dn: format!("cn=ssprd-decoy-{id}"),
            id,
            login: login.to_string(),
            display_name: String::new(),
            locked: false,
            disabled: false,
            admin_count: false,
        }
    }

    /// Whether the user is in scope and an administrator, asked of the directory.
    async fn standing(
        &self,
        sspr: &SsprPolicy,
        user: &crate::directory::DirectoryUser,
    ) -> Result<Standing, ServiceError> {
        let in_scope = match sspr.scope {
            Scope::None => false,
            Scope::All => true,
            Scope::Selected => {
                self.directory
                    .member_of_any(user, &sspr.scope_groups)
                    .await?
            }
        };
        let admin = (sspr.admin_count_is_admin && user.admin_count)
            || (!sspr.admin_groups.is_empty()
                && self
                    .directory
                    .member_of_any(user, &sspr.admin_groups)
                    .await?);
        Ok(Standing { in_scope, admin })
    }

    pub fn bank(&self) -> &QuestionBank {
        &self.bank
    }

    pub fn question_policy(&self) -> QuestionPolicy {
        self.sspr().question_policy()
    }

    /// Stops reset-code deliveries still running (at shutdown).
    pub async fn stop_deliveries(&self) {
        self.deliveries.stop().await;
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Answers no sooner than the uniform response time after `started`, so what differs
    /// between accounts — real and decoy flows, a bind as an existing user or none for an
    /// unknown name, blocked or failing checks — takes the same time from outside.
    async fn pad(&self, started: tokio::time::Instant) {
        if !self.opts.uniform_response.is_zero() {
            let until = started + self.opts.uniform_response;
            if tokio::time::Instant::now() > until {
                tracing::debug!("response took longer than the uniform response time");
            }
            tokio::time::sleep_until(until).await;
        }
    }

    /// Runs `call` and answers no sooner than the uniform response time ([`Self::pad`]).
    async fn uniformly<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let started = tokio::time::Instant::now();
        let out = call.await;
        self.pad(started).await;
        out
    }

    /// Takes one code send from the send windows of the counters at `key` (an account, or a
    /// destination of confirmation codes: [`flow::record_send`]); when they are full, the
    /// refusal is audited as `kind` for `login` and answered with the time to wait.
    async fn take_send(&self, key: &str, login: &str, kind: &str) -> Result<(), ServiceError> {
        let t = self.now();
        let windows = self.limits.codes.send_windows();
        // The verdict of the run of the update that was stored (an update may run again
        // when a racing one changed the counters first).
        let verdict = Mutex::new(Ok(()));
        self.store
            .update_counters(key, &|mut c| {
                *verdict.lock().expect("verdict lock") =
                    crate::flow::record_send(&mut c.sends, t, &windows);
                c
            })
            .await?;
        let verdict = verdict.into_inner().expect("verdict lock");
        if let Err(at) = verdict {
            self.audit(kind, login, "failure", "throttled").await;
            return Err(ServiceError::SendsThrottled {
                retry_after_secs: at.saturating_sub(t),
            });
        }
        Ok(())
    }

    /// Applies `change` to a user's registration (created if absent) with compare-and-swap
    /// ([`cas::Races`]). Returns (before, after).
    async fn modify_registration(
        &self,
        user_id: &str,
        login: &str,
        change: impl Fn(&mut Registration),
    ) -> Result<(Option<Registration>, Registration), ServiceError> {
        let mut races = cas::Races::new("registration");
        loop {
            let before = self.store.registration(user_id).await?;
            let t = self.now();
            let mut after = before
                .clone()
                .unwrap_or_else(|| Registration::empty(user_id, login, t));
            change(&mut after);
            after.updated_at = t;
            if self
                .store
                .swap_registration(before.as_ref(), &after)
                .await?
            {
                return Ok((before, after));
            }
            races.lost().await?;
        }
    }

    fn user_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.user_locks.lock().expect("lock poisoned");
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(key.to_string()).or_default().clone()
    }

    /// Stores an audit event (a store failure is logged: the change it records stands) and
    /// forwards the record.
    async fn audit(&self, kind: &str, user: &str, outcome: &str, reason: &str) {
        let ev = self.audit_event(kind, user, outcome, reason);
        match self.store.append_audit(&ev).await {
            Ok(rec) => self.forward_audit(&rec).await,
            Err(e) => tracing::error!(error = %e, "audit event not stored"),
        }
    }

    /// Forwards a stored audit record (syslog/journald), when configured.
    async fn forward_audit(&self, rec: &crate::audit::AuditRecord) {
        if let Some(f) = &self.audit_forward {
            f.send(rec).await;
        }
    }

    /// The audit event for `kind` now, logged; stored by the caller, alone
    /// ([`Self::audit`]) or in a batch with what it records.
    fn audit_event(&self, kind: &str, user: &str, outcome: &str, reason: &str) -> AuditEvent {
        let ev = AuditEvent {
            // Audit times are wall time (what a reader compares with other logs).
            at: self.wall_now(),
            kind: kind.into(),
            user: user.into(),
            outcome: outcome.into(),
            reason: reason.into(),
            actor: ACTOR.try_with(Clone::clone).unwrap_or_default(),
        };
        info!(kind, user, outcome, reason, actor = %ev.actor, "audit");
        metrics::counter!(
            "ssprd_events_total",
            "event" => crate::audit::label(kind),
            "outcome" => crate::audit::label(outcome),
            "reason" => crate::audit::label(reason)
        )
        .increment(1);
        ev
    }

    /// The methods a registration makes usable now under the current policy, with hints
    /// ([`crate::flow::offers`]).
    fn usable(&self, reg: &Registration, mp: &MethodPolicy) -> Vec<crate::store::Offer> {
        crate::flow::offers(reg, mp, self.now(), self.question_policy().reset_count)
    }

    fn status(
        &self,
        login: &str,
        reg: Option<&Registration>,
        mp: &MethodPolicy,
    ) -> RegistrationStatus {
        let usable: Vec<Method> = reg
            .map(|r| self.usable(r, mp).into_iter().map(|o| o.method).collect())
            .unwrap_or_default();
        let sspr = self.sspr();
        let complete = !usable.is_empty() && mp.unmet(&usable).is_none();
        let last_confirmed = reg.map_or(0, |r| r.reconfirmed_at.max(r.created_at));
        RegistrationStatus {
            login: login.into(),
            complete,
            registration_required: sspr.require_registration && !complete,
            reconfirm_due: complete
                && sspr.reconfirm_days > 0
                && self.now() >= last_confirmed + u64::from(sspr.reconfirm_days) * 86_400,
            enabled_methods: mp.enabled.clone(),
            question_ids: reg
                .map(|r| r.questions.iter().map(|q| q.question_id.clone()).collect())
                .unwrap_or_default(),
            contacts: reg
                .map(|r| {
                    r.contacts
                        .iter()
                        .map(|c| (c.kind, contact::mask(c.kind, &c.value)))
                        .collect()
                })
                .unwrap_or_default(),
            methods: usable,
            methods_required: mp.required,
            updated_at: reg.map_or(0, |r| r.updated_at),
            reconfirmed_at: last_confirmed,
        }
    }

    /// The delivery channel of a code method for a contact value.
    fn channel(method: Method, value: &str) -> Option<Channel> {
        match method {
            Method::Email => Some(Channel::Email(value.into())),
            Method::MobileSms => Some(Channel::Sms(value.into())),
            Method::MobileVoice | Method::OfficeVoice => Some(Channel::Voice(value.into())),
            Method::SecurityQuestions | Method::AuthenticatorCode => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security item 5: 128-bit tokens from the OS CSPRNG; 10^6 draws, no collision; only
    /// their SHA-256 is ever stored.
    #[test]
    fn tokens_are_128_bit_and_do_not_collide() {
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            let t = new_token();
            assert_eq!(t.len(), 22);
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&t)
                .unwrap();
            assert_eq!(raw.len(), 16);
            assert!(seen.insert(raw));
        }
        let h = TokenHash::of("abc");
        assert_eq!(h.0.len(), 32);
        assert!(!format!("{h:?}").contains("abc"));
    }

    /// Reliability item 11: a step of the system clock (±90 s, ±1 h) while the daemon runs
    /// changes neither lifetimes nor counters — they follow the monotonic clock.
    #[test]
    fn lifetimes_ignore_steps_of_the_system_clock() {
        use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
        let wall = Arc::new(AtomicI64::new(1_800_000_000));
        let mono = Arc::new(AtomicU64::new(0));
        let w = wall.clone();
        let m = mono.clone();
        let clock = anchored_clock(
            move || w.load(Ordering::SeqCst) as u64,
            move || std::time::Duration::from_secs(m.load(Ordering::SeqCst)),
        );
        let t0 = clock();
        for step in [-90i64, 90, -3600, 3600] {
            wall.fetch_add(step, Ordering::SeqCst);
            mono.fetch_add(10, Ordering::SeqCst);
            assert_eq!(clock(), t0 + mono.load(Ordering::SeqCst), "step {step}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        for bad in [
            "",
            "short",
            "x".repeat(23).as_str(),
            "AAAAAAAAAAAAAAAAAAAA+/",
        ] {
            assert!(token_hash(bad, "flow_id").is_err(), "{bad:?}");
        }
        assert!(token_hash(&new_token(), "flow_id").is_ok());
    }
}
