//! Notifications go through a durable outbox: [`Service::notify`] stores the message (flushed)
//! and wakes the worker ([`Service::run_outbox`]), which delivers each one, removes it once
//! the provider accepted it, and retries with exponential backoff while the provider is
//! unavailable. A refused recipient or a channel without a provider is given up at once;
//! anything still undelivered after the give-up period is dropped. Each outcome is audited.
//!
//! A message is removed right after the provider accepted it, so each is delivered once. A
//! crash in the instant between acceptance and removal sends it once more after the restart,
//! with the same message id (the SMTP `Message-ID`, the gateway's `X-Ssprd-Message-Id`), so
//! the receiver can recognise the copy: never lost, and duplicates are identifiable.

use super::Service;
use crate::delivery::{Channel, Content, DeliveryError, Notice};
use crate::method::contact::ContactKind;
use crate::store::{OutboxItem, Registration};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The `[outbox]` section: delivery of notifications from the durable outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutbox {
    /// Longest wait between two delivery attempts (the wait doubles from 1 s; 1-3600).
    pub max_retry_interval_secs: u64,
    /// Undelivered notifications are dropped after this many hours (1-720).
    pub give_up_hours: u64,
}

impl Default for RawOutbox {
    fn default() -> Self {
        Self {
            max_retry_interval_secs: 300,
            give_up_hours: 72,
        }
    }
}

impl RawOutbox {
    /// Checks the `[outbox]` section into `p`.
    pub fn validate(&self, p: &mut crate::problems::Problems) -> OutboxPolicy {
        p.in_range(
            "outbox.max_retry_interval_secs",
            self.max_retry_interval_secs,
            1,
            3600,
        );
        p.in_range("outbox.give_up_hours", self.give_up_hours, 1, 720);
        OutboxPolicy {
            max_retry_interval_secs: self.max_retry_interval_secs,
            give_up_after_secs: self.give_up_hours * 3600,
        }
    }
}

/// Outbox retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Longest wait between two attempts (the wait doubles from 1 s up to this).
    pub max_retry_interval_secs: u64,
    /// Undelivered notifications older than this are dropped.
    pub give_up_after_secs: u64,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        Self {
            max_retry_interval_secs: 300,
            give_up_after_secs: 72 * 3600,
        }
    }
}

/// The channel that reaches a confirmed contact.
pub(super) fn contact_channel(kind: ContactKind, value: &str) -> Channel {
    match kind {
        ContactKind::Email => Channel::Email(value.into()),
        ContactKind::Mobile => Channel::Sms(value.into()),
        ContactKind::Office => Channel::Voice(value.into()),
    }
}

impl Service {
    /// Queues `notice` for `to` in the outbox. A store failure is logged: the change that
    /// caused the notification stands.
    /// `language` is the recipient's (`None`: the configured default).
    pub(super) async fn notify(
        &self,
        user: &str,
        to: Channel,
        notice: Notice,
        language: Option<&str>,
    ) {
        let item = self.outbox_item(user, to, notice, language);
        match self.store.enqueue(&item).await {
            Ok(_) => self.outbox_wake.notify_one(),
            Err(e) => warn!(error = %e, "notification not queued"),
        }
    }

    /// A new outbox item: `notice` for `to` in `language`, due now, with a message id of
    /// its own.
    pub(super) fn outbox_item(
        &self,
        user: &str,
        to: Channel,
        notice: Notice,
        language: Option<&str>,
    ) -> OutboxItem {
        let t = self.now();
        OutboxItem {
            id: super::new_token(),
            to,
            notice,
            user: user.to_string(),
            created_at: t,
            attempts: 0,
            next_at: t,
            last_error: String::new(),
            language: language.map(str::to_string),
        }
    }

    /// Outbox items with `notice` for every confirmed contact of `reg`, in the user's
    /// language (queued by the caller, e.g. in a batch).
    pub(super) fn contact_items(&self, reg: &Registration, notice: &Notice) -> Vec<OutboxItem> {
        reg.contacts
            .iter()
            .map(|c| {
                self.outbox_item(
                    &reg.login,
                    contact_channel(c.kind, &c.value),
                    notice.clone(),
                    reg.language.as_deref(),
                )
            })
            .collect()
    }

    /// Tells the outbox worker that items are waiting.
    pub(super) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Queues `notice` for every confirmed contact of `reg` (email, SMS to the mobile, a
    /// call to the office phone), in the user's language.
    pub(super) async fn notify_contacts(&self, reg: &Registration, notice: Notice) {
        for c in &reg.contacts {
            self.notify(
                &reg.login,
                contact_channel(c.kind, &c.value),
                notice.clone(),
                reg.language.as_deref(),
            )
            .await;
        }
    }

    /// Tells every administrator listed in the policy about `what` on `login`.
    pub(super) async fn alert_admins(&self, login: &str, what: &str) {
        let sspr = self.sspr();
        if !sspr.notify_admins {
            return;
        }
        for addr in &sspr.admin_notify_emails {
            self.notify(
                login,
                Channel::Email(addr.clone()),
                Notice::AdminAlert {
                    login: login.to_string(),
                    what: what.to_string(),
                },
                None,
            )
            .await;
        }
    }

    /// Delivers what is due in the outbox; returns when the next attempt is due (or `None`
    /// when the outbox is empty).
    pub async fn deliver_outbox(&self, policy: &OutboxPolicy) -> Option<u64> {
        let items = match self.store.outbox().await {
            Ok(items) => items,
            Err(e) => {
                warn!(error = %e, "outbox unreadable");
                return Some(self.now() + 5);
            }
        };
        let mut next_due: Option<u64> = None;
        for (seq, mut item) in items {
            let t = self.now();
            if item.next_at > t {
                next_due = Some(next_due.map_or(item.next_at, |n| n.min(item.next_at)));
                continue;
            }
            let kind = notice_kind(&item.notice);
            let id = if item.id.is_empty() {
                format!("outbox-{seq}")
            } else {
                item.id.clone()
            };
            let result = self
                .deliver
                .deliver(
                    &item.to,
                    &Content::Notice(item.notice.clone()),
                    item.language.as_deref(),
                    &id,
                )
                .await;
            crate::failpoint::hit("outbox.after_send");
            let give_up = t.saturating_sub(item.created_at) >= policy.give_up_after_secs;
            match result {
                Ok(()) => {
                    if let Err(e) = self.store.remove_outbox(seq).await {
                        warn!(error = %e, "delivered notification not removed from the outbox");
                    }
                    info!(to = %item.to.masked(), kind, "notification delivered");
                    self.audit("notify", &item.user, "success", kind).await;
                }
                Err(DeliveryError::Unavailable(why)) if !give_up => {
                    item.attempts += 1;
                    let wait = (1u64 << item.attempts.min(20)).min(policy.max_retry_interval_secs);
                    item.next_at = t + wait.max(1);
                    item.last_error = why;
                    warn!(to = %item.to.masked(), kind, attempts = item.attempts, retry_in = wait,
                        "notification not delivered; will retry");
                    if let Err(e) = self.store.put_outbox(seq, &item).await {
                        warn!(error = %e, "outbox not updated");
                    }
                    next_due = Some(next_due.map_or(item.next_at, |n| n.min(item.next_at)));
                }
                Err(e) => {
                    warn!(to = %item.to.masked(), kind, error = %e, "notification given up");
                    let _ = self.store.remove_outbox(seq).await;
                    self.audit("notify", &item.user, "failure", kind).await;
                }
            }
        }
        next_due
    }

    /// The outbox worker: delivers at start (what a previous run left), whenever a
    /// notification is queued, and when a retry is due.
    pub async fn run_outbox(self: Arc<Self>, policy: OutboxPolicy) {
        loop {
            let next = self.deliver_outbox(&policy).await;
            let wait = next.map_or(Duration::from_secs(3600), |due| {
                Duration::from_secs(due.saturating_sub(self.now()).max(1))
            });
            tokio::select! {
                _ = self.outbox_wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn notice_kind(n: &Notice) -> &'static str {
    match n {
        Notice::MethodChanged { .. } => "method_changed",
        Notice::AccountRecovered { .. } => "account_recovered",
        Notice::AdminResetInstructions { .. } => "admin_reset_instructions",
        Notice::AdminAlert { .. } => "admin_alert",
    }
}
