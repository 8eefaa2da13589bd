//! ChangePassword: a user who knows the current password sets a new one — also when it
//! has expired or must be changed after an administrator's reset. The current password is
//! checked only through the sign-in guard (a stranger's guesses never lock the directory
//! account); every refusal before the write is the same `InvalidCredentials`.

use super::sign_in::SignIn;
use super::{Service, ServiceError, check_login, check_new_password};
use crate::directory::BindOutcome;
use crate::secret::Secret;
use crate::store::Batch;
use tracing::instrument;

/// What ChangePassword found before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The current password had expired.
    pub was_expired: bool,
    /// The current password had to be changed (after an administrator's reset).
    pub was_must_change: bool,
}

impl Service {
    /// Answers no sooner than the uniform response time: a wrong current password for an
    /// existing account (a bind) and an unknown name (none) take the same time.
    #[instrument(skip_all)]
    pub async fn change_password(
        &self,
        login: &str,
        current: &Secret,
        new: &Secret,
    ) -> Result<Changed, ServiceError> {
        self.uniformly(self.change_password_unpadded(login, current, new))
            .await
    }

    async fn change_password_unpadded(
        &self,
        login: &str,
        current: &Secret,
        new: &Secret,
    ) -> Result<Changed, ServiceError> {
        let login = check_login(login)?;
        check_new_password(new)?;
        if current.is_empty() {
            return Err(ServiceError::InvalidCredentials);
        }
        let refuse = |reason: &'static str| async move {
            self.audit("password.change", login, "failure", reason)
                .await;
            ServiceError::InvalidCredentials
        };
        // An unknown name, and a disabled account, go through the guard's steps too (under
        // a stand-in, without a bind): they are counted and paused like an account.
        let found = self.directory.find_user(login).await?;
        let disabled = found.as_ref().is_some_and(|u| u.disabled);
        let user = found.filter(|u| !u.disabled);
        let checked = match &user {
            Some(u) => self.check_password(u, current).await?,
            None => self.check_stand_in(login, current).await?,
        };
        let (state, user) = match (checked, user) {
            (
                SignIn::Checked(
                    s @ (BindOutcome::Ok | BindOutcome::MustChange | BindOutcome::Expired),
                ),
                Some(u),
            ) => (s, u),
            (SignIn::Paused(p), _) => {
                refuse("sign_in_paused").await;
                return Err(self.paused(p));
            }
            (SignIn::Checked(BindOutcome::Locked), _) => return Err(refuse("locked").await),
            (SignIn::Checked(BindOutcome::Disabled), _) => return Err(refuse("disabled").await),
            (SignIn::Checked(_), _) if disabled => return Err(refuse("disabled").await),
            (SignIn::Checked(_), _) => return Err(refuse("invalid_credentials").await),
        };
        if let Err(r) = self.password.check(new, &user.login, &user.display_name) {
            self.audit("password.change", login, "failure", r.reason())
                .await;
            return Err(ServiceError::PasswordRules(r));
        }
        if let Err(e) = self
            .directory
            .change_password(&user, current, new, state)
            .await
        {
            let e = ServiceError::from(e);
            self.audit("password.change", login, "failure", e.reason())
                .await;
            return Err(e);
        }
        let what = match state {
            BindOutcome::Expired => "password_change_expired",
            BindOutcome::MustChange => "password_change_required",
            _ => "password_change",
        };
        // The user's confirmed contacts hear of it (as of a reset), with the record, in one
        // batch.
        let outbox = match self.sspr().notify_users {
            true => self
                .store
                .registration(&user.id)
                .await?
                .map(|reg| {
                    self.contact_items(
                        &reg,
                        &crate::delivery::Notice::AccountRecovered {
                            what: crate::delivery::text::phrase::PASSWORD_CHANGED.into(),
                        },
                    )
                })
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let batch = Batch {
            outbox,
            audit: vec![self.audit_event("password.change", login, "success", what)],
            ..Batch::default()
        };
        if let Some(records) = self.store.commit(&batch).await? {
            for r in &records {
                self.forward_audit(r).await;
            }
        }
        if !batch.outbox.is_empty() {
            self.wake_outbox();
        }
        metrics::counter!("ssprd_password_changes_total", "state" => what).increment(1);
        Ok(Changed {
            was_expired: state == BindOutcome::Expired,
            was_must_change: state == BindOutcome::MustChange,
        })
    }
}
