//! The `[policy]` section: who may use self-service, with which methods, and its limits.
//!
//! Checked in two steps, because the deliveries depend on the methods and the policy on the
//! deliveries: [`RawPolicy::methods`] reads the method lists (the email, gateway and
//! authenticator sections are set up for every method named), then [`RawPolicy::validate`]
//! checks the rest against what can be delivered.

use super::{
    CodePolicy, MethodLimits, Migration, PolicyContext, QuestionBank, ResetPolicy, Scope,
    SsprPolicy,
};
use crate::method::Method;
use crate::problems::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCodes {
    /// Digits of emailed / SMS / voice codes (6-10).
    pub length: u32,
    /// Minutes a code stays valid (1-10).
    pub lifetime_minutes: u64,
    /// Wrong tries before a code is invalidated (1-10).
    pub max_tries: u32,
    /// Codes one flow may send (resends included).
    pub max_sends_per_flow: u32,
    /// Codes one account may be sent within `account_window_minutes` (Entra: 10 in 10
    /// minutes); further codes are refused until the window frees (SENDS_THROTTLED, with
    /// the time to wait) — verification by other methods goes on.
    pub max_sends_per_account: u32,
    pub account_window_minutes: u64,
    /// Codes one account may be sent in 24 hours (the same throttle over a day).
    pub max_sends_per_account_per_day: u32,
}

impl Default for RawCodes {
    fn default() -> Self {
        Self {
            length: 8,
            lifetime_minutes: 5,
            max_tries: 5,
            max_sends_per_flow: 5,
            max_sends_per_account: 10,
            account_window_minutes: 10,
            max_sends_per_account_per_day: 20,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawCustomQuestion {
    pub id: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuestions {
    pub register_count: u32,
    pub reset_count: u32,
    /// Offer the built-in bank (custom questions are always offered).
    pub use_predefined: bool,
    pub custom: Vec<RawCustomQuestion>,
    /// Concurrent argon2 hashes (each ~19 MiB); 0 = number of CPUs.
    pub max_concurrent_hashes: usize,
}

impl Default for RawQuestions {
    fn default() -> Self {
        Self {
            register_count: 3,
            reset_count: 3,
            use_predefined: true,
            custom: Vec::new(),
            max_concurrent_hashes: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    /// Who may use SSPR: "none", "selected" (members of `scope_groups`, nested membership
    /// counts) or "all".
    pub scope: Scope,
    /// Group DNs for scope "selected".
    pub scope_groups: Vec<String>,
    /// The SSPR policy's methods: security_questions, email, mobile_sms, mobile_voice,
    /// office_voice, authenticator_code (governs reset before and during migration).
    pub enabled_methods: Vec<String>,
    /// The unified authentication methods policy's enabled methods.
    pub unified_methods: Vec<String>,
    /// "pre_migration" (enabled_methods count), "in_progress" (either list counts) or
    /// "complete" (unified_methods only).
    pub migration: Migration,
    /// Administrators need two methods and may not use security questions.
    pub admin_policy: bool,
    /// Members (nested) of these groups are administrators.
    pub admin_groups: Vec<String>,
    /// AD: `adminCount=1` accounts are administrators.
    pub admin_count_is_admin: bool,
    /// Users in scope must register: portals are told after a login.
    pub require_registration: bool,
    /// Ask users to re-confirm their methods every N days (0-730; 0 = never).
    pub reconfirm_days: u32,
    /// Tell every administrator (`admin_notify_emails`) when an administrator's password
    /// is reset.
    pub notify_admins_on_admin_reset: bool,
    pub admin_notify_emails: Vec<String>,
    /// Distinct methods to prove before a reset (1 or 2).
    pub methods_required: u32,
    /// Security questions never count as the only method proved.
    pub questions_not_only_method: bool,
    /// An SMS code alone is not enough.
    pub sms_alone_not_allowed: bool,
    /// Hours before a method added or changed by an already-registered user can be used
    /// for reset (0-720; 0 = at once). The old channels are told at once.
    pub new_method_cooloff_hours: u64,
    /// Tell users on their confirmed contacts when their password was reset or their
    /// account unlocked through self-service (never with the password).
    pub notify_on_reset: bool,
    pub codes: RawCodes,
    pub reset_session_minutes: u64,
    pub registration_token_minutes: u64,
    /// Wrong answers allowed within one flow before it is closed.
    pub attempts_per_flow: u32,
    /// Failed verifications per account within `failure_window_hours` that block SSPR.
    pub max_failed_verifications: u32,
    pub failure_window_hours: u64,
    pub block_hours: u64,
    pub security_questions: RawQuestions,
}

impl Default for RawPolicy {
    fn default() -> Self {
        Self {
            scope: Scope::All,
            scope_groups: Vec::new(),
            enabled_methods: vec![
                "security_questions".into(),
                "email".into(),
                "authenticator_code".into(),
            ],
            unified_methods: Vec::new(),
            migration: Migration::PreMigration,
            admin_policy: true,
            admin_groups: Vec::new(),
            admin_count_is_admin: true,
            require_registration: false,
            reconfirm_days: 180,
            notify_admins_on_admin_reset: true,
            admin_notify_emails: Vec::new(),
            methods_required: 1,
            questions_not_only_method: true,
            sms_alone_not_allowed: false,
            new_method_cooloff_hours: 24,
            notify_on_reset: true,
            codes: RawCodes::default(),
            reset_session_minutes: 15,
            registration_token_minutes: 10,
            attempts_per_flow: 3,
            max_failed_verifications: 5,
            failure_window_hours: 24,
            block_hours: 24,
            security_questions: RawQuestions::default(),
        }
    }
}

/// The method lists of `[policy]`, read first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMethods {
    /// `enabled_methods`: the SSPR policy's.
    pub reset: Vec<Method>,
    /// `unified_methods`: the unified authentication methods policy's.
    pub unified: Vec<Method>,
}

impl PolicyMethods {
    /// Whether either list names `m`: its provider is then set up, so an administrator can
    /// enable it at run time.
    pub fn names(&self, m: Method) -> bool {
        self.reset.contains(&m) || self.unified.contains(&m)
    }
}

/// The checked `[policy]` section.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub reset: ResetPolicy,
    pub bank: QuestionBank,
    pub max_concurrent_hashes: usize,
    pub limits: MethodLimits,
    pub sspr: SsprPolicy,
    pub context: PolicyContext,
}

/// The `[policy]` key of an [`SsprPolicy`] field.
fn config_key(field: &str) -> &str {
    match field {
        "reset_methods" => "enabled_methods",
        "questions_to_register" => "security_questions.register_count",
        "questions_to_answer" => "security_questions.reset_count",
        "notify_users" => "notify_on_reset",
        "notify_admins" => "notify_admins_on_admin_reset",
        other => other,
    }
}

impl RawPolicy {
    /// Reads the method lists, and checks the cool-off and the codes.
    pub fn methods(&self, p: &mut Problems) -> PolicyMethods {
        let mut parse = |key: &str, names: &[String]| {
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match Method::ALL.iter().find(|m| m.name() == name) {
                    Some(m) if !out.contains(m) => out.push(*m),
                    Some(_) => p.bad(
                        &format!("policy.{key}[{i}]"),
                        format!("{name:?} is listed twice"),
                    ),
                    None => p.bad(
                        &format!("policy.{key}[{i}]"),
                        format!(
                            "{name:?} is not a method ({})",
                            Method::ALL.map(Method::name).join(", ")
                        ),
                    ),
                }
            }
            out.sort();
            out
        };
        let reset = parse("enabled_methods", &self.enabled_methods);
        let unified = parse("unified_methods", &self.unified_methods);
        p.in_range(
            "policy.new_method_cooloff_hours",
            self.new_method_cooloff_hours,
            0,
            720,
        );
        let c = &self.codes;
        p.in_range("policy.codes.length", c.length, 6, 10);
        p.in_range("policy.codes.lifetime_minutes", c.lifetime_minutes, 1, 10);
        p.in_range("policy.codes.max_tries", c.max_tries, 1, 10);
        p.in_range(
            "policy.codes.max_sends_per_account",
            c.max_sends_per_account,
            1,
            100,
        );
        p.in_range(
            "policy.codes.max_sends_per_account_per_day",
            c.max_sends_per_account_per_day,
            c.max_sends_per_account.max(1),
            1_000,
        );
        p.in_range(
            "policy.codes.account_window_minutes",
            c.account_window_minutes,
            1,
            1440,
        );
        p.in_range(
            "policy.codes.max_sends_per_flow",
            c.max_sends_per_flow,
            1,
            20,
        );
        PolicyMethods { reset, unified }
    }

    /// Checks the rest of the section: lifetimes and limits, the question bank, and the
    /// policy document against what `context` says can be delivered.
    pub fn validate(
        &self,
        p: &mut Problems,
        methods: PolicyMethods,
        deliverable: Deliverable,
    ) -> PolicySettings {
        let q = &self.security_questions;
        p.in_range(
            "policy.reset_session_minutes",
            self.reset_session_minutes,
            5,
            60,
        );
        p.in_range(
            "policy.registration_token_minutes",
            self.registration_token_minutes,
            1,
            60,
        );
        p.in_range("policy.attempts_per_flow", self.attempts_per_flow, 1, 10);
        p.in_range(
            "policy.max_failed_verifications",
            self.max_failed_verifications,
            1,
            50,
        );
        p.in_range(
            "policy.failure_window_hours",
            self.failure_window_hours,
            1,
            168,
        );
        p.in_range("policy.block_hours", self.block_hours, 1, 168);
        let bank = QuestionBank::build(q.use_predefined, &q.custom).unwrap_or_else(|es| {
            for (key, why) in es {
                p.bad(&format!("policy.security_questions.{key}"), why);
            }
            QuestionBank::empty()
        });
        let trimmed = |groups: &[String]| groups.iter().map(|g| g.trim().to_string()).collect();
        let sspr = SsprPolicy {
            version: 0,
            scope: self.scope,
            scope_groups: trimmed(&self.scope_groups),
            methods_required: self.methods_required,
            reset_methods: methods.reset,
            unified_methods: methods.unified,
            migration: self.migration,
            questions_to_register: q.register_count,
            questions_to_answer: q.reset_count,
            questions_not_only_method: self.questions_not_only_method,
            sms_alone_not_allowed: self.sms_alone_not_allowed,
            admin_policy: self.admin_policy,
            admin_groups: trimmed(&self.admin_groups),
            admin_count_is_admin: self.admin_count_is_admin,
            require_registration: self.require_registration,
            reconfirm_days: self.reconfirm_days,
            notify_users: self.notify_on_reset,
            notify_admins: self.notify_admins_on_admin_reset,
            admin_notify_emails: self.admin_notify_emails.clone(),
            updated_at: 0,
            updated_by: "configuration".into(),
        };
        let context = PolicyContext {
            email_configured: deliverable.email,
            gateway_configured: deliverable.gateway,
            authenticator_configured: deliverable.authenticator,
            bank_size: bank.len(),
        };
        for (field, why) in sspr.problems(&context) {
            p.bad(&format!("policy.{}", config_key(&field)), why);
        }
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        PolicySettings {
            reset: ResetPolicy {
                session_ttl_secs: self.reset_session_minutes * 60,
                registration_ttl_secs: self.registration_token_minutes * 60,
                attempts_per_flow: self.attempts_per_flow,
                max_failed_verifications: self.max_failed_verifications,
                failure_window_secs: self.failure_window_hours * 3600,
                block_secs: self.block_hours * 3600,
            },
            bank,
            max_concurrent_hashes: if q.max_concurrent_hashes == 0 {
                cpus
            } else {
                q.max_concurrent_hashes
            },
            limits: MethodLimits {
                cooloff_secs: self.new_method_cooloff_hours * 3600,
                codes: CodePolicy {
                    length: self.codes.length as usize,
                    ttl_secs: self.codes.lifetime_minutes * 60,
                    max_tries: self.codes.max_tries,
                    max_sends_per_flow: self.codes.max_sends_per_flow,
                    max_sends_per_account: self.codes.max_sends_per_account,
                    account_window_secs: self.codes.account_window_minutes * 60,
                    max_sends_per_day: self.codes.max_sends_per_account_per_day,
                },
            },
            sspr,
            context,
        }
    }
}

/// Which deliveries the configuration sets up: methods that need a missing one are refused.
#[derive(Debug, Clone, Copy)]
pub struct Deliverable {
    pub email: bool,
    pub gateway: bool,
    pub authenticator: bool,
}
