//! Browser sessions, held server-side: the cookie carries only a random id (256 bits,
//! `__Host-` prefixed, HttpOnly, Secure, SameSite=Strict); the map keys them by the id's
//! SHA-256, so the ids themselves are not kept. Each session holds its CSRF token, the
//! chosen language, the reset flow in progress and a message for the next page. A session
//! idle longer than its limit is gone; when the map is full the longest idle one gives way.

use crate::flow::reset::Challenge;
use crate::method::Method;
use crate::secret::Secret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name (the `__Host-` prefix: Secure, no Domain, Path=/).
pub const COOKIE: &str = "__Host-ssprd";

/// What a reset or unlock is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Reset,
    Unlock,
    /// A change of a known (or expired, or must-change) password.
    Change,
}

/// A reset flow in progress in this browser.
#[derive(Clone)]
pub struct Flow {
    pub id: Secret,
    pub purpose: Purpose,
    pub login: String,
    pub required: u32,
    pub verified: u32,
    pub challenges: Vec<Challenge>,
    /// Code methods a code was sent for.
    pub sent: Vec<Method>,
    /// All the methods the policy asks for are verified.
    pub ready: bool,
}

/// A signed-in registration ("My methods") in this browser.
#[derive(Clone)]
pub struct Registration {
    pub token: Secret,
    pub login: String,
    /// Contacts added and waiting for their code.
    pub pending: Vec<crate::method::contact::ContactKind>,
    /// An authenticator enrolment waiting for its first code: the QR code (PNG) and the
    /// key for typing in.
    pub enrolment: Option<(Vec<u8>, Secret)>,
}

/// A message for the next page: an error to show with the field it concerns, or a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flash {
    Problem {
        /// The machine-readable reason.
        reason: String,
        /// The message's key in the language files.
        key: String,
        field: Option<String>,
        args: Vec<(&'static str, String)>,
    },
    Notice {
        key: &'static str,
        args: Vec<(&'static str, String)>,
    },
}

impl Flash {
    /// A problem whose text is `reason-<reason>`, without arguments.
    pub fn problem(reason: &str, field: Option<&str>) -> Self {
        Flash::Problem {
            reason: reason.to_string(),
            key: format!("reason-{reason}"),
            field: field.map(str::to_string),
            args: Vec::new(),
        }
    }
}

/// One browser's state.
#[derive(Clone, Default)]
pub struct Session {
    /// The token every form of this session carries.
    pub csrf: Secret,
    pub lang: Option<&'static str>,
    pub flow: Option<Flow>,
    pub registration: Option<Registration>,
    pub flash: Option<Flash>,
    /// What the last finished flow did (for the done page).
    pub done: Option<Done>,
}

/// The outcome shown on the done page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub purpose: Purpose,
    pub unlocked: bool,
}

struct Held {
    session: Session,
    last_seen: Instant,
}

/// The sessions of one portal.
pub struct Sessions {
    held: Mutex<HashMap<[u8; 32], Held>>,
    idle: Duration,
    capacity: usize,
}

/// A new random token (256 bits, URL-safe base64).
pub fn token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle: Duration, capacity: usize) -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            idle,
            capacity,
        }
    }

    /// The session of cookie value `id`, when it is live (its idle time starts again).
    pub fn load(&self, id: &str) -> Option<Session> {
        let mut held = self.held.lock().expect("sessions lock");
        let k = key(id);
        let live = held
            .get(&k)
            .is_some_and(|h| h.last_seen.elapsed() < self.idle);
        if !live {
            held.remove(&k);
            return None;
        }
        let h = held.get_mut(&k)?;
        h.last_seen = Instant::now();
        Some(h.session.clone())
    }

    /// Stores `session` under `id` (a new one, or a change to a live one).
    pub fn save(&self, id: &str, session: Session) {
        let mut held = self.held.lock().expect("sessions lock");
        let k = key(id);
        if !held.contains_key(&k) && held.len() >= self.capacity {
            let now = Instant::now();
            held.retain(|_, h| now.duration_since(h.last_seen) < self.idle);
            if held.len() >= self.capacity
                && let Some(oldest) = held
                    .iter()
                    .min_by_key(|(_, h)| h.last_seen)
                    .map(|(k, _)| *k)
            {
                held.remove(&oldest);
            }
        }
        held.insert(
            k,
            Held {
                session,
                last_seen: Instant::now(),
            },
        );
    }

    /// A new session: its cookie value and its state (not stored until saved).
    pub fn create(&self, lang: Option<&'static str>) -> (String, Session) {
        let session = Session {
            csrf: Secret::new(token()),
            lang,
            ..Session::default()
        };
        (token(), session)
    }

    pub fn remove(&self, id: &str) {
        self.held.lock().expect("sessions lock").remove(&key(id));
    }

    /// Drops the sessions idle too long; how many are left.
    pub fn sweep(&self) -> usize {
        let mut held = self.held.lock().expect("sessions lock");
        let now = Instant::now();
        held.retain(|_, h| now.duration_since(h.last_seen) < self.idle);
        held.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().expect("sessions lock").len()
    }
}

/// The `Set-Cookie` value for session `id`.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The session id in a request's `Cookie` headers.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_the_oldest_gives_way() {
        let s = Sessions::new(Duration::from_millis(200), 2);
        let (a, sa) = s.create(Some("de"));
        s.save(&a, sa);
        let (b, sb) = s.create(None);
        s.save(&b, sb);
        assert_eq!(s.load(&a).unwrap().lang, Some("de"));
        let (c, sc) = s.create(None);
        s.save(&c, sc);
        assert_eq!(s.len(), 2);
        assert!(s.load(&b).is_none(), "b was idle the longest");
        assert!(s.load(&a).is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert!(s.load(&a).is_none());
        assert_eq!(s.sweep(), 0);
    }

    #[test]
    fn the_cookie_is_found_among_others_and_carries_its_attributes() {
        let (id, _) = Sessions::new(Duration::from_secs(1), 1).create(None);
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            format!("a=b; {COOKIE}={id}; c=d").parse().unwrap(),
        );
        assert_eq!(cookie_of(&h).as_deref(), Some(id.as_str()));
        let set = set_cookie(&id);
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        h.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}=short").parse().unwrap(),
        );
        assert_eq!(cookie_of(&h), None);
    }
}
