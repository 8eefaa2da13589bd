//! Email over SMTP with lettre: STARTTLS or implicit TLS (rustls, optional private CA),
//! authentication from a credential file, a connection pool, and text + HTML templates.

use super::settings::{EmailConfig, SmtpTls};
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
use std::path::Path;

/// Templates (reset_code, confirm_contact, method_changed, account_recovered), each a
/// (subject, text, html) triple with `{{organization}}`, `{{code}}`,
/// `{{minutes}}`, `{{method}}` and `{{change}}` placeholders.
#[derive(Debug, Clone)]
pub struct Templates {
    reset_code: [String; 3],
    confirm_contact: [String; 3],
    method_changed: [String; 3],
    account_recovered: [String; 3],
    admin_reset: [String; 3],
    admin_alert: [String; 3],
}

const DEFAULT_RESET: [&str; 3] = [
    "{{organization}} password reset code",
    "Your {{organization}} password reset code is {{code}}.\n\nIt expires in {{minutes}} minutes. If you did not ask to reset your password, ignore this message and tell your helpdesk.\n",
    "<p>Your {{organization}} password reset code is <b>{{code}}</b>.</p><p>It expires in {{minutes}} minutes. If you did not ask to reset your password, ignore this message and tell your helpdesk.</p>",
];
const DEFAULT_CONFIRM: [&str; 3] = [
    "Confirm your {{organization}} contact",
    "Your {{organization}} confirmation code is {{code}}.\n\nEnter it to confirm this address for password reset. It expires in {{minutes}} minutes.\n",
    "<p>Your {{organization}} confirmation code is <b>{{code}}</b>.</p><p>Enter it to confirm this address for password reset. It expires in {{minutes}} minutes.</p>",
];
const DEFAULT_RECOVERED: [&str; 3] = [
    "Your {{organization}} account: {{change}}",
    "Self-service on your {{organization}} account: {{change}}.\n\nIf this was not you, contact your helpdesk at once.\n",
    "<p>Self-service on your {{organization}} account: {{change}}.</p><p>If this was not you, contact your helpdesk at once.</p>",
];
const DEFAULT_CHANGED: [&str; 3] = [
    "Your {{organization}} password reset methods changed",
    "A verification method of your {{organization}} account was {{change}}: {{method}}.\n\nIf this was not you, contact your helpdesk at once.\n",
    "<p>A verification method of your {{organization}} account was {{change}}: {{method}}.</p><p>If this was not you, contact your helpdesk at once.</p>",
];

const DEFAULT_ADMIN_RESET: [&str; 3] = [
    "Your {{organization}} password was reset by an administrator",
    "An administrator reset the password of your {{organization}} account {{login}}.\n\nThe administrator gives you the new password in person or by phone; it is never sent by email. {{change}}\n\nIf you did not ask for this, contact your helpdesk at once.\n",
    "<p>An administrator reset the password of your {{organization}} account <b>{{login}}</b>.</p><p>The administrator gives you the new password in person or by phone; it is never sent by email. {{change}}</p><p>If you did not ask for this, contact your helpdesk at once.</p>",
];
const DEFAULT_ADMIN_ALERT: [&str; 3] = [
    "{{organization}} administrator account {{login}}: {{change}}",
    "The {{organization}} administrator account {{login}}: {{change}}.\n\nYou receive this because you are listed as an administrator to notify. If this is unexpected, investigate at once.\n",
    "<p>The {{organization}} administrator account <b>{{login}}</b>: {{change}}.</p><p>You receive this because you are listed as an administrator to notify. If this is unexpected, investigate at once.</p>",
];

impl Templates {
    /// Built-in templates, each replaced by `<dir>/<name>.{subject,txt,html}` when present.
    pub fn load(dir: Option<&Path>) -> Result<Self, String> {
        let one = |name: &str, default: [&str; 3]| -> Result<[String; 3], String> {
            let mut out = default.map(String::from);
            if let Some(dir) = dir {
                for (i, ext) in ["subject", "txt", "html"].iter().enumerate() {
                    let p = dir.join(format!("{name}.{ext}"));
                    if p.exists() {
                        out[i] = std::fs::read_to_string(&p)
                            .map_err(|e| format!("{}: {e}", p.display()))?;
                    }
                }
            }
            Ok(out)
        };
        Ok(Self {
            reset_code: one("reset_code", DEFAULT_RESET)?,
            confirm_contact: one("confirm_contact", DEFAULT_CONFIRM)?,
            method_changed: one("method_changed", DEFAULT_CHANGED)?,
            account_recovered: one("account_recovered", DEFAULT_RECOVERED)?,
            admin_reset: one("admin_reset", DEFAULT_ADMIN_RESET)?,
            admin_alert: one("admin_alert", DEFAULT_ADMIN_ALERT)?,
        })
    }

    /// Subject, text and HTML for `content`.
    pub fn render(&self, organization: &str, content: &Content) -> [String; 3] {
        use crate::delivery::Notice as N;
        let must_change = "You must choose a new password at your next sign-in.";
        let (t, code, minutes, method, change, login) = match content {
            Content::ResetCode { code, minutes } => {
                (&self.reset_code, code.expose(), *minutes, "", "", "")
            }
            Content::ConfirmContact { code, minutes } => {
                (&self.confirm_contact, code.expose(), *minutes, "", "", "")
            }
            Content::Notice(N::MethodChanged { method, change }) => (
                &self.method_changed,
                "",
                0,
                method.as_str(),
                change.as_str(),
                "",
            ),
            Content::Notice(N::AccountRecovered { what }) => {
                (&self.account_recovered, "", 0, "", what.as_str(), "")
            }
            Content::Notice(N::AdminResetInstructions {
                login,
                must_change: m,
            }) => (
                &self.admin_reset,
                "",
                0,
                "",
                if *m { must_change } else { "" },
                login.as_str(),
            ),
            Content::Notice(N::AdminAlert { login, what }) => {
                (&self.admin_alert, "", 0, "", what.as_str(), login.as_str())
            }
        };
        let fill = |s: &str, html: bool| {
            let org = if html {
                html_escape(organization)
            } else {
                organization.to_string()
            };
            let login = if html {
                html_escape(login)
            } else {
                login.to_string()
            };
            s.replace("{{organization}}", &org)
                .replace("{{login}}", &login)
                .replace("{{code}}", code)
                .replace("{{minutes}}", &minutes.to_string())
                .replace("{{method}}", method)
                .replace("{{change}}", change)
        };
        [
            fill(&t[0], false).replace(['\r', '\n'], " "),
            fill(&t[1], false),
            fill(&t[2], true),
        ]
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SMTP sender.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    organization: String,
    templates: Templates,
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
            templates: cfg.templates.clone(),
        })
    }

    /// Sends one message; `id` becomes the left part of its `Message-ID` (the right part is
    /// the sender's domain), the same on every attempt.
    pub async fn send(&self, to: &str, content: &Content, id: &str) -> Result<(), DeliveryError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| DeliveryError::Refused("not a valid address".into()))?;
        let [subject, text, html] = self.templates.render(&self.organization, content);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn templates_fill_placeholders_and_escape_the_organization_in_html() {
        let t = Templates::load(None).unwrap();
        let [subject, text, html] = t.render(
            "A&B <Corp>",
            &Content::ResetCode {
                code: Secret::new("12345678"),
                minutes: 5,
            },
        );
        assert_eq!(subject, "A&B <Corp> password reset code");
        assert!(text.contains("12345678") && text.contains("5 minutes"));
        assert!(html.contains("A&amp;B &lt;Corp&gt;"));
    }

    #[test]
    fn templates_can_be_overridden() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset_code.txt"), "Code: {{code}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let [_, text, _] = t.render(
            "Org",
            &Content::ResetCode {
                code: Secret::new("42424242"),
                minutes: 5,
            },
        );
        assert_eq!(text, "Code: 42424242");
    }
}
