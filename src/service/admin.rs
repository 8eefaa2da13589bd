//! The administrator's use cases: the SSPR policy (versioned, compare-and-set), a user's
//! standing and registration, contact info set by an administrator, revoking methods, admin
//! resets and unlocks, clearing SSPR blocks, reports and the audit query. Every change is
//! audited with the calling client as actor.
//!
//! Unlike the self-service calls, these answer NOT_FOUND for an unknown user: the caller is
//! an authenticated administrator.

use super::reset::WriteOptions;
use super::{RegistrationStatus, Service, ServiceError, check_login, check_new_password};
use crate::delivery::text::phrase;
use crate::delivery::{Channel, Notice};
use crate::directory::DirectoryUser;
use crate::flow::registration::{self, Change};
use crate::method::Method;
use crate::method::contact::{self, ContactKind};
use crate::policy::SsprPolicy;
use crate::secret::Secret;
use crate::store::{FlowState, Registration, ResetFlow, TokenHash};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::instrument;

/// What an administrator sees of a user.
#[derive(Debug, Clone)]
pub struct UserView {
    pub login: String,
    pub display_name: String,
    pub in_scope: bool,
    pub admin: bool,
    pub registration: RegistrationStatus,
    /// Masked.
    pub alternate_email: String,
    pub blocked_until: u64,
    pub recent_failures: u32,
    pub directory_locked: bool,
    pub directory_disabled: bool,
    /// Sign-in blocked until (0: not blocked).
    pub sign_in_blocked_until: u64,
    pub sign_in_failures: u32,
    /// The language the user chose for messages (empty: none, the default is used).
    pub language: String,
}

/// Contact info an administrator may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminContact {
    Contact(ContactKind),
    AlternateEmail,
}

/// Options of an admin reset.
#[derive(Debug, Default)]
pub struct AdminResetRequest {
    /// `None`: generate one.
    pub password: Option<Secret>,
    pub must_change: bool,
    pub unlock: bool,
    pub notify_alternate_email: bool,
}

/// The outcome of an admin reset.
#[derive(Debug)]
pub struct AdminResetOutcome {
    /// The generated password (shown once), if ssprd generated it.
    pub generated: Option<Secret>,
    pub must_change: bool,
    pub unlocked: bool,
    pub instructions_queued: bool,
}

/// Counts for a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub registered_users: u32,
    pub complete_registrations: u32,
    pub coverage: Vec<(Method, u32)>,
    pub resets: u32,
    pub unlocks: u32,
    pub admin_resets: u32,
    pub blocks: u32,
    pub failed_verifications: u32,
    pub blocked_users: Vec<String>,
}

/// Registration coverage: users with a registration, those with enough methods to reset,
/// and the registered users who can use each method now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub registered_users: u32,
    pub complete: u32,
    pub per_method: std::collections::BTreeMap<Method, u32>,
}

/// An audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: u64,
    /// 0 = unbounded.
    pub until: u64,
    pub user: String,
    /// Exact kind, or a prefix ending in `*`.
    pub kind: String,
    pub limit: usize,
}

/// Which directory attributes prefill copies into which contact (empty: not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefillMap {
    pub email: String,
    pub mobile: String,
    pub office: String,
    pub alternate_email: String,
}

/// Directory attributes `ssprd admin prefill` copies into users' contacts (empty: skip).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrefill {
    pub email: String,
    pub mobile: String,
    pub office: String,
    /// e.g. AD `otherMailbox`; not set by default.
    pub alternate_email: String,
}

impl Default for RawPrefill {
    fn default() -> Self {
        Self {
            email: "mail".into(),
            mobile: "mobile".into(),
            office: "telephoneNumber".into(),
            alternate_email: String::new(),
        }
    }
}

impl RawPrefill {
    /// Checks the `[prefill]` section into `p`: each entry names an attribute or is empty.
    pub fn validate(&self, p: &mut crate::problems::Problems) -> PrefillMap {
        for (key, attr) in [
            ("prefill.email", &self.email),
            ("prefill.mobile", &self.mobile),
            ("prefill.office", &self.office),
            ("prefill.alternate_email", &self.alternate_email),
        ] {
            let ok = attr.is_empty()
                || (attr.starts_with(|c: char| c.is_ascii_alphabetic())
                    && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !ok {
                p.bad(key, format!("{attr:?} is not an attribute name"));
            }
        }
        PrefillMap {
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            office: self.office.clone(),
            alternate_email: self.alternate_email.clone(),
        }
    }
}

/// Progress of a prefill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefillProgress {
    pub processed: u32,
    pub total: u32,
    pub updated: u32,
    pub skipped: u32,
    pub done: bool,
}

/// The most records one audit query returns.
pub const MAX_AUDIT_RESULTS: usize = 10_000;

/// Length of generated passwords.
pub const GENERATED_PASSWORD_CHARS: usize = 20;

/// A strong random password: 20 characters with upper and lower case letters, digits and
/// symbols (so AD complexity and most ppolicy quality checks accept it). Ambiguous
/// characters (0/O, 1/l/I) are left out because people read it aloud or copy it by hand.
pub fn generate_password() -> Secret {
    use rand::RngExt;
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-=?@_";
    let mut rng = rand::rng();
    let classes = [UPPER, LOWER, DIGIT, SYMBOL];
    let mut chars: Vec<u8> = classes
        .iter()
        .map(|c| c[rng.random_range(0..c.len())])
        .collect();
    let all: Vec<u8> = classes.concat();
    while chars.len() < GENERATED_PASSWORD_CHARS {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    // Fisher-Yates, so the class characters are not always first.
    for i in (1..chars.len()).rev() {
        let j = rng.random_range(0..=i);
        chars.swap(i, j);
    }
    let pw = Secret::new(String::from_utf8(chars.clone()).expect("ASCII"));
    zeroize::Zeroize::zeroize(&mut chars);
    pw
}

impl Service {
    /// Replaces the SSPR policy when `expected_version` is still current; validates it
    /// against what the daemon can deliver; persists, then applies it.
    #[instrument(skip_all)]
    pub async fn update_policy(
        &self,
        mut new: SsprPolicy,
        expected_version: u64,
    ) -> Result<Arc<SsprPolicy>, ServiceError> {
        let problems = new.problems(&self.context);
        if !problems.is_empty() {
            return Err(ServiceError::InvalidPolicy(problems));
        }
        let current = self.sspr();
        if current.version != expected_version {
            return Err(ServiceError::PolicyConflict(current.version));
        }
        let stored = self.store.policy().await?;
        new.version = current.version + 1;
        new.updated_at = self.now();
        new.updated_by = super::ACTOR.try_with(Clone::clone).unwrap_or_default();
        // The stored document is what `current` was built from (or none yet).
        if !self.store.swap_policy(stored.as_ref(), &new).await? {
            return Err(ServiceError::PolicyConflict(current.version));
        }
        let new = Arc::new(new);
        {
            let mut live = self.sspr.write().expect("policy lock poisoned");
            if live.version != expected_version {
                // Lost a race inside this process after the store accepted: cannot happen
                // with compare-and-swap on the stored document, but never apply stale data.
                return Err(ServiceError::PolicyConflict(live.version));
            }
            *live = new.clone();
        }
        self.audit(
            "policy.update",
            "",
            "success",
            &format!("version {}", new.version),
        )
        .await;
        Ok(new)
    }

    /// The user named `login`, or NOT_FOUND.
    async fn admin_find(&self, login: &str) -> Result<DirectoryUser, ServiceError> {
        let login = check_login(login)?;
        self.directory
            .find_user(login)
            .await?
            .ok_or(ServiceError::UserNotFound)
    }

    async fn view(&self, user: &DirectoryUser) -> Result<UserView, ServiceError> {
        let sspr = self.sspr();
        let standing = self.standing(&sspr, user).await?;
        let reg = self.store.registration(&user.id).await?;
        let counters = self.store.counters(&user.id).await?;
        let t = self.now();
        let mp = self.methods_or_none(standing.admin);
        Ok(UserView {
            login: user.login.clone(),
            display_name: user.display_name.clone(),
            in_scope: standing.in_scope,
            admin: standing.admin,
            registration: self.status(&user.login, reg.as_ref(), &mp),
            alternate_email: reg
                .as_ref()
                .and_then(|r| r.alternate_email.as_deref())
                .map(|a| contact::mask(ContactKind::Email, a))
                .unwrap_or_default(),
            blocked_until: if counters.blocked_until > t {
                counters.blocked_until
            } else {
                0
            },
            recent_failures: counters
                .failures
                .iter()
                .filter(|f| **f + self.policy.failure_window_secs > t)
                .count() as u32,
            directory_locked: user.locked,
            directory_disabled: user.disabled,
            sign_in_blocked_until: if crate::lockout::blocked(&counters.sign_in, t) {
                counters.sign_in.blocked_until
            } else {
                0
            },
            sign_in_failures: counters.sign_in.failures.len() as u32,
            language: reg
                .as_ref()
                .and_then(|r| r.language.clone())
                .unwrap_or_default(),
        })
    }

    pub async fn get_user(&self, login: &str) -> Result<UserView, ServiceError> {
        let user = self.admin_find(login).await?;
        self.view(&user).await
    }

    /// [`Service::modify_registration`] for a directory user.
    /// Applies an administrator's `change` ([`registration::apply`]) to the user's
    /// registration.
    async fn admin_update(
        &self,
        user: &DirectoryUser,
        change: Change,
    ) -> Result<(Option<Registration>, Registration), ServiceError> {
        self.modify_registration(&user.id, &user.login, |r| registration::apply(r, &change))
            .await
    }

    /// Sets (`value` non-empty) or clears a user's contact. An administrator's contact is
    /// trusted: usable for reset at once. The user's existing channels are told.
    #[instrument(skip_all)]
    pub async fn set_contact(
        &self,
        login: &str,
        what: AdminContact,
        value: &str,
    ) -> Result<UserView, ServiceError> {
        let user = self.admin_find(login).await?;
        let value = value.trim();
        let normalised =
            if value.is_empty() {
                None
            } else {
                let kind = match what {
                    AdminContact::Contact(k) => k,
                    AdminContact::AlternateEmail => ContactKind::Email,
                };
                Some(contact::normalise(kind, value).map_err(|e| {
                    ServiceError::invalid("value", "CONTACT_INVALID", e.to_string())
                })?)
            };
        let change = match what {
            AdminContact::AlternateEmail => Change::AlternateEmail(normalised.clone()),
            AdminContact::Contact(kind) => Change::AdminContact {
                kind,
                value: normalised.clone(),
                at: self.now(),
            },
        };
        let (before, _) = self.admin_update(&user, change).await?;
        let (label, method) = match what {
            AdminContact::AlternateEmail => ("alternate_email", phrase::ALTERNATE_EMAIL),
            AdminContact::Contact(ContactKind::Email) => ("email", "email"),
            AdminContact::Contact(ContactKind::Mobile) => ("mobile", phrase::MOBILE_PHONE),
            AdminContact::Contact(ContactKind::Office) => ("office", phrase::OFFICE_PHONE),
        };
        let change = if normalised.is_some() {
            phrase::SET_BY_ADMIN
        } else {
            phrase::REMOVED_BY_ADMIN
        };
        self.audit(
            "admin.set_contact",
            &user.login,
            "success",
            &format!(
                "{label} {}",
                if normalised.is_some() {
                    "set"
                } else {
                    "cleared"
                }
            ),
        )
        .await;
        if let Some(before) = &before
            && self.sspr().notify_users
        {
            self.notify_contacts(
                before,
                Notice::MethodChanged {
                    method: method.into(),
                    change: change.into(),
                },
            )
            .await;
        }
        self.view(&user).await
    }

    /// Removes registered methods (all when `methods` is empty): the user registers again.
    #[instrument(skip_all)]
    pub async fn revoke_methods(
        &self,
        login: &str,
        methods: &[Method],
    ) -> Result<UserView, ServiceError> {
        let user = self.admin_find(login).await?;
        let all = methods.is_empty();
        let (before, _) = self
            .admin_update(&user, Change::Revoke(methods.to_vec()))
            .await?;
        let what = if all {
            "all".to_string()
        } else {
            methods
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        self.audit("admin.revoke_methods", &user.login, "success", &what)
            .await;
        if let Some(before) = &before
            && self.sspr().notify_users
        {
            self.notify_contacts(
                before,
                Notice::MethodChanged {
                    method: if all { "all methods".into() } else { what },
                    change: "revoked by an administrator".into(),
                },
            )
            .await;
        }
        self.view(&user).await
    }

    /// Sets a new password for a user (generated unless given), by default requiring a
    /// change at next sign-in; optionally unlocks and emails instructions (never the
    /// password) to the alternate email. The user's contacts are told; when the user is an
    /// administrator, every administrator is told too.
    ///
    /// The write follows the self-service protocol (`write_and_commit`): cancellation-safe,
    /// an unknown outcome decided from the user's password-change marker or answered
    /// OUTCOME_PENDING, and the user's open self-service flows are closed. An admin reset
    /// cut off earlier is decided before the next write for the user.
    #[instrument(skip_all)]
    pub async fn admin_reset(
        self: &Arc<Self>,
        login: &str,
        req: AdminResetRequest,
    ) -> Result<AdminResetOutcome, ServiceError> {
        let user = self.admin_find(login).await?;
        let (password, generated) = match req.password {
            Some(pw) => {
                check_new_password(&pw)?;
                if let Err(r) = self.password.check(&pw, &user.login, &user.display_name) {
                    return Err(ServiceError::PasswordRules(r));
                }
                (pw, false)
            }
            None => (generate_password(), true),
        };
        let standing = self.standing(&self.sspr(), &user).await?;
        // The same write protocol as a self-service reset, with a flow of its own that
        // nobody is given: its write intent is durable before the directory is touched, and
        // closing it closes the user's open self-service flows.
        let guard = self.lock_user_in_time(&user.id).await?;
        self.settle_writes(&user.id, None).await?;
        let now = self.now();
        let flow = ResetFlow {
            user_key: user.id.clone(),
            login: user.login.clone(),
            display_name: user.display_name.clone(),
            dn: user.dn.clone(),
            decoy: false,
            admin: standing.admin,
            created_at: now,
            expires_at: now + self.policy.session_ttl_secs,
            methods_required: 0,
            questions_drawn: vec![],
            verified: vec![],
            failed_attempts: 0,
            state: FlowState::Open,
            offered: vec![],
            codes: vec![],
            sends: 0,
            write: None,
            password_changed: false,
            by_admin: true,
            decoy_questions: vec![],
            locked: user.locked,
        };
        let h = TokenHash::of(&super::new_token());
        self.store.put_flow(&h, &flow).await?;
        let opts = WriteOptions {
            must_change: req.must_change,
            unlock: req.unlock,
            verify_by_bind: false,
        };
        let done = self.write_in_task(guard, h, flow, &password, opts).await?;
        let reg = self.store.registration(&user.id).await?;
        let mut instructions_queued = false;
        if req.notify_alternate_email
            && let Some(alt) = reg.as_ref().and_then(|r| r.alternate_email.clone())
        {
            self.notify(
                &user.login,
                Channel::Email(alt),
                Notice::AdminResetInstructions {
                    login: user.login.clone(),
                    must_change: req.must_change,
                },
                reg.as_ref().and_then(|r| r.language.as_deref()),
            )
            .await;
            instructions_queued = true;
        }
        if standing.admin {
            self.alert_admins(&user.login, phrase::RESET_BY_ADMIN).await;
        }
        Ok(AdminResetOutcome {
            generated: generated.then_some(password),
            must_change: req.must_change,
            unlocked: done.unlocked,
            instructions_queued,
        })
    }

    /// Clears the directory lockout.
    #[instrument(skip_all)]
    pub async fn admin_unlock(&self, login: &str) -> Result<(), ServiceError> {
        let user = self.admin_find(login).await?;
        if let Err(e) = self.directory.unlock(&user).await {
            self.audit("admin.unlock", &user.login, "failure", "directory")
                .await;
            return Err(e.into());
        }
        self.audit("admin.unlock", &user.login, "success", "").await;
        if self.sspr().notify_users
            && let Some(reg) = self.store.registration(&user.id).await?
        {
            self.notify_contacts(
                &reg,
                Notice::AccountRecovered {
                    what: phrase::UNLOCKED_BY_ADMIN.into(),
                },
            )
            .await;
        }
        Ok(())
    }

    /// Lifts an SSPR block and the sign-in pause: clears the failure, send and sign-in
    /// counters, and makes the directory forget the user's failed binds (where it counts
    /// them until the next successful bind, the pause would otherwise come back at once).
    /// When the directory cannot be told (a right the service account lacks), the block is
    /// lifted all the same and the record says so.
    #[instrument(skip_all)]
    pub async fn clear_block(&self, login: &str) -> Result<UserView, ServiceError> {
        let user = self.admin_find(login).await?;
        self.store
            .update_counters(&user.id, &|_| crate::store::Counters::default())
            .await?;
        let detail = match self.directory.clear_failures(&user).await {
            Ok(()) => "",
            Err(e) => {
                tracing::warn!(error = %e, "the directory keeps the user's failed binds");
                "directory_failures_kept"
            }
        };
        self.audit("admin.clear_block", &user.login, "success", detail)
            .await;
        self.view(&user).await
    }

    /// Copies contact info from directory attributes (per [`PrefillMap`]) into the
    /// registrations of every user in scope. Only empty contacts are filled unless
    /// `overwrite`; values that do not parse are skipped. Progress goes to `progress` every
    /// 25 users and at the end. Running prefill is the administrator's decision to trust the
    /// directory's values: they are usable for reset at once.
    #[instrument(skip_all)]
    pub async fn prefill(
        &self,
        overwrite: bool,
        dry_run: bool,
        progress: tokio::sync::mpsc::Sender<PrefillProgress>,
    ) -> Result<PrefillProgress, ServiceError> {
        let map = self.opts.prefill.clone();
        let targets: Vec<(String, Option<AdminContact>)> = [
            (&map.email, Some(AdminContact::Contact(ContactKind::Email))),
            (
                &map.mobile,
                Some(AdminContact::Contact(ContactKind::Mobile)),
            ),
            (
                &map.office,
                Some(AdminContact::Contact(ContactKind::Office)),
            ),
            (&map.alternate_email, Some(AdminContact::AlternateEmail)),
        ]
        .into_iter()
        .filter(|(a, _)| !a.is_empty())
        .map(|(a, t)| (a.clone(), t))
        .collect();
        let attrs: Vec<String> = targets.iter().map(|(a, _)| a.clone()).collect();
        let users = self.directory.list_users(&attrs).await?;
        let sspr = self.sspr();
        let mut p = PrefillProgress {
            total: users.len() as u32,
            ..PrefillProgress::default()
        };
        let _ = progress.send(p).await;
        for (user, values) in users {
            p.processed += 1;
            let standing = self.standing(&sspr, &user).await?;
            let mut found: Vec<(AdminContact, String)> = Vec::new();
            for (attr, target) in &targets {
                let (Some(target), Some(v)) = (target, values.get(attr)) else {
                    continue;
                };
                let kind = match target {
                    AdminContact::Contact(k) => *k,
                    AdminContact::AlternateEmail => ContactKind::Email,
                };
                if let Ok(n) = contact::normalise(kind, v) {
                    found.push((*target, n));
                }
            }
            if !standing.in_scope || user.disabled || found.is_empty() {
                p.skipped += 1;
            } else {
                let current = self.store.registration(&user.id).await?;
                let t = self.now();
                let (mut contacts, mut alternate_email) = (Vec::new(), None);
                for (target, value) in found {
                    match target {
                        AdminContact::AlternateEmail => alternate_email = Some(value),
                        AdminContact::Contact(kind) => contacts.push((kind, value)),
                    }
                }
                let change = Change::Prefill {
                    contacts,
                    alternate_email,
                    overwrite,
                    at: t,
                };
                let current =
                    current.unwrap_or_else(|| Registration::empty(&user.id, &user.login, t));
                if registration::alters(&current, &change) {
                    if !dry_run {
                        self.admin_update(&user, change).await?;
                    }
                    p.updated += 1;
                } else {
                    p.skipped += 1;
                }
            }
            if p.processed.is_multiple_of(25) {
                let _ = progress.send(p).await;
            }
        }
        p.done = true;
        self.audit(
            "admin.prefill",
            "",
            "success",
            &format!(
                "{} of {} users updated{}",
                p.updated,
                p.total,
                if dry_run { " (dry run)" } else { "" }
            ),
        )
        .await;
        let _ = progress.send(p).await;
        Ok(p)
    }

    /// Registration coverage now, and event counts from the audit log in `[since, until]`
    /// (0 = unbounded). Coverage counts methods usable under the ordinary users' policy.
    pub async fn report(&self, since: u64, until: u64) -> Result<Report, ServiceError> {
        let mp = self.methods_or_none(false);
        let regs = self.store.registrations().await?;
        let coverage = self.coverage(&regs);
        let mut out = Report {
            registered_users: coverage.registered_users,
            complete_registrations: coverage.complete,
            ..Report::default()
        };
        out.coverage = mp
            .enabled
            .iter()
            .map(|m| (*m, coverage.per_method.get(m).copied().unwrap_or(0)))
            .collect();
        let (_, records) = self.store.audit_log().await?;
        for rec in records {
            let e = &rec.event;
            if e.at < since || (until > 0 && e.at > until) {
                continue;
            }
            let ok = e.outcome == "success";
            match e.kind.as_str() {
                "reset.complete" if ok => out.resets += 1,
                "unlock" | "admin.unlock" if ok => out.unlocks += 1,
                "admin.reset" if ok => out.admin_resets += 1,
                "sspr.blocked" => out.blocks += 1,
                "reset.verify" if !ok => out.failed_verifications += 1,
                _ => {}
            }
        }
        let t = self.now();
        let by_id: std::collections::HashMap<&str, &str> = regs
            .iter()
            .map(|r| (r.user_id.as_str(), r.login.as_str()))
            .collect();
        for (key, c) in self.store.all_counters().await? {
            // Decoy accounts (unknown names) have counters too; only users are listed.
            if c.blocked_until > t
                && let Some(login) = by_id.get(key.as_str())
            {
                out.blocked_users.push((*login).to_string());
            }
        }
        out.blocked_users.sort();
        Ok(out)
    }

    /// Registration coverage under the policy in force for ordinary users.
    pub(super) fn coverage(&self, regs: &[Registration]) -> Coverage {
        let mp = self.methods_or_none(false);
        let mut out = Coverage {
            registered_users: regs.len() as u32,
            ..Coverage::default()
        };
        for r in regs {
            let usable: Vec<Method> = self.usable(r, &mp).into_iter().map(|o| o.method).collect();
            if !usable.is_empty() && mp.unmet(&usable).is_none() {
                out.complete += 1;
            }
            for m in usable {
                *out.per_method.entry(m).or_default() += 1;
            }
        }
        out
    }

    /// Audit records matching `q`, oldest first, at most `q.limit` (and
    /// [`MAX_AUDIT_RESULTS`]).
    pub async fn query_audit(
        &self,
        q: &AuditQuery,
    ) -> Result<Vec<crate::audit::AuditRecord>, ServiceError> {
        let limit = if q.limit == 0 {
            MAX_AUDIT_RESULTS
        } else {
            q.limit.min(MAX_AUDIT_RESULTS)
        };
        let (_, records) = self.store.audit_log().await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                let e = &r.event;
                e.at >= q.since
                    && (q.until == 0 || e.at <= q.until)
                    && (q.user.is_empty() || e.user == q.user)
                    && (q.kind.is_empty()
                        || match q.kind.strip_suffix('*') {
                            Some(prefix) => e.kind.starts_with(prefix),
                            None => e.kind == q.kind,
                        })
            })
            .take(limit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_strong_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let pw = generate_password();
            let s = pw.expose();
            assert_eq!(s.chars().count(), GENERATED_PASSWORD_CHARS);
            assert!(s.chars().any(|c| c.is_ascii_uppercase()));
            assert!(s.chars().any(|c| c.is_ascii_lowercase()));
            assert!(s.chars().any(|c| c.is_ascii_digit()));
            assert!(s.chars().any(|c| !c.is_ascii_alphanumeric()));
            assert!(seen.insert(s.to_string()));
        }
    }
}
