//! Email over SMTP with lettre: STARTTLS or implicit TLS (rustls, optional private CA),
//! authentication from a credential file, a connection pool; each message in text and HTML
//! ([`super::text`]).

use super::settings::{EmailConfig, SmtpTls};
use super::text::Texts;
use super::{Content, DeliveryError};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use std::sync::Arc;

/// The SMTP sender.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    organization: String,
    texts: Arc<Texts>,
}

impl SmtpMailer {
    pub fn new(cfg: &EmailConfig) -> Result<Self, String> {
        let mut tls = TlsParameters::builder(cfg.host.clone());
        if let Some(pem) = &cfg.ca_pem {
            tls = tls.add_root_certificate(
                Certificate::from_pem(pem).map_err(|e| format!("email.ca_file: {e}"))?,
            );
        }
        let tls = tls.build_rustls().map_err(|e| format!("email TLS: {e}"))?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
            .port(cfg.port)
            .timeout(Some(cfg.timeout))
            .pool_config(PoolConfig::new().max_size(4))
            .tls(match cfg.tls {
                SmtpTls::Starttls => Tls::Required(tls),
                SmtpTls::Implicit => Tls::Wrapper(tls),
            });
        if let Some((user, password)) = &cfg.credentials {
            b = b.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Self {
            transport: b.build(),
            from: cfg.from.clone(),
            organization: cfg.organization.clone(),
            texts: cfg.texts.clone(),
        })
    }

    /// Sends one message, in `language` ([`Texts::language`]); `id` becomes the left part
    /// of its `Message-ID` (the right part is the sender's domain), the same on every
    /// attempt.
    pub async fn send(
        &self,
        to: &str,
        content: &Content,
        language: Option<&str>,
        id: &str,
    ) -> Result<(), DeliveryError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| DeliveryError::Refused("not a valid address".into()))?;
        let [subject, text, html] = self.texts.email(language, &self.organization, content);
        let msg = Message::builder()
            .message_id(Some(format!("<{id}@{}>", self.from.email.domain())))
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| DeliveryError::Refused(format!("message: {e}")))?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Refused(
                e.status()
                    .map_or("permanent failure".into(), |c| c.to_string()),
            )),
            Err(e) => Err(DeliveryError::Unavailable(e.to_string())),
        }
    }
}
