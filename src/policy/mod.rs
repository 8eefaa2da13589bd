//! The SSPR policy model: limits and lifetimes of flows, security-question counts, and the
//! question bank (predefined questions plus the administrator's custom ones).

pub mod settings;

use crate::method::{Factor, Method};
use serde::{Deserialize, Serialize};
pub use settings::{RawCodes, RawCustomQuestion, RawPolicy, RawQuestions};

/// Reset and registration limits (validated; see `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPolicy {
    pub session_ttl_secs: u64,
    pub registration_ttl_secs: u64,
    pub attempts_per_flow: u32,
    pub max_failed_verifications: u32,
    pub failure_window_secs: u64,
    pub block_secs: u64,
}

/// One-time code settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePolicy {
    pub length: usize,
    pub ttl_secs: u64,
    pub max_tries: u32,
    pub max_sends_per_flow: u32,
    pub max_sends_per_account: u32,
    pub account_window_secs: u64,
    /// Codes one account (or one destination of confirmation codes) may be sent in 24
    /// hours: a longer window over the one above, so a flood stays bounded over a day.
    pub max_sends_per_day: u32,
}

impl CodePolicy {
    /// The sliding windows every code sent for an account (or to a destination) counts in:
    /// `(at most, within seconds)`.
    pub fn send_windows(&self) -> [(u32, u64); 2] {
        [
            (self.max_sends_per_account, self.account_window_secs),
            (self.max_sends_per_day, 86_400),
        ]
    }
}

/// Which methods are enabled and what a reset needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodPolicy {
    /// Sorted, distinct.
    pub enabled: Vec<Method>,
    /// Distinct factors to prove (1 or 2).
    pub required: u32,
    pub questions_not_only: bool,
    pub sms_alone_not_allowed: bool,
}

/// What every method shares, whoever the user: one-time code settings and the cool-off of
/// a changed method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodLimits {
    pub codes: CodePolicy,
    /// Delay before a method changed by a registered user can be used for reset.
    pub cooloff_secs: u64,
}

impl MethodPolicy {
    pub fn is_enabled(&self, m: Method) -> bool {
        self.enabled.contains(&m)
    }

    /// Why `verified` is not enough to complete a reset, or `None` when it is.
    pub fn unmet(&self, verified: &[Method]) -> Option<String> {
        let factors: std::collections::BTreeSet<Factor> =
            verified.iter().map(|m| m.factor()).collect();
        if (factors.len() as u32) < self.required {
            return Some(format!(
                "verify {} distinct method(s) before completing ({} verified)",
                self.required,
                factors.len()
            ));
        }
        if self.questions_not_only && factors.iter().all(|f| *f == Factor::Knowledge) {
            return Some("security questions cannot be the only method: verify another one".into());
        }
        if self.sms_alone_not_allowed && verified.iter().all(|m| *m == Method::MobileSms) {
            return Some("an SMS code alone is not enough: verify another method".into());
        }
        None
    }
}

/// How many security questions a user registers and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionPolicy {
    pub register_count: usize,
    pub reset_count: usize,
}

/// Custom question bounds.
pub const MAX_CUSTOM_QUESTIONS: usize = 20;
pub const MIN_QUESTION_CHARS: usize = 3;
pub const MAX_QUESTION_CHARS: usize = 200;

/// One question of the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub custom: bool,
}

/// The predefined questions (ids are stable: registrations refer to them).
const PREDEFINED: &[(&str, &str)] = &[
    ("bank.birth_city", "In what city were you born?"),
    ("bank.first_pet", "What was the name of your first pet?"),
    (
        "bank.first_school",
        "What was the name of your first school?",
    ),
    (
        "bank.childhood_friend",
        "What is the first name of your childhood best friend?",
    ),
    (
        "bank.first_job_city",
        "In what city did you have your first job?",
    ),
    (
        "bank.first_car",
        "What was the make and model of your first car?",
    ),
    ("bank.parents_met", "In what city did your parents meet?"),
    (
        "bank.favourite_teacher",
        "What was the last name of your favourite teacher?",
    ),
    (
        "bank.childhood_street",
        "What was the name of the street you grew up on?",
    ),
    (
        "bank.first_concert",
        "What was the first concert you attended?",
    ),
    (
        "bank.oldest_cousin",
        "What is the first name of your oldest cousin?",
    ),
    (
        "bank.childhood_nickname",
        "What was your childhood nickname?",
    ),
];

/// The questions users may register: predefined and/or custom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionBank {
    questions: Vec<Question>,
}

impl QuestionBank {
    pub fn empty() -> Self {
        Self {
            questions: Vec::new(),
        }
    }

    /// Builds the bank; errors are `(key, reason)` pairs relative to `security_questions`.
    pub fn build(
        use_predefined: bool,
        custom: &[RawCustomQuestion],
    ) -> Result<Self, Vec<(String, String)>> {
        let mut errs = Vec::new();
        let mut questions: Vec<Question> = Vec::new();
        if use_predefined {
            questions.extend(PREDEFINED.iter().map(|(id, text)| Question {
                id: (*id).into(),
                text: (*text).into(),
                custom: false,
            }));
        }
        if custom.len() > MAX_CUSTOM_QUESTIONS {
            errs.push((
                "custom".into(),
                format!(
                    "{} custom questions; at most {MAX_CUSTOM_QUESTIONS}",
                    custom.len()
                ),
            ));
        }
        for (i, q) in custom.iter().enumerate() {
            let key = format!("custom[{i}]");
            let id_ok = !q.id.is_empty()
                && q.id.len() <= 64
                && q.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !id_ok {
                errs.push((
                    format!("{key}.id"),
                    format!("{:?} must be 1-64 characters of [A-Za-z0-9_-]", q.id),
                ));
            }
            let n = q.text.trim().chars().count();
            if !(MIN_QUESTION_CHARS..=MAX_QUESTION_CHARS).contains(&n) {
                errs.push((
                    format!("{key}.text"),
                    format!("{n} characters; must be {MIN_QUESTION_CHARS}-{MAX_QUESTION_CHARS}"),
                ));
            }
            let id = format!("custom.{}", q.id);
            if questions.iter().any(|x| x.id == id) {
                errs.push((format!("{key}.id"), format!("{:?} is used twice", q.id)));
            }
            questions.push(Question {
                id,
                text: q.text.trim().to_string(),
                custom: true,
            });
        }
        if errs.is_empty() {
            Ok(Self { questions })
        } else {
            Err(errs)
        }
    }

    pub fn len(&self) -> usize {
        self.questions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    pub fn all(&self) -> &[Question] {
        &self.questions
    }

    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

/// Who may use self-service reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Nobody (every StartReset gets a decoy flow).
    None,
    /// Members (nested membership counts) of one of `SsprPolicy::scope_groups`.
    Selected,
    All,
}

/// Migration state of the unified authentication methods policy (Entra semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Migration {
    /// The SSPR policy's own method list (`reset_methods`) governs reset.
    PreMigration,
    /// A method enabled in either list may be used.
    InProgress,
    /// Only the unified list (`unified_methods`) counts.
    Complete,
}

/// The administrator's SSPR policy: the part of the policy an admin edits at run time
/// through `AdminService` (seeded from `[policy]` in the configuration until the first
/// update; then the stored, versioned document wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsprPolicy {
    /// 0 for the configuration's policy; incremented by every update.
    pub version: u64,
    pub scope: Scope,
    /// Group DNs for `Scope::Selected`.
    pub scope_groups: Vec<String>,
    /// Distinct methods to prove (1 or 2).
    pub methods_required: u32,
    /// The SSPR policy's method list (used before and during migration).
    pub reset_methods: Vec<Method>,
    /// The unified authentication methods policy's enabled methods.
    pub unified_methods: Vec<Method>,
    pub migration: Migration,
    pub questions_to_register: u32,
    pub questions_to_answer: u32,
    pub questions_not_only_method: bool,
    pub sms_alone_not_allowed: bool,
    /// Administrators need two methods and may not use security questions.
    pub admin_policy: bool,
    /// Members (nested) of these groups are administrators.
    pub admin_groups: Vec<String>,
    /// AD: accounts with `adminCount=1` (protected by AdminSDHolder) are administrators.
    pub admin_count_is_admin: bool,
    /// Users in scope must register (portals are told after a login).
    pub require_registration: bool,
    /// Days after which users are asked to re-confirm their methods (0 = never).
    pub reconfirm_days: u32,
    /// Tell users on their confirmed contacts about resets, unlocks and method changes.
    pub notify_users: bool,
    /// Tell every administrator when an administrator's password is reset.
    pub notify_admins: bool,
    /// Addresses that receive admin notifications.
    pub admin_notify_emails: Vec<String>,
    pub updated_at: u64,
    pub updated_by: String,
}

/// What a policy may be validated against: facts of the running daemon.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyContext {
    pub email_configured: bool,
    pub gateway_configured: bool,
    pub authenticator_configured: bool,
    pub bank_size: usize,
}

impl PolicyContext {
    /// The configuration `m` needs and the daemon lacks (`[email]`, `[gateway]`,
    /// `[authenticator] key`), or `None` when the daemon can deliver it.
    pub fn missing_for(&self, m: Method) -> Option<&'static str> {
        match m {
            Method::Email => (!self.email_configured).then_some("[email]"),
            Method::MobileSms | Method::MobileVoice | Method::OfficeVoice => {
                (!self.gateway_configured).then_some("[gateway]")
            }
            Method::AuthenticatorCode => {
                (!self.authenticator_configured).then_some("[authenticator] key")
            }
            Method::SecurityQuestions => None,
        }
    }
}

impl SsprPolicy {
    /// The methods usable for reset and registration in the current migration state.
    pub fn effective_methods(&self) -> Vec<Method> {
        let mut out: Vec<Method> = match self.migration {
            Migration::PreMigration => self.reset_methods.clone(),
            Migration::InProgress => {
                let mut v = self.reset_methods.clone();
                v.extend(self.unified_methods.iter().copied());
                v
            }
            Migration::Complete => self.unified_methods.clone(),
        };
        out.sort();
        out.dedup();
        out
    }

    /// Every problem, as `(field, why)` pairs (field names as in the API and `[policy]`).
    pub fn problems(&self, ctx: &PolicyContext) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut bad = |k: &str, why: String| errs.push((k.to_string(), why));
        for (field, list) in [
            ("reset_methods", &self.reset_methods),
            ("unified_methods", &self.unified_methods),
        ] {
            let mut seen = std::collections::HashSet::new();
            for m in list {
                if !seen.insert(m) {
                    bad(field, format!("{} is listed twice", m.name()));
                }
            }
        }
        let enabled = self.effective_methods();
        if enabled.is_empty() {
            bad(
                "reset_methods",
                "no method is enabled in the current migration state".into(),
            );
        }
        for m in &enabled {
            if let Some(section) = ctx.missing_for(*m) {
                bad(
                    "reset_methods",
                    format!(
                        "{} is enabled but the daemon has no {section} configured",
                        m.name()
                    ),
                );
            }
        }
        let factors: std::collections::BTreeSet<_> = enabled.iter().map(|m| m.factor()).collect();
        if !(1..=2).contains(&self.methods_required) {
            bad(
                "methods_required",
                format!("{} must be 1 or 2", self.methods_required),
            );
        } else if factors.len() < self.methods_required as usize {
            bad(
                "methods_required",
                format!(
                    "{} distinct methods required but only {} enabled",
                    self.methods_required,
                    factors.len()
                ),
            );
        }
        if self.questions_not_only_method
            && enabled.contains(&Method::SecurityQuestions)
            && factors.len() == 1
        {
            bad(
                "questions_not_only_method",
                "security questions are the only enabled method: enable another, or set this to false"
                    .into(),
            );
        }
        if !(3..=5).contains(&self.questions_to_register) {
            bad(
                "questions_to_register",
                format!("{} is outside 3..=5", self.questions_to_register),
            );
        }
        if !(3..=5).contains(&self.questions_to_answer) {
            bad(
                "questions_to_answer",
                format!("{} is outside 3..=5", self.questions_to_answer),
            );
        } else if self.questions_to_answer > self.questions_to_register {
            bad(
                "questions_to_answer",
                format!(
                    "{} exceeds the number of questions to register ({}): users cannot be asked more questions than they registered",
                    self.questions_to_answer, self.questions_to_register
                ),
            );
        }
        if enabled.contains(&Method::SecurityQuestions)
            && ctx.bank_size < self.questions_to_register as usize
        {
            bad(
                "questions_to_register",
                format!(
                    "the question bank offers {} questions, fewer than {}",
                    ctx.bank_size, self.questions_to_register
                ),
            );
        }
        if self.reconfirm_days > 730 {
            bad(
                "reconfirm_days",
                format!("{} is outside 0..=730", self.reconfirm_days),
            );
        }
        match self.scope {
            Scope::Selected if self.scope_groups.is_empty() => bad(
                "scope_groups",
                "scope \"selected\" needs at least one group".into(),
            ),
            _ => {}
        }
        for (field, groups) in [
            ("scope_groups", &self.scope_groups),
            ("admin_groups", &self.admin_groups),
        ] {
            if groups.len() > 50 {
                bad(field, format!("{} groups; at most 50", groups.len()));
            }
            for g in groups {
                if !looks_like_dn(g) {
                    bad(
                        field,
                        format!(
                            "{g:?} is not a distinguished name like cn=staff,ou=groups,dc=example,dc=org"
                        ),
                    );
                }
            }
        }
        for a in &self.admin_notify_emails {
            if crate::method::contact::normalise(crate::method::contact::ContactKind::Email, a)
                .is_err()
            {
                bad(
                    "admin_notify_emails",
                    format!("{a:?} is not an email address"),
                );
            }
        }
        errs
    }

    /// The method policy for an ordinary user or an administrator. For administrators under
    /// the admin policy: security questions are not offered and two methods are required;
    /// when fewer than two other methods are enabled, administrators cannot use SSPR
    /// (`None`).
    pub fn methods_for(&self, admin: bool) -> Option<MethodPolicy> {
        let mut enabled = self.effective_methods();
        let mut required = self.methods_required;
        if admin && self.admin_policy {
            enabled.retain(|m| *m != Method::SecurityQuestions);
            required = 2;
            let factors: std::collections::BTreeSet<_> =
                enabled.iter().map(|m| m.factor()).collect();
            if factors.len() < 2 {
                return None;
            }
        }
        Some(MethodPolicy {
            enabled,
            required,
            questions_not_only: self.questions_not_only_method,
            sms_alone_not_allowed: self.sms_alone_not_allowed,
        })
    }

    pub fn question_policy(&self) -> QuestionPolicy {
        QuestionPolicy {
            register_count: self.questions_to_register as usize,
            reset_count: self.questions_to_answer as usize,
        }
    }
}

/// A loose DN syntax check: `attr=value` components separated by commas.
fn looks_like_dn(s: &str) -> bool {
    s.len() <= 1024
        && !s.chars().any(char::is_control)
        && s.split(',').all(|rdn| {
            rdn.split_once('=').is_some_and(|(a, v)| {
                let a = a.trim();
                !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !v.trim().is_empty()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(required: u32) -> MethodPolicy {
        MethodPolicy {
            enabled: Method::ALL.to_vec(),
            required,
            questions_not_only: true,
            sms_alone_not_allowed: true,
        }
    }

    #[test]
    fn completion_rules() {
        use Method::*;
        let one = methods(1);
        assert!(one.unmet(&[]).is_some());
        assert!(one.unmet(&[Email]).is_none());
        assert!(
            one.unmet(&[SecurityQuestions])
                .unwrap()
                .contains("only method")
        );
        assert!(one.unmet(&[MobileSms]).unwrap().contains("SMS"));
        assert!(one.unmet(&[MobileVoice]).is_none());
        let two = methods(2);
        assert!(two.unmet(&[Email]).is_some());
        assert!(two.unmet(&[Email, AuthenticatorCode]).is_none());
        assert!(two.unmet(&[SecurityQuestions, Email]).is_none());
        // SMS and a voice call to the same phone are one factor.
        assert!(two.unmet(&[MobileSms, MobileVoice]).is_some());
        let lax = MethodPolicy {
            questions_not_only: false,
            sms_alone_not_allowed: false,
            ..methods(1)
        };
        assert!(lax.unmet(&[SecurityQuestions]).is_none());
        assert!(lax.unmet(&[MobileSms]).is_none());
    }

    #[test]
    fn custom_questions_are_validated() {
        let custom = vec![
            RawCustomQuestion {
                id: "badge".into(),
                text: "What colour was your first badge?".into(),
            },
            RawCustomQuestion {
                id: "badge".into(),
                text: "Again?".into(),
            },
            RawCustomQuestion {
                id: "bad id".into(),
                text: "no".into(),
            },
        ];
        let errs = QuestionBank::build(false, &custom).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["custom[1].id", "custom[2].id", "custom[2].text"]);
    }

    #[test]
    fn bank_has_predefined_and_custom() {
        let custom = vec![RawCustomQuestion {
            id: "badge".into(),
            text: "What colour was your first badge?".into(),
        }];
        let bank = QuestionBank::build(true, &custom).unwrap();
        assert_eq!(bank.len(), PREDEFINED.len() + 1);
        assert!(bank.get("custom.badge").unwrap().custom);
        assert!(!bank.get("bank.first_pet").unwrap().custom);
    }
}
