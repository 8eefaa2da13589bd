//! The sign-in guard: the one way ssprd checks a user's current password. Before a bind as
//! the user it reads the directory's lockout for that user, takes the check from the
//! account's sign-in budget in the store (see [`crate::lockout`]), and afterwards records
//! the outcome. When the budget is used up, password sign-in is paused for the account —
//! no bind, and the caller says so and for how long — so nobody can lock a directory
//! account through ssprd by guessing. A name the directory does not know (or a disabled
//! account) goes through the same steps under a stand-in key, without a bind, and is
//! paused after the same count: the pause tells nothing about which accounts exist.

use super::{Service, ServiceError};
use crate::directory::{BindOutcome, DirectoryUser};
use crate::lockout::{self, BindResult, Pause, Taken};
use crate::secret::Secret;
use tracing::warn;

/// The outcome of a guarded password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The directory answered the bind (a stand-in: as for a wrong password).
    Checked(BindOutcome),
    /// The guard did not bind: password sign-in is paused for the account (its budget is
    /// used up, or the rest of it is taken by checks in progress).
    Paused(Pause),
}

/// Checks in progress hold the rest of an account's budget: try again this much later.
const BUSY_RETRY_SECS: u64 = 5;

/// Whose password is checked.
enum Subject<'a> {
    Account(&'a DirectoryUser),
    /// A name the directory does not know, or a disabled account: never bound.
    StandIn(DirectoryUser),
}

impl Service {
    /// Checks `password` for `user` by a bind, through the guard. Empty passwords and
    /// passwords with NUL never reach the directory.
    pub(crate) async fn check_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
    ) -> Result<SignIn, ServiceError> {
        self.guarded(Subject::Account(user), password).await
    }

    /// The guard's steps for `login`, a name the directory does not know or a disabled
    /// account: counted and paused like an account, never bound, always wrong.
    pub(crate) async fn check_stand_in(
        &self,
        login: &str,
        password: &Secret,
    ) -> Result<SignIn, ServiceError> {
        self.guarded(Subject::StandIn(self.stand_in(login)), password)
            .await
    }

    /// What [`SignIn::Paused`] answers: the pause's reason with how long it lasts.
    pub(crate) fn paused(&self, pause: Pause) -> ServiceError {
        ServiceError::SignInPaused {
            retry_after_secs: match pause {
                Pause::Until(t) => Some(t.saturating_sub(self.now()).max(1)),
                Pause::UntilReset => None,
            },
        }
    }

    async fn guarded(&self, who: Subject<'_>, password: &Secret) -> Result<SignIn, ServiceError> {
        if password.is_empty() || password.expose().contains('\0') {
            return Ok(SignIn::Checked(BindOutcome::InvalidCredentials));
        }
        let user = match &who {
            Subject::Account(u) => *u,
            Subject::StandIn(u) => u,
        };
        let stand_in = matches!(who, Subject::StandIn(_));
        let now = self.now();
        // A paused account is answered without touching the directory.
        if let Some(p) = lockout::pause(&self.store.counters(&user.id).await?.sign_in, now) {
            return Ok(SignIn::Paused(p));
        }
        // A stand-in reads the policy a new account would have (its DN names nothing).
        let state = self.directory.lockout(user).await?;
        if state.threshold.is_none() {
            warn!(
                assumed = lockout::ASSUMED_THRESHOLD,
                "the directory's lockout policy cannot be read by the service account; \
                 assuming the lowest common threshold"
            );
        }
        let budget = lockout::budget(&state, &self.sign_in);
        let (id, run): (u64, u64) = (rand::random(), self.run);
        let counters = self
            .store
            .update_counters(&user.id, &move |mut c| {
                // A stand-in's failures count as a directory that keeps them would.
                let directory = match (stand_in, budget.directory_forgets) {
                    (false, _) => state.failures,
                    (true, false) => Some(c.sign_in.unforgotten),
                    (true, true) => None,
                };
                c.sign_in = lockout::take(c.sign_in, id, run, now, &budget, directory);
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
                let p = lockout::pause(&counters.sign_in, now).unwrap_or(Pause::UntilReset);
                return Ok(SignIn::Paused(p));
            }
            Taken::Busy => return Ok(SignIn::Paused(Pause::Until(now + BUSY_RETRY_SECS))),
        }
        let outcome = match who {
            Subject::Account(u) => self.directory.bind_as_user(&u.dn, password).await,
            Subject::StandIn(_) => Ok(BindOutcome::InvalidCredentials),
        };
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
