//! Compare-and-swap updates of stored records, with one conflict policy: when another
//! writer got there first, read the record again, decide again from what is stored now, and
//! try again — at most [`ATTEMPTS`] times, then [`ServiceError::Contended`] (ABORTED /
//! `CONCURRENT_UPDATE`), never an endless loop.
//!
//! Each update is a loop of read → decide → swap that calls [`Races::lost`] when its swap
//! loses. Used for updates whose decision can be taken again from the fresh record
//! (contacts and methods, an authenticator step, clearing, completing or closing a flow). A
//! proof — an answer, a code — is not re-decided: its call reports the race as the flow
//! having changed (see `service::reset`), after counting the guess.

use super::ServiceError;

/// Tries of one update, the first included.
pub const ATTEMPTS: u32 = 16;

/// The lost races of one update.
pub struct Races {
    record: &'static str,
    lost: u32,
}

impl Races {
    /// A new update of a `record` (named in the log when it gives up).
    pub fn new(record: &'static str) -> Self {
        Self { record, lost: 0 }
    }

    /// The swap lost: go round again, or give up after [`ATTEMPTS`] tries.
    pub async fn lost(&mut self) -> Result<(), ServiceError> {
        self.lost += 1;
        if self.lost >= ATTEMPTS {
            tracing::warn!(
                record = self.record,
                tries = ATTEMPTS,
                "an update lost every race; gave up"
            );
            return Err(ServiceError::Contended);
        }
        tokio::task::yield_now().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lost_races_are_retried_then_given_up() {
        let mut races = Races::new("test");
        for _ in 1..ATTEMPTS {
            races.lost().await.expect("another try");
        }
        assert!(matches!(races.lost().await, Err(ServiceError::Contended)));
    }
}
