//! Outbound messages: one-time codes and notifications, by email (SMTP, [`smtp`]) and by SMS
//! or voice call through a signed HTTPS webhook ([`gateway`]).
//!
//! Message text comes only from configuration (organisation name, templates), from the
//! built-in texts of each language ([`text`]) and from values the server made (codes,
//! lifetimes): never from request metadata. A message goes out in the language the user
//! chose, else in `[email] language`.

pub mod gateway;
pub mod settings;
pub mod smtp;
pub mod text;

use crate::method::contact::{self, ContactKind};
use crate::secret::Secret;
pub use settings::{EmailConfig, RawEmail, RawGateway, SmtpTls};

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email(String),
    Sms(String),
    Voice(String),
}

impl Channel {
    /// A masked form, for logs.
    pub fn masked(&self) -> String {
        match self {
            Channel::Email(a) => contact::mask(ContactKind::Email, a),
            Channel::Sms(p) | Channel::Voice(p) => contact::mask(ContactKind::Mobile, p),
        }
    }
}

/// What a message says.
#[derive(Debug, Clone)]
pub enum Content {
    /// A code to prove the user at reset.
    ResetCode { code: Secret, minutes: u64 },
    /// A code to confirm a new contact.
    ConfirmContact { code: Secret, minutes: u64 },
    /// A notification (never carries a password or code).
    Notice(Notice),
}

/// A notification: stored in the outbox until delivered, so it holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A registered method was added, changed or removed (by the user or an administrator).
    MethodChanged { method: String, change: String },
    /// The password was reset or the account unlocked (`what` says which and by whom).
    AccountRecovered { what: String },
    /// Sent to the alternate email after an administrator reset: how to sign in and
    /// change the password (the password itself is given by the administrator, not here).
    AdminResetInstructions { login: String, must_change: bool },
    /// Sent to administrators: something happened to an administrator's account.
    AdminAlert { login: String, what: String },
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The provider cannot be reached or failed temporarily: try again later.
    #[error("delivery provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this recipient permanently.
    #[error("recipient refused: {0}")]
    Refused(String),
    /// This kind of channel is not configured.
    #[error("no provider configured for {0}")]
    NotConfigured(&'static str),
}

/// Sends messages. `language` is the recipient's choice (a language tag; `None`: the
/// configured default). `id` names the message: every attempt to send the same message
/// carries the same id (SMTP `Message-ID`, the gateway's `X-Ssprd-Message-Id`), so a
/// receiver can drop a duplicate.
#[async_trait::async_trait]
pub trait Deliver: Send + Sync + 'static {
    async fn deliver(
        &self,
        to: &Channel,
        content: &Content,
        language: Option<&str>,
        id: &str,
    ) -> Result<(), DeliveryError>;
}

/// Routes each channel to its provider, and counts every attempt:
/// `ssprd_deliveries_total{channel, outcome}`.
pub struct Dispatcher {
    pub email: Option<smtp::SmtpMailer>,
    pub gateway: Option<gateway::Gateway>,
}

#[async_trait::async_trait]
impl Deliver for Dispatcher {
    async fn deliver(
        &self,
        to: &Channel,
        content: &Content,
        language: Option<&str>,
        id: &str,
    ) -> Result<(), DeliveryError> {
        let sent = match to {
            Channel::Email(addr) => match &self.email {
                Some(m) => m.send(addr, content, language, id).await,
                None => Err(DeliveryError::NotConfigured("email")),
            },
            Channel::Sms(_) | Channel::Voice(_) => match &self.gateway {
                Some(g) => g.send(to, content, language, id).await,
                None => Err(DeliveryError::NotConfigured("SMS and voice")),
            },
        };
        let channel = match to {
            Channel::Email(_) => "email",
            Channel::Sms(_) => "sms",
            Channel::Voice(_) => "voice",
        };
        let outcome = match &sent {
            Ok(()) => "sent",
            Err(DeliveryError::Unavailable(_)) => "unavailable",
            Err(DeliveryError::Refused(_)) => "refused",
            Err(DeliveryError::NotConfigured(_)) => "not_configured",
        };
        metrics::counter!("ssprd_deliveries_total", "channel" => channel, "outcome" => outcome)
            .increment(1);
        sent
    }
}
