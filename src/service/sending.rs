//! Reset codes are delivered off the request path. SendCode hands the message to a
//! background task and waits for it no longer than the uniform response time, then answers
//! with what it knows: handed over, refused, or still pending. A decoy flow's "delivery"
//! copies how real deliveries of the same method went lately — how long they took and
//! whether the provider was reachable — so neither the answer nor its timing tells a real
//! account from a decoy, even while a provider is slow or down.
//!
//! A failure that comes after SendCode answered is recorded on the flow's code
//! ([`Undelivered`]) and reported by the next VerifyMethod for that method. Codes are never
//! written to the store in clear, so a delivery in progress when the daemon stops is lost;
//! the user asks for another code.

use super::Service;
use crate::delivery::{Channel, Content, Deliver, DeliveryError};
use crate::method::Method;
use crate::store::{Store, TokenHash, Undelivered};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::warn;

/// How many recent real deliveries per method a decoy draws from.
const RECENT: usize = 16;

/// What one delivery attempt comes to.
pub(super) type Outcome = Result<(), Undelivered>;

/// Per method, how recent real deliveries went: how long each took and its outcome.
type Recent = Mutex<HashMap<Method, VecDeque<(Duration, Outcome)>>>;

/// Background code deliveries and the recent history decoys imitate.
#[derive(Default)]
pub(super) struct Deliveries {
    tasks: Mutex<JoinSet<()>>,
    recent: Arc<Recent>,
}

/// What to deliver.
pub(super) enum Job {
    Real {
        to: Channel,
        content: Content,
        /// The user's language (`None`: the configured default).
        language: Option<String>,
    },
    /// Nothing is sent; the outcome and its delay are drawn from recent real deliveries.
    Decoy,
}

/// Where a late failure is written: the code of `method` with this MAC in flow `flow`.
pub(super) struct Target {
    pub flow: TokenHash,
    pub method: Method,
    pub mac: String,
}

impl From<&DeliveryError> for Undelivered {
    fn from(e: &DeliveryError) -> Self {
        match e {
            DeliveryError::Unavailable(_) => Self::Unavailable,
            DeliveryError::Refused(_) => Self::Refused,
            DeliveryError::NotConfigured(_) => Self::NotConfigured,
        }
    }
}

impl Deliveries {
    /// Stops deliveries still running (at shutdown, so the store can close).
    pub(super) async fn stop(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("lock"));
        tasks.shutdown().await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().expect("lock");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }
}

/// A decoy's imitation of real deliveries of `method`: the outcome of the latest one (a
/// provider that is down now fails decoys too) after the delay of a random recent one with
/// that outcome. A refusal is about one address, so a decoy imitates it as a success.
fn imitate(recent: &Recent, method: Method) -> (Duration, Outcome) {
    use rand::seq::IndexedRandom;
    let normal = |o: Outcome| match o {
        Err(Undelivered::Refused) => Ok(()),
        o => o,
    };
    let recent = recent.lock().expect("lock");
    let Some(&(latest_delay, latest)) = recent.get(&method).and_then(|p| p.back()) else {
        return (Duration::ZERO, Ok(()));
    };
    let outcome = normal(latest);
    let alike: Vec<Duration> = recent[&method]
        .iter()
        .filter(|(_, o)| normal(*o) == outcome)
        .map(|(d, _)| *d)
        .collect();
    let delay = alike
        .choose(&mut rand::rng())
        .copied()
        .unwrap_or(latest_delay);
    (delay, outcome)
}

/// Marks the target code undelivered, unless it was replaced, used or the flow ended.
async fn note_undelivered(store: &dyn Store, t: &Target, why: Undelivered) {
    for _ in 0..8 {
        let flow = match store.flow(&t.flow).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "could not record an undelivered code");
                return;
            }
        };
        let mut next = flow.clone();
        let Some(code) = next
            .codes
            .iter_mut()
            .find(|c| c.method == t.method && c.mac == t.mac)
        else {
            return;
        };
        code.undelivered = Some(why);
        match store.swap_flow(&t.flow, &flow, &next).await {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                warn!(error = %e, "could not record an undelivered code");
                return;
            }
        }
    }
}

impl Service {
    /// Starts delivering a reset code in the background; the receiver gets the outcome
    /// once the provider has answered (a late failure is also recorded on the flow).
    pub(super) fn deliver_code(&self, target: Target, job: Job) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let (store, deliver) = (self.store.clone(), self.deliver.clone());
        let recent = self.deliveries.recent.clone();
        self.deliveries.spawn(async move {
            let outcome = match job {
                Job::Real {
                    to,
                    content,
                    language,
                } => {
                    let started = tokio::time::Instant::now();
                    let outcome = deliver_once(&*deliver, &to, &content, language.as_deref()).await;
                    let mut recent = recent.lock().expect("lock");
                    let past = recent.entry(target.method).or_default();
                    if past.len() == RECENT {
                        past.pop_front();
                    }
                    past.push_back((started.elapsed(), outcome));
                    outcome
                }
                Job::Decoy => {
                    let (delay, outcome) = imitate(&recent, target.method);
                    tokio::time::sleep(delay).await;
                    outcome
                }
            };
            if let Err(why) = outcome {
                note_undelivered(&*store, &target, why).await;
            }
            let _ = tx.send(outcome);
        });
        rx
    }
}

async fn deliver_once(
    deliver: &dyn Deliver,
    to: &Channel,
    content: &Content,
    language: Option<&str>,
) -> Outcome {
    let id = super::new_token();
    deliver
        .deliver(to, content, language, &id)
        .await
        .map_err(|e| {
            warn!(error = %e, "code delivery failed");
            Undelivered::from(&e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_imitate_recent_real_deliveries() {
        let recent = Mutex::new(HashMap::new());
        assert_eq!(
            imitate(&recent, Method::Email),
            (Duration::ZERO, Ok(())),
            "nothing to imitate yet"
        );
        let slow = Duration::from_millis(700);
        recent.lock().unwrap().insert(
            Method::Email,
            VecDeque::from([(slow, Err(Undelivered::Unavailable))]),
        );
        assert_eq!(
            imitate(&recent, Method::Email),
            (slow, Err(Undelivered::Unavailable))
        );
        assert_eq!(imitate(&recent, Method::MobileSms).1, Ok(()), "per method");
        recent.lock().unwrap().insert(
            Method::MobileSms,
            VecDeque::from([(slow, Err(Undelivered::Refused))]),
        );
        assert_eq!(
            imitate(&recent, Method::MobileSms),
            (slow, Ok(())),
            "a refusal concerns one number: decoys do not copy it"
        );
        // The latest outcome decides; the delay is one of those with that outcome.
        let fast = Duration::from_millis(20);
        recent.lock().unwrap().insert(
            Method::Email,
            VecDeque::from([
                (fast, Ok(())),
                (slow, Err(Undelivered::Unavailable)),
                (fast, Ok(())),
            ]),
        );
        for _ in 0..20 {
            assert_eq!(imitate(&recent, Method::Email), (fast, Ok(())));
        }
    }
}
