//! SMS and voice calls through a generic HTTPS webhook that fronts any provider.
//!
//! Each message is one `POST` of a JSON body:
//!
//! ```json
//! {"id":"<message id>","channel":"sms"|"voice","to":"+15550000012",
//!  "purpose":"reset_code"|"confirm_contact"|"method_changed"|"account_recovered"|
//!             "admin_reset"|"admin_alert",
//!  "code":"12345678","minutes":5,"organization":"Example Corp","language":"en"|"de"|"fr",
//!  "text":"Your Example Corp password reset code is 12345678. It expires in 5 minutes."}
//! ```
//!
//! with headers `X-Ssprd-Timestamp: <unix seconds>`, `X-Ssprd-Message-Id: <id>` (the same on
//! every retry: an idempotency key) and `X-Ssprd-Signature: v1=<hex HMAC-SHA256(secret,
//! "<timestamp>.<body>")>`. The receiver checks the signature in constant time and refuses
//! timestamps older than a few minutes. 2xx = delivered; 429 and 5xx and network errors are
//! retried with exponential backoff; other 4xx = the recipient is refused.

use super::{Channel, Content, DeliveryError};
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Validated gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub url: String,
    pub ca_pem: Option<Vec<u8>>,
    pub secret: Secret,
    pub timeout: Duration,
    pub retries: u32,
    pub organization: String,
    pub texts: std::sync::Arc<super::text::Texts>,
}

pub struct Gateway {
    client: reqwest::Client,
    cfg: GatewayConfig,
}

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1={}", hex::encode(m.finalize().into_bytes()))
}

impl Gateway {
    pub fn new(cfg: GatewayConfig) -> Result<Self, String> {
        let tls =
            crate::tls::client_config(cfg.ca_pem.as_deref()).map_err(|e| format!("gateway {e}"))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| format!("gateway client: {e}"))?;
        Ok(Self { client, cfg })
    }

    pub async fn send(
        &self,
        to: &Channel,
        content: &Content,
        language: Option<&str>,
        id: &str,
    ) -> Result<(), DeliveryError> {
        let (channel, number) = match to {
            Channel::Sms(n) => ("sms", n),
            Channel::Voice(n) => ("voice", n),
            Channel::Email(_) => return Err(DeliveryError::NotConfigured("email via gateway")),
        };
        let sms = self
            .cfg
            .texts
            .sms(language, &self.cfg.organization, content);
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "id": id,
                "channel": channel,
                "to": number,
                "purpose": sms.purpose,
                "code": sms.code.as_str(),
                "minutes": sms.minutes,
                "organization": self.cfg.organization,
                "language": sms.language,
                "text": sms.text.as_str(),
            }))
            .expect("JSON of strings"),
        );
        drop(sms);
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let res = self
                .client
                .post(&self.cfg.url)
                .header("Content-Type", "application/json")
                .header("X-Ssprd-Timestamp", ts.to_string())
                .header("X-Ssprd-Message-Id", id)
                .header("X-Ssprd-Signature", signature(&self.cfg.secret, ts, &body))
                .body(body.to_vec())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    last = format!("HTTP {}", r.status().as_u16());
                }
                Ok(r) => {
                    return Err(DeliveryError::Refused(format!(
                        "gateway answered HTTP {}",
                        r.status().as_u16()
                    )));
                }
                Err(e) => {
                    // reqwest errors carry the URL, never the body.
                    last = e.to_string();
                }
            }
            tracing::debug!(attempt, reason = %last, "gateway attempt failed");
        }
        Err(DeliveryError::Unavailable(format!(
            "gateway after {} attempts: {last}",
            self.cfg.retries + 1
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let s = Secret::new("k");
        let a = signature(&s, 1, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, signature(&s, 2, b"{}"));
        assert_ne!(a, signature(&s, 1, b"{ }"));
        assert_ne!(a, signature(&Secret::new("j"), 1, b"{}"));
    }
}
