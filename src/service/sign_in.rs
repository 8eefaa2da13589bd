//! The sign-in guard: the one way ssprd checks a user's current password. Before a bind as
//! the user it reads the directory's lockout for that user, takes the check from the
//! account's sign-in budget in the store (see [`crate::lockout`]), and afterwards records
//! the outcome. When the budget is used up the account is blocked from sign-in for the
//! window — no bind, and the caller answers the same generic error as for a wrong password —
//! so nobody can lock a directory account through ssprd by guessing.

use super::{Service, ServiceError};
use crate::directory::{BindOutcome, DirectoryUser};
use crate::lockout::{self, BindResult, Taken};
use crate::secret::Secret;
use tracing::warn;

/// The outcome of a guarded password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The directory answered the bind.
    Checked(BindOutcome),
    /// The guard refused to bind: the account's sign-in budget is used up (blocked), or
    /// the rest of it is taken by checks in progress.
    Refused,
}

impl Service {
    /// Checks `password` for `user` by a bind, through the guard. Empty passwords and
    /// passwords with NUL never reach the directory.
    pub(crate) async fn check_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
    ) -> Result<SignIn, ServiceError> {
        if password.is_empty() || password.expose().contains('\0') {
            return Ok(SignIn::Checked(BindOutcome::InvalidCredentials));
        }
        let now = self.now();
        // A blocked account is answered without touching the directory.
        if lockout::blocked(&self.store.counters(&user.id).await?.sign_in, now) {
            return Ok(SignIn::Refused);
        }
        let state = self.directory.lockout(user).await?;
        if state.threshold.is_none() {
            warn!(
                assumed = lockout::ASSUMED_THRESHOLD,
                "the directory's lockout policy cannot be read by the service account; \
                 assuming the lowest common threshold"
            );
        }
        let budget = lockout::budget(&state, &self.sign_in);
        let id: u64 = rand::random();
        let counters = self
            .store
            .update_counters(&user.id, &move |mut c| {
                c.sign_in = lockout::take(c.sign_in, id, now, &budget, state.failures);
                c
            })
            .await?;
        match lockout::taken(&counters.sign_in, id, now) {
            Taken::Granted => {}
            Taken::Blocked => {
                self.audit(
                    "sign_in.blocked",
                    &user.login,
                    "blocked",
                    "lockout_threshold_near",
                )
                .await;
                return Ok(SignIn::Refused);
            }
            Taken::Busy => return Ok(SignIn::Refused),
        }
        let outcome = self.directory.bind_as_user(&user.dn, password).await;
        let result = match &outcome {
            Ok(BindOutcome::Ok | BindOutcome::MustChange | BindOutcome::Expired) => {
                BindResult::Right
            }
            Ok(BindOutcome::Locked | BindOutcome::Disabled) => BindResult::Neutral,
            // A wrong password, or an outcome the directory may have counted (a timeout).
            Ok(BindOutcome::InvalidCredentials) | Err(_) => BindResult::Wrong,
        };
        let settled_at = self.now();
        let after = self
            .store
            .update_counters(&user.id, &move |mut c| {
                c.sign_in = lockout::settle(c.sign_in, id, result, settled_at, &budget);
                c
            })
            .await?;
        if result == BindResult::Wrong && lockout::blocked(&after.sign_in, settled_at) {
            self.audit(
                "sign_in.blocked",
                &user.login,
                "blocked",
                "lockout_threshold_near",
            )
            .await;
        }
        Ok(SignIn::Checked(outcome?))
    }
}
