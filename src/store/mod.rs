//! Persistent state behind a narrow trait: registrations, registration sessions, reset flows
//! (with expiry), per-account failure counters and audit events.
//!
//! Every write method returns only after the data is durable (the sled implementation
//! flushes before it returns), so a caller may acknowledge to its client right after.
//! Tokens and flow ids are never stored: keys are their SHA-256 ([`TokenHash`]).

pub mod memory;
pub mod sled;

use crate::method::{Method, contact::ContactKind};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;

/// SHA-256 of a bearer token (flow id, registration token): the only form stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines; the hash is not the token anyway.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A registered security question with the argon2id PHC string of its normalised answer.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegisteredQuestion {
    pub question_id: String,
    pub answer_hash: String,
}

impl fmt::Debug for RegisteredQuestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredQuestion")
            .field("question_id", &self.question_id)
            .field("answer_hash", &"[REDACTED]")
            .finish()
    }
}

/// A confirmed contact (email address or phone number, normalised).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contact {
    pub kind: ContactKind,
    pub value: String,
    pub confirmed_at: u64,
    /// Not offered at reset before this time (cool-off after a change).
    #[serde(default)]
    pub usable_from: u64,
}

/// An enrolled authenticator app: the sealed TOTP secret and the last accepted step.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Authenticator {
    pub sealed_secret: String,
    pub last_step: u64,
    pub enrolled_at: u64,
    /// Not offered at reset before this time (cool-off after a change).
    #[serde(default)]
    pub usable_from: u64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("sealed_secret", &"[REDACTED]")
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// What a user has registered. Keyed by the directory's stable id of the user
/// (OpenLDAP `entryUUID`, AD `objectGUID`), so renames keep the registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registration {
    pub user_id: String,
    pub login: String,
    pub questions: Vec<RegisteredQuestion>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub authenticator: Option<Authenticator>,
    pub created_at: u64,
    pub updated_at: u64,
    /// When the user last re-confirmed the registered methods (0: at registration).
    #[serde(default)]
    pub reconfirmed_at: u64,
    /// Alternate email set by an administrator: where admin-reset instructions go. Not a
    /// reset method.
    #[serde(default)]
    pub alternate_email: Option<String>,
    /// The language the user chose when registering (one of
    /// [`crate::language::LANGUAGES`]): their emails, texts and calls speak it.
    #[serde(default)]
    pub language: Option<String>,
}

impl Registration {
    /// A registration with nothing registered yet, created at `t`.
    pub fn empty(user_id: &str, login: &str, t: u64) -> Self {
        Self {
            user_id: user_id.to_string(),
            login: login.to_string(),
            questions: vec![],
            contacts: vec![],
            authenticator: None,
            created_at: t,
            updated_at: t,
            reconfirmed_at: t,
            alternate_email: None,
            language: None,
        }
    }

    pub fn contact(&self, kind: ContactKind) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.kind == kind)
    }
}

/// A contact waiting for its confirmation code.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingContact {
    pub kind: ContactKind,
    pub value: String,
    /// HMAC of the confirmation code (never the code).
    pub code_mac: String,
    pub expires_at: u64,
    pub tries_left: u32,
}

impl fmt::Debug for PendingContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingContact")
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .field("tries_left", &self.tries_left)
            .finish_non_exhaustive()
    }
}

/// A registration session opened by BeginRegistration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationSession {
    pub user_id: String,
    pub login: String,
    pub dn: String,
    pub expires_at: u64,
    /// The user could already reset when this session began: methods added now are
    /// changes, subject to the cool-off period.
    #[serde(default)]
    pub established: bool,
    /// The user is an administrator under the SSPR policy (stricter method rules).
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub pending_contacts: Vec<PendingContact>,
    /// Sealed TOTP secret of an enrolment not yet confirmed by a first code.
    #[serde(default)]
    pub pending_authenticator: Option<String>,
    /// The language the user speaks in this session (one of
    /// [`crate::language::LANGUAGES`]), remembered with every change they make.
    #[serde(default)]
    pub language: Option<String>,
    /// Confirmation codes sent in this session.
    #[serde(default)]
    pub sends: u32,
}

/// The lifecycle state of a reset flow.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Proofs may be submitted; once enough are verified, the flow may complete.
    Open,
    /// The password was written (or the account unlocked): the flow is spent.
    Completed,
    /// Closed after too many wrong proofs, or superseded.
    Closed,
}

/// A method offered in a flow, with its masked hint (empty where none applies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Offer {
    pub method: Method,
    pub hint: String,
}

/// A code sent in a flow.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FlowCode {
    pub method: Method,
    /// HMAC of the code, bound to the flow and method.
    pub mac: String,
    pub expires_at: u64,
    pub tries_left: u32,
    /// Set when the provider failed to take the message after SendCode had answered; the
    /// next VerifyMethod for this method reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<Undelivered>,
}

/// Why a code did not reach its provider.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Undelivered {
    /// The provider could not be reached or answered with a temporary error.
    Unavailable,
    /// The provider refused the address or number.
    Refused,
    /// No provider is configured for this kind of contact.
    NotConfigured,
}

impl fmt::Debug for FlowCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowCode")
            .field("method", &self.method)
            .field("expires_at", &self.expires_at)
            .field("tries_left", &self.tries_left)
            .field("undelivered", &self.undelivered)
            .finish_non_exhaustive()
    }
}

/// A reset flow. A decoy flow (unknown, out-of-scope or unregistered user) looks the same
/// from outside and can never be verified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResetFlow {
    /// The registration key of the user, or a keyed hash of the login for a decoy.
    pub user_key: String,
    pub login: String,
    /// The user's display name (for the password name check).
    #[serde(default)]
    pub display_name: String,
    /// DN from the directory search; empty for a decoy.
    pub dn: String,
    pub decoy: bool,
    /// The user is an administrator under the SSPR policy (stricter method rules).
    #[serde(default)]
    pub admin: bool,
    pub created_at: u64,
    pub expires_at: u64,
    pub methods_required: u32,
    /// The question ids currently asked.
    pub questions_drawn: Vec<String>,
    /// Distinct methods verified in this flow (recorded server-side).
    pub verified: Vec<Method>,
    pub failed_attempts: u32,
    pub state: FlowState,
    /// Methods offered at StartReset, with hints.
    #[serde(default)]
    pub offered: Vec<Offer>,
    /// Outstanding codes (at most one per method; a resend replaces it).
    #[serde(default)]
    pub codes: Vec<FlowCode>,
    /// Codes sent in this flow.
    #[serde(default)]
    pub sends: u32,
    /// Set while CompleteReset writes the password (see [`WriteIntent`]).
    #[serde(default)]
    pub write: Option<WriteIntent>,
    /// The flow is completed and its password write happened: a repeated CompleteReset
    /// answers RESET_ALREADY_COMPLETED rather than FLOW_INVALID.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub password_changed: bool,
    /// An administrator's reset (`ResetUserPassword`), not a self-service flow: it carries
    /// the write intent of that reset, is never handed to anyone, and is audited as
    /// `admin.reset`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_admin: bool,
    /// A decoy's "registered" question ids, which wrong answers redraw from (empty for a
    /// real flow, and in decoys stored before 0.2: those redraw from the name's hash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoy_questions: Vec<String>,
    /// The directory had locked the account when the flow started: an unlock then really
    /// unlocks, and says so (never "unlocked" for an account that was not locked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

impl ResetFlow {
    /// The flow holds a write that was cut off (a crash, an unknown outcome) and must be
    /// decided before another write for its user. Such a flow is kept past its expiry
    /// until it is decided ([`Upkeep::sweep`]).
    pub fn write_undecided(&self) -> bool {
        self.state == FlowState::Open && self.write.is_some()
    }
}

/// A password write in progress: stored (flushed) before the directory is written, so that
/// after a crash the outcome can be decided from the directory instead of guessed — and
/// the whole intent carried out: the password and the flags that go with it are one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WriteIntent {
    /// The directory's password-change marker before the write (OpenLDAP `pwdChangedTime`,
    /// AD `pwdLastSet`); a different value afterwards means the password was changed.
    pub marker: Option<String>,
    /// The write requires a change at next sign-in: when a crash cut it off after the
    /// password was written, deciding it sets the flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change: bool,
    /// The write also unlocks the account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlock: bool,
}

/// Per-account verification failures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Unix times of recent failed verifications (pruned to the window).
    pub failures: Vec<u64>,
    /// SSPR is blocked for this account until this Unix time (0 = not blocked).
    pub blocked_until: u64,
    /// Unix times of recent codes sent (pruned to the window).
    #[serde(default)]
    pub sends: Vec<u64>,
    /// Proofs being checked right now: each took one attempt from the failure budget
    /// before it was evaluated (see `flow::take_attempt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingAttempt>,
    /// Sign-ins with the current password (see `lockout`): counted apart from the
    /// verification failures of reset flows.
    #[serde(default, skip_serializing_if = "SignInCounters::is_empty")]
    pub sign_in: SignInCounters,
}

/// Failed sign-ins of an account, the checks in progress, and a block (see `lockout`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignInCounters {
    /// Unix times of recent failed binds caused by ssprd.
    #[serde(default)]
    pub failures: Vec<u64>,
    #[serde(default)]
    pub pending: Vec<PendingAttempt>,
    /// No bind as this user before this Unix time (0 = not blocked).
    #[serde(default)]
    pub blocked_until: u64,
    /// The block lasts until the directory forgets the failures (it counts them until the
    /// next successful bind or password change), not only until `blocked_until`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_reset: bool,
    /// Failed sign-ins since the last right password, however old: what a directory that
    /// never forgets failures counts (kept for names the directory does not know, whose
    /// pause must last as a real account's would).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unforgotten: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SignInCounters {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// An attempt taken from an account's failure budget while its proof is checked.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingAttempt {
    /// Random, to find it again when it is settled.
    pub id: u64,
    /// When it was taken.
    pub at: u64,
    /// The daemon run that took it (random per start; 0 in attempts stored before 0.2): an
    /// attempt of a run that is gone was interrupted before any answer reached the client,
    /// and is released when the next run starts.
    #[serde(default)]
    pub owner: u64,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxItem {
    /// The message id every attempt carries (empty in items queued by 0.1 versions before
    /// it existed: those use their sequence number).
    #[serde(default)]
    pub id: String,
    pub to: crate::delivery::Channel,
    pub notice: crate::delivery::Notice,
    /// The user (login) it concerns, for the audit log.
    pub user: String,
    pub created_at: u64,
    pub attempts: u32,
    /// Not tried again before this Unix time.
    pub next_at: u64,
    #[serde(default)]
    pub last_error: String,
    /// The recipient's language (`None`: the configured default).
    #[serde(default)]
    pub language: Option<String>,
}

/// Store errors. `Unavailable` is an IO problem (disk full, flush failure) that the
/// caller reports as UNAVAILABLE; the other variants are refusals at open time.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database at {path} is in use by another process (is another ssprd running?)")]
    Locked { path: String },
    #[error(
        "the database at {path} has schema version {found}; this ssprd understands up to {supported} (downgrade refused)"
    )]
    NewerSchema {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("the database at {path} is damaged: {message}; restore it from a backup")]
    Corrupt { path: String, message: String },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An atomic update lost its compare-and-swap too many times in a row.
    #[error("the {0} changed under too many concurrent updates")]
    Contended(&'static str),
    #[error("stored record {key} cannot be decoded: {message}")]
    Decode { key: String, message: String },
}

/// Registrations: each user's verification methods.
#[async_trait::async_trait]
pub trait Registrations: Send + Sync {
    async fn registration(&self, user_id: &str) -> Result<Option<Registration>, StoreError>;
    /// Writes `new` only if the stored registration still equals `old` (`None`: absent).
    async fn swap_registration(
        &self,
        old: Option<&Registration>,
        new: &Registration,
    ) -> Result<bool, StoreError>;
    /// Every registration (for reports).
    async fn registrations(&self) -> Result<Vec<Registration>, StoreError>;
}

/// Registration sessions opened by BeginRegistration (expire; see [`Upkeep::sweep`]).
#[async_trait::async_trait]
pub trait Sessions: Send + Sync {
    async fn put_session(
        &self,
        token: &TokenHash,
        session: &RegistrationSession,
    ) -> Result<(), StoreError>;
    async fn session(&self, token: &TokenHash) -> Result<Option<RegistrationSession>, StoreError>;
    /// Replaces `old` with `new` only if the stored session still equals `old`.
    async fn swap_session(
        &self,
        token: &TokenHash,
        old: &RegistrationSession,
        new: &RegistrationSession,
    ) -> Result<bool, StoreError>;
}

/// Reset flows, and which user each belongs to (expire; see [`Upkeep::sweep`]).
#[async_trait::async_trait]
pub trait Flows: Send + Sync {
    async fn put_flow(&self, id: &TokenHash, flow: &ResetFlow) -> Result<(), StoreError>;
    async fn flow(&self, id: &TokenHash) -> Result<Option<ResetFlow>, StoreError>;
    /// The users of flows whose write is undecided ([`ResetFlow::write_undecided`]),
    /// expired or not, each once: what a daemon decides when it starts (a scan of the
    /// flows: they live minutes).
    async fn undecided_writes(&self) -> Result<Vec<String>, StoreError>;
    /// Ids (hashes) of the stored flows of one user.
    async fn flows_of(&self, user_key: &str) -> Result<Vec<TokenHash>, StoreError>;
    /// Replaces `old` with `new` only if the stored flow still equals `old`.
    async fn swap_flow(
        &self,
        id: &TokenHash,
        old: &ResetFlow,
        new: &ResetFlow,
    ) -> Result<bool, StoreError>;
}

/// Per-account counters: failures, blocks, sends, attempts in progress, sign-in budget.
#[async_trait::async_trait]
pub trait AccountCounters: Send + Sync {
    async fn counters(&self, user_key: &str) -> Result<Counters, StoreError>;
    /// Atomically applies `update` to the account's counters and returns the new value.
    async fn update_counters(
        &self,
        user_key: &str,
        update: &(dyn Fn(Counters) -> Counters + Send + Sync),
    ) -> Result<Counters, StoreError>;
    /// Every account's counters (for reports of blocked accounts).
    async fn all_counters(&self) -> Result<Vec<(String, Counters)>, StoreError>;
}

/// The hash-chained audit log.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event to the hash chain (appends are serialised).
    async fn append_audit(
        &self,
        event: &crate::audit::AuditEvent,
    ) -> Result<crate::audit::AuditRecord, StoreError>;
    /// The chain's anchor and its records in order.
    async fn audit_log(
        &self,
    ) -> Result<(crate::audit::Anchor, Vec<crate::audit::AuditRecord>), StoreError>;
    /// Deletes records older than `before` (Unix time) from the start of the chain, moving
    /// the anchor to the last one deleted. Returns how many.
    async fn prune_audit(&self, before: u64) -> Result<usize, StoreError>;
}

/// The administrator's SSPR policy, once set through the admin API.
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    async fn policy(&self) -> Result<Option<crate::policy::SsprPolicy>, StoreError>;
    /// Writes `new` only if the stored policy still equals `old` (`None`: none stored).
    async fn swap_policy(
        &self,
        old: Option<&crate::policy::SsprPolicy>,
        new: &crate::policy::SsprPolicy,
    ) -> Result<bool, StoreError>;
}

/// Notifications waiting for delivery.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Adds a notification to the outbox (durable when this returns); returns its number.
    async fn enqueue(&self, item: &OutboxItem) -> Result<u64, StoreError>;
    /// Every notification in the outbox, oldest first.
    async fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>, StoreError>;
    /// Replaces a notification (after a failed attempt).
    async fn put_outbox(&self, seq: u64, item: &OutboxItem) -> Result<(), StoreError>;
    /// Removes a notification (delivered, or given up).
    async fn remove_outbox(&self, seq: u64) -> Result<(), StoreError>;
}

/// Changes that take effect together, durably, with one flush: a flow started with its
/// audit record; a proof accepted (the flow, the attempt given back, an authenticator's
/// last step, the record); the end of a reset (the flow spent, the user's other flows
/// closed, the failure counters cleared, the notifications queued, the record).
#[derive(Debug, Default)]
pub struct Batch {
    /// Flows stored new, as [`Flows::put_flow`] stores them: (id, flow).
    pub created: Vec<(TokenHash, ResetFlow)>,
    /// Flows replaced, each only if it still equals the expected value: (id, expected, new).
    pub flows: Vec<(TokenHash, ResetFlow, ResetFlow)>,
    /// Registrations replaced, each only if it still equals the expected value (`None`: there
    /// is none): (expected, new), keyed by the new one's user id.
    pub registrations: Vec<(Option<Registration>, Registration)>,
    /// An account's counters, updated by the function (user key, update).
    pub counters: Option<(String, CounterUpdate)>,
    /// Notifications queued, in order.
    pub outbox: Vec<OutboxItem>,
    /// Events appended to the audit chain, in order.
    pub audit: Vec<crate::audit::AuditEvent>,
}

/// A change of an account's counters, as a batch carries it: applied to the counters as
/// stored when the batch commits.
#[derive(Clone)]
pub struct CounterUpdate(std::sync::Arc<dyn Fn(Counters) -> Counters + Send + Sync>);

impl CounterUpdate {
    pub fn new(f: impl Fn(Counters) -> Counters + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    pub fn apply(&self, c: Counters) -> Counters {
        (self.0)(c)
    }
}

impl fmt::Debug for CounterUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CounterUpdate(..)")
    }
}

/// Atomic batches.
#[async_trait::async_trait]
pub trait Batches: Send + Sync {
    /// Applies every change of `batch` or none. When a flow or a registration no longer
    /// equals its expected value nothing is written and the answer is `None` (read again,
    /// decide again); else the audit records appended, durable (where the backend promises
    /// durability) when this returns.
    async fn commit(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<crate::audit::AuditRecord>>, StoreError>;
}

/// Server keys (code MACs, decoy derivation).
#[async_trait::async_trait]
pub trait Keys: Send + Sync {
    /// A 256-bit server key named `name`, created from the OS CSPRNG on first use.
    async fn server_key(&self, name: &str) -> Result<[u8; 32], StoreError>;
}

/// The store's own upkeep.
#[async_trait::async_trait]
pub trait Upkeep: Send + Sync {
    /// Becomes `Some(reason)` when a write could not be made durable (a failed flush: disk
    /// full, IO error). The daemon then stops; data acknowledged before stays on disk.
    fn failed(&self) -> tokio::sync::watch::Receiver<Option<String>>;
    /// Deletes flows and sessions that expired at or before `now` — but a flow whose write
    /// is undecided, which stays until it is decided; returns how many.
    async fn sweep(&self, now: u64) -> Result<usize, StoreError>;
    /// Whether the store takes writes now: a small write (`now`, in the store's own
    /// metadata) made as durable as any other, or the reason it cannot be. The readiness
    /// check calls it.
    async fn probe(&self, now: u64) -> Result<(), StoreError>;
}

/// A whole store backend: every capability. Code that needs one capability can take that
/// trait alone; a backend implements each (sled and memory do), and `tests/store_contract.rs`
/// holds every backend to the same behaviour.
pub trait Store:
    Registrations
    + Sessions
    + Flows
    + AccountCounters
    + AuditLog
    + PolicyStore
    + Outbox
    + Keys
    + Upkeep
    + Batches
    + 'static
{
}

impl<T> Store for T where
    T: Registrations
        + Sessions
        + Flows
        + AccountCounters
        + AuditLog
        + PolicyStore
        + Outbox
        + Keys
        + Upkeep
        + Batches
        + 'static
{
}

/// The `[store]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub path: PathBuf,
    pub sweep_interval_secs: u64,
    /// The database's page cache in MiB (sled keeps up to this much of the store in
    /// memory; its own default, 1 GiB, lets a long-running daemon's memory grow with the
    /// store). 8-65536.
    pub cache_mb: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            path: "/var/lib/ssprd/db".into(),
            sweep_interval_secs: 60,
            cache_mb: 64,
        }
    }
}

/// The checked `[store]` section.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub sweep_interval: std::time::Duration,
    /// The page cache, in bytes.
    pub cache_bytes: u64,
}

impl RawStore {
    /// Checks the section into `p`: the database path, how often expired entries are
    /// swept, the page cache.
    pub fn validate(&self, p: &mut Problems) -> StoreConfig {
        if self.path.as_os_str().is_empty() {
            p.bad("store.path", "must not be empty");
        }
        if self.sweep_interval_secs == 0 {
            p.bad("store.sweep_interval_secs", "must be at least 1");
        }
        p.in_range("store.cache_mb", self.cache_mb, 8, 65_536);
        StoreConfig {
            path: self.path.clone(),
            sweep_interval: std::time::Duration::from_secs(self.sweep_interval_secs),
            cache_bytes: self.cache_mb * 1024 * 1024,
        }
    }
}
