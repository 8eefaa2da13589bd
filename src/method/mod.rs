//! Verification methods: one module per kind of proof.
//!
//! - [`questions`]: security questions (normalisation, argon2id).
//! - [`code`]: one-time codes sent by email, SMS or voice (HMAC at rest, single use).
//! - [`totp`]: authenticator apps (RFC 6238, sealed secrets, replay refusal).
//! - [`contact`]: email and phone parsing, normalisation and masking.

pub mod code;
pub mod contact;
pub mod questions;
pub mod totp;

use serde::{Deserialize, Serialize};

/// A verification method (mirrors `ssprd.v1.Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    SecurityQuestions,
    Email,
    MobileSms,
    MobileVoice,
    OfficeVoice,
    AuthenticatorCode,
}

/// What a method proves possession of. Two methods on one factor (SMS and a voice call to
/// the same mobile) count once when distinct methods are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    Knowledge,
    Mailbox,
    Mobile,
    Office,
    Authenticator,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::SecurityQuestions,
        Method::Email,
        Method::MobileSms,
        Method::MobileVoice,
        Method::OfficeVoice,
        Method::AuthenticatorCode,
    ];

    pub fn factor(self) -> Factor {
        match self {
            Method::SecurityQuestions => Factor::Knowledge,
            Method::Email => Factor::Mailbox,
            Method::MobileSms | Method::MobileVoice => Factor::Mobile,
            Method::OfficeVoice => Factor::Office,
            Method::AuthenticatorCode => Factor::Authenticator,
        }
    }

    /// The contact a code method sends to, if it is one.
    pub fn contact_kind(self) -> Option<contact::ContactKind> {
        use contact::ContactKind as K;
        match self {
            Method::Email => Some(K::Email),
            Method::MobileSms | Method::MobileVoice => Some(K::Mobile),
            Method::OfficeVoice => Some(K::Office),
            Method::SecurityQuestions | Method::AuthenticatorCode => None,
        }
    }

    /// Configuration name (`policy.enabled_methods`).
    pub fn name(self) -> &'static str {
        match self {
            Method::SecurityQuestions => "security_questions",
            Method::Email => "email",
            Method::MobileSms => "mobile_sms",
            Method::MobileVoice => "mobile_voice",
            Method::OfficeVoice => "office_voice",
            Method::AuthenticatorCode => "authenticator_code",
        }
    }
}
