//! The SSPR policy model: limits and lifetimes of flows, security-question counts, and the
//! question bank (predefined questions plus the administrator's custom ones).

use crate::config::RawCustomQuestion;
use crate::method::{Factor, Method};

/// Reset and registration limits (validated; see `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPolicy {
    pub methods_required: u32,
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
    /// Delay before a method changed by a registered user can be used for reset.
    pub cooloff_secs: u64,
    /// Tell the user's confirmed contacts about every self-service reset and unlock.
    pub notify_on_reset: bool,
    pub codes: CodePolicy,
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

/// Answer length bounds, in characters after normalisation.
pub const MIN_ANSWER_CHARS: usize = 3;
pub const MAX_ANSWER_CHARS: usize = 40;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(required: u32) -> MethodPolicy {
        MethodPolicy {
            enabled: Method::ALL.to_vec(),
            required,
            questions_not_only: true,
            sms_alone_not_allowed: true,
            cooloff_secs: 0,
            notify_on_reset: true,
            codes: CodePolicy {
                length: 8,
                ttl_secs: 300,
                max_tries: 5,
                max_sends_per_flow: 5,
                max_sends_per_account: 10,
                account_window_secs: 600,
            },
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
