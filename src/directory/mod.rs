//! The directory: find users, check a user's password by a bind, write a new password, unlock.
//!
//! [`Directory`] is the narrow trait the flows use; [`ldap::LdapDirectory`] implements it over
//! ldap3 + rustls for both flavours. Flavour specifics live in [`openldap`] (Password Modify,
//! ppolicy control) and [`active_directory`] (`unicodePwd`, `0000052D`, bind data codes).

pub mod active_directory;
pub mod ldap;
pub mod openldap;
pub mod pool;
pub mod rights;
pub mod settings;

use crate::secret::Secret;
pub use settings::{DirectoryConfig, Flavour, OpenldapPasswordWrite, RawDirectory};

/// A user found in the directory. The DN always comes from a search, never from input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// Stable id: OpenLDAP `entryUUID`, AD `objectGUID` (hex).
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub locked: bool,
    pub disabled: bool,
    /// AD `adminCount=1`: a protected (AdminSDHolder) account.
    pub admin_count: bool,
}

/// Users with the first value of each attribute asked for (see [`Directory::list_users`]).
pub type UserListing = Vec<(DirectoryUser, std::collections::HashMap<String, String>)>;

/// Why the directory refused a new password. Each maps to a fixed, safe message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyReason {
    TooShort,
    TooLong,
    InHistory,
    InsufficientQuality,
    TooYoung,
    /// Windows reports length, complexity and history with one code.
    DoesNotMeetPolicy,
    ChangeNotAllowed,
    Other,
}

impl PolicyReason {
    /// Machine-readable reason (google.rpc.ErrorInfo.reason).
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "PASSWORD_TOO_SHORT",
            Self::TooLong => "PASSWORD_TOO_LONG",
            Self::InHistory => "PASSWORD_IN_HISTORY",
            Self::InsufficientQuality => "PASSWORD_TOO_SIMPLE",
            Self::TooYoung => "PASSWORD_TOO_YOUNG",
            Self::DoesNotMeetPolicy => "PASSWORD_POLICY_NOT_MET",
            Self::ChangeNotAllowed => "PASSWORD_CHANGE_NOT_ALLOWED",
            Self::Other => "PASSWORD_REFUSED",
        }
    }

    /// Message for the user.
    pub fn message(self) -> &'static str {
        match self {
            Self::TooShort => "The new password is too short for the directory's policy.",
            Self::TooLong => "The new password is too long for the directory's policy.",
            Self::InHistory => {
                "The new password was used recently; choose one you have not used before."
            }
            Self::InsufficientQuality => {
                "The new password is too simple for the directory's policy (mix character kinds)."
            }
            Self::TooYoung => "The password was changed too recently to change it again.",
            Self::DoesNotMeetPolicy => {
                "The new password does not meet the directory's length, complexity or history rules."
            }
            Self::ChangeNotAllowed => "The directory does not allow this password to be changed.",
            Self::Other => "The directory refused the new password.",
        }
    }
}

/// Result of binding as a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    Ok,
    InvalidCredentials,
    /// The password is right but must be changed (AD `data 773`, ppolicy changeAfterReset).
    MustChange,
    Locked,
    Expired,
    Disabled,
}

/// The directory's own password rules that apply to a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryPasswordPolicy {
    pub min_length: u32,
    /// Previous passwords that cannot be reused.
    pub history: u32,
    /// AD complexity (three of four character kinds), or an OpenLDAP quality-check module.
    pub complexity: bool,
}

/// The directory's account lockout as it applies to one user, and how far the user is into
/// it: what the sign-in guard (`service::sign_in`) needs to stop before the directory locks
/// the account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lockout {
    /// Failed binds that lock the account: `Some(0)` never locks, `None` unknown (the
    /// policy could not be read).
    pub threshold: Option<u32>,
    /// How long the directory counts a failed bind, in seconds (0: until the next
    /// successful bind).
    pub window_secs: u64,
    /// Failed binds the directory counts against the user now, when readable (OpenLDAP
    /// `pwdFailureTime` values in the window; AD `badPwdCount` of the server asked).
    pub failures: Option<u32>,
}

/// Directory errors.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No server could be reached or an operation timed out.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The new password was refused by the directory's policy.
    #[error("password refused by the directory: {0:?}")]
    Refused(PolicyReason),
    /// A password or user bind would cross a connection without TLS.
    #[error("refusing to send a password over a connection without TLS")]
    InsecureTransport,
    /// The service account lacks a right it needs.
    #[error("the service account is not permitted to {0}")]
    NotPermitted(&'static str),
    /// The service account bind failed: configuration problem.
    #[error("the service account cannot bind: {0}")]
    ServiceBind(String),
    #[error("directory protocol error: {0}")]
    Protocol(String),
}

/// What the flows need from a directory.
#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Exactly one user whose login attribute equals `login` (RFC 4515-escaped), or `None`.
    async fn find_user(&self, login: &str) -> Result<Option<DirectoryUser>, DirectoryError>;
    /// Whether the directory answers the service account now (a Who am I? on a service
    /// connection, bound when it was opened): the readiness check.
    async fn check(&self) -> Result<(), DirectoryError>;
    /// Binds as the user; never succeeds for an empty password.
    async fn bind_as_user(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<BindOutcome, DirectoryError>;
    /// Writes a new password as the service account (over TLS only).
    async fn set_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
        must_change: bool,
    ) -> Result<(), DirectoryError>;
    /// The user's own change of a password they know (`current`, checked before by a bind
    /// that answered `state`: Ok, MustChange or Expired). The directory applies its rules
    /// for a user's own change (history, minimum age, quality) and clears "must change":
    /// OpenLDAP — Password Modify with the old password, bound as the user; a password
    /// expired without grace binds (the user cannot bind) is set by the service account
    /// and `pwdReset` cleared; AD — `unicodePwd` delete of the old value and add of the new
    /// in one modify, on the service account's connection (the Change Password right, which
    /// AD grants to everyone, with the old password as proof).
    async fn change_password(
        &self,
        user: &DirectoryUser,
        current: &Secret,
        new: &Secret,
        state: BindOutcome,
    ) -> Result<(), DirectoryError>;
    /// Every user under the search base (paged), with the first value of each of `attrs`
    /// the entry has.
    async fn list_users(&self, attrs: &[String]) -> Result<UserListing, DirectoryError>;
    /// Whether the user is a member of any of `groups` (DNs), directly or through nested
    /// groups (AD: the in-chain matching rule; OpenLDAP: a search per nesting level for
    /// groups whose `member`/`uniqueMember` holds the user or a group found so far).
    async fn member_of_any(
        &self,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError>;
    /// A value that changes whenever the user's password changes (OpenLDAP `pwdChangedTime`,
    /// AD `pwdLastSet`), read as the service account; `None` when the entry has none.
    async fn password_marker(&self, user: &DirectoryUser)
    -> Result<Option<String>, DirectoryError>;
    /// Clears the lockout (OpenLDAP `pwdAccountLockedTime`, AD `lockoutTime=0`).
    async fn unlock(&self, user: &DirectoryUser) -> Result<(), DirectoryError>;
    /// Requires the user to change the password at the next sign-in (OpenLDAP
    /// `pwdReset: TRUE`, AD `pwdLastSet=0`), as the service account. Repeating it is
    /// harmless: after a crash the flag is set again for a write whose outcome was decided.
    async fn require_change(&self, user: &DirectoryUser) -> Result<(), DirectoryError>;
    /// Makes the directory forget the user's failed binds, so that an administrator's
    /// ClearBlock lifts the sign-in guard's pause at once — also where the directory counts
    /// failures until the next successful bind (OpenLDAP: `pwdFailureTime` deleted with the
    /// Relax Rules control, the service account's `manage` right; AD: `lockoutTime=0`,
    /// which resets `badPwdCount`).
    async fn clear_failures(&self, user: &DirectoryUser) -> Result<(), DirectoryError>;
    /// The account lockout that applies to this user (OpenLDAP: `pwdLockout`,
    /// `pwdMaxFailure` and `pwdFailureCountInterval` of the user's ppolicy subentry or the
    /// configured default policy, and the user's `pwdFailureTime`; AD: `lockoutThreshold` and
    /// `lockOutObservationWindow` of the user's fine-grained policy if readable, else the
    /// domain's, and the user's `badPwdCount` / `badPasswordTime`), read as the service
    /// account.
    async fn lockout(&self, user: &DirectoryUser) -> Result<Lockout, DirectoryError>;
    /// The password rules the directory applies to this user (OpenLDAP: the user's ppolicy
    /// subentry or the configured default policy; AD: the user's resultant fine-grained
    /// policy if readable, else the domain's).
    async fn password_policy(
        &self,
        user: &DirectoryUser,
    ) -> Result<DirectoryPasswordPolicy, DirectoryError>;
}

/// A directory whose every call ends in time for the current request to answer (see
/// [`crate::deadline`]): a call still running then fails as `Unavailable`, and the request
/// answers with that reason instead of being cut off at its deadline. Outside a request
/// (the password write's own task, prefill) calls are bounded by the directory's own
/// timeout only.
///
/// Every call is also measured: `ssprd_directory_operation_duration_seconds{op}` and, for a
/// call that failed, `ssprd_directory_errors_total{op, error}` (labels from fixed names:
/// never a DN or a login).
pub struct WithinDeadline(pub std::sync::Arc<dyn Directory>);

async fn within<T>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, DirectoryError>>,
) -> Result<T, DirectoryError> {
    let started = std::time::Instant::now();
    let result = match crate::deadline::answer_by() {
        Some(by) => tokio::time::timeout_at(by, call).await.unwrap_or_else(|_| {
            Err(DirectoryError::Unavailable(
                "no answer before the request's deadline".into(),
            ))
        }),
        None => call.await,
    };
    metrics::histogram!("ssprd_directory_operation_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        metrics::counter!("ssprd_directory_errors_total", "op" => op, "error" => e.kind())
            .increment(1);
    }
    result
}

impl DirectoryError {
    /// The error's kind, a fixed name (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Refused(_) => "refused",
            Self::InsecureTransport => "insecure_transport",
            Self::NotPermitted(_) => "not_permitted",
            Self::ServiceBind(_) => "service_bind",
            Self::Protocol(_) => "protocol",
        }
    }
}

#[async_trait::async_trait]
impl Directory for WithinDeadline {
    async fn find_user(&self, login: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        within("find_user", self.0.find_user(login)).await
    }
    async fn check(&self) -> Result<(), DirectoryError> {
        within("check", self.0.check()).await
    }
    async fn bind_as_user(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<BindOutcome, DirectoryError> {
        within("bind_as_user", self.0.bind_as_user(dn, password)).await
    }
    async fn set_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
        must_change: bool,
    ) -> Result<(), DirectoryError> {
        within(
            "set_password",
            self.0.set_password(user, password, must_change),
        )
        .await
    }
    async fn change_password(
        &self,
        user: &DirectoryUser,
        current: &Secret,
        new: &Secret,
        state: BindOutcome,
    ) -> Result<(), DirectoryError> {
        within(
            "change_password",
            self.0.change_password(user, current, new, state),
        )
        .await
    }
    async fn list_users(&self, attrs: &[String]) -> Result<UserListing, DirectoryError> {
        within("list_users", self.0.list_users(attrs)).await
    }
    async fn member_of_any(
        &self,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError> {
        within("member_of_any", self.0.member_of_any(user, groups)).await
    }
    async fn password_marker(
        &self,
        user: &DirectoryUser,
    ) -> Result<Option<String>, DirectoryError> {
        within("password_marker", self.0.password_marker(user)).await
    }
    async fn unlock(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        within("unlock", self.0.unlock(user)).await
    }
    async fn require_change(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        within("require_change", self.0.require_change(user)).await
    }
    async fn clear_failures(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        within("clear_failures", self.0.clear_failures(user)).await
    }
    async fn lockout(&self, user: &DirectoryUser) -> Result<Lockout, DirectoryError> {
        within("lockout", self.0.lockout(user)).await
    }
    async fn password_policy(
        &self,
        user: &DirectoryUser,
    ) -> Result<DirectoryPasswordPolicy, DirectoryError> {
        within("password_policy", self.0.password_policy(user)).await
    }
}
