//! Browser sessions, held server-side: the cookie carries only a random id (256 bits,
//! `__Host-` prefixed, HttpOnly, Secure, SameSite=Strict); the table keys them by the id's
//! SHA-256, so the ids themselves are not kept. Each session holds the chosen language, the
//! reset flow or sign-in in progress, a message for the next page and the last outcome.
//!
//! A browser gets an id at its first request, but nothing is stored for it until a
//! response needs state ([`Session::is_empty`]): pages that only show something (home, a
//! form, 403, 404, 429) store nothing, however many are asked for. Every form carries a
//! CSRF token derived from the id with a server key ([`CsrfKey`]), so a form works without a
//! stored session and a token is worth nothing with another id.
//!
//! The table is bounded, and filled fairly ([`Sessions::save`]): an address may hold
//! `per_address` sessions at most (its own oldest gives way); when the table is full the
//! oldest session that holds no flow or sign-in gives way, else the oldest of the address
//! holding the most — never the only session of an address while another holds more; when
//! nothing can give way the new session is refused. Every step is O(log n).

use crate::flow::reset::Challenge;
use crate::method::Method;
use crate::secret::Secret;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
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
    /// Wrong proofs left before the flow closes or the account is blocked.
    pub attempts_left: u32,
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
    pub lang: Option<&'static str>,
    pub flow: Option<Flow>,
    pub registration: Option<Registration>,
    pub flash: Option<Flash>,
    /// The user name a refused form carried, shown in it again with the flash (passwords
    /// are never kept).
    pub typed_login: Option<String>,
    /// What the last finished flow did (for the done page, shown once).
    pub done: Option<Done>,
}

impl Session {
    /// Nothing worth storing: a browser in this state needs no entry in the table.
    pub fn is_empty(&self) -> bool {
        self.lang.is_none()
            && self.flow.is_none()
            && self.registration.is_none()
            && self.flash.is_none()
            && self.typed_login.is_none()
            && self.done.is_none()
    }

    /// It holds a reset flow or a sign-in: worth more than a language or a message.
    fn holds_power(&self) -> bool {
        self.flow.is_some() || self.registration.is_some()
    }
}

/// The outcome shown on the done page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub purpose: Purpose,
    pub unlocked: bool,
}

/// The key every form's CSRF token is derived from (the store's server key `portal-csrf`,
/// so every daemon sharing a store derives the same tokens).
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The CSRF token of the browser whose cookie holds `id`.
    pub fn token(&self, id: &str) -> String {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"ssprd portal csrf\0");
        mac.update(id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `sent` is the token of `id` (compared in constant time).
    pub fn matches(&self, id: &str, sent: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.token(id).as_bytes().ct_eq(sent.as_bytes()))
    }
}

/// Why a session could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

type Key = [u8; 32];
/// A session's place in the age orders: last seen, then its key (unique).
type Aged = (Instant, Key);

struct Held {
    session: Session,
    last_seen: Instant,
    /// The client address it counts against (IPv6: the /64).
    addr: IpAddr,
}

/// The table and its indexes, kept in step under one lock.
#[derive(Default)]
struct Table {
    held: HashMap<Key, Held>,
    /// Every session, least recently seen first (expiry).
    by_age: BTreeSet<Aged>,
    /// Sessions holding neither a flow nor a sign-in, least recently seen first.
    light: BTreeSet<Aged>,
    /// Each address's sessions, least recently seen first.
    by_addr: HashMap<IpAddr, BTreeSet<Aged>>,
    /// Addresses by how many sessions they hold.
    load: BTreeSet<(usize, IpAddr)>,
}

impl Table {
    fn count(&self, addr: &IpAddr) -> usize {
        self.by_addr.get(addr).map_or(0, BTreeSet::len)
    }

    fn index(&mut self, k: Key, h: &Held) {
        let aged = (h.last_seen, k);
        self.by_age.insert(aged);
        if !h.session.holds_power() {
            self.light.insert(aged);
        }
        let n = self.count(&h.addr);
        self.load.remove(&(n, h.addr));
        self.by_addr.entry(h.addr).or_default().insert(aged);
        self.load.insert((n + 1, h.addr));
    }

    fn unindex(&mut self, k: Key, h: &Held) {
        let aged = (h.last_seen, k);
        self.by_age.remove(&aged);
        self.light.remove(&aged);
        let n = self.count(&h.addr);
        self.load.remove(&(n, h.addr));
        if let Some(set) = self.by_addr.get_mut(&h.addr) {
            set.remove(&aged);
            if set.is_empty() {
                self.by_addr.remove(&h.addr);
            } else {
                self.load.insert((n - 1, h.addr));
            }
        }
    }

    fn insert(&mut self, k: Key, h: Held) {
        if let Some(old) = self.held.remove(&k) {
            self.unindex(k, &old);
        }
        self.index(k, &h);
        self.held.insert(k, h);
    }

    fn remove(&mut self, k: &Key) -> Option<Held> {
        let h = self.held.remove(k)?;
        self.unindex(*k, &h);
        Some(h)
    }

    /// Drops the sessions last seen before `cutoff`; how many.
    fn expire(&mut self, cutoff: Instant) -> usize {
        let mut n = 0;
        while let Some(&(seen, k)) = self.by_age.first() {
            if seen >= cutoff {
                break;
            }
            self.remove(&k);
            n += 1;
        }
        n
    }

    /// Makes room for one more session of `addr`: its own oldest (a light one first) when
    /// it holds its share; when the table is full, the oldest light session, else the
    /// oldest of the address holding the most when that is more than `addr` holds.
    fn make_room(&mut self, addr: IpAddr, per_address: usize, capacity: usize) -> Result<(), Full> {
        let own = self.count(&addr);
        if own >= per_address {
            let set = &self.by_addr[&addr];
            let victim = set
                .iter()
                .find(|a| self.light.contains(a))
                .or_else(|| set.first())
                .map(|&(_, k)| k);
            if let Some(k) = victim {
                self.remove(&k);
            }
            return Ok(());
        }
        if self.held.len() < capacity {
            return Ok(());
        }
        if let Some(&(_, k)) = self.light.first() {
            self.remove(&k);
            return Ok(());
        }
        match self.load.last() {
            Some(&(n, heaviest)) if n > own + 1 => {
                let k = self.by_addr[&heaviest].first().map(|&(_, k)| k);
                if let Some(k) = k {
                    self.remove(&k);
                }
                Ok(())
            }
            _ => Err(Full),
        }
    }
}

/// The sessions of one portal.
pub struct Sessions {
    table: Mutex<Table>,
    idle: Duration,
    capacity: usize,
    per_address: usize,
}

/// A new random id (256 bits, URL-safe base64).
pub fn token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> Key {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle: Duration, capacity: usize, per_address: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            idle,
            capacity: capacity.max(1),
            per_address: per_address.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("sessions lock")
    }

    /// The stored session of cookie value `id`, when it is live (its idle time starts
    /// again).
    pub fn load(&self, id: &str) -> Option<Session> {
        let mut t = self.table();
        let k = key(id);
        let mut h = t.remove(&k)?;
        let now = Instant::now();
        if now.duration_since(h.last_seen) >= self.idle {
            return None;
        }
        h.last_seen = now;
        let session = h.session.clone();
        t.insert(k, h);
        Some(session)
    }

    /// Stores `session` under `id` for a browser at `addr` — a new one, or a change to a
    /// stored one; an empty session is not kept (its entry, if any, goes). A new session
    /// may make another give way (see the module doc), or be refused when none can.
    pub fn save(&self, id: &str, addr: IpAddr, session: Session) -> Result<(), Full> {
        let mut t = self.table();
        let k = key(id);
        if session.is_empty() {
            t.remove(&k);
            return Ok(());
        }
        let addr = crate::listener::address_key(addr);
        let now = Instant::now();
        if !t.held.contains_key(&k) {
            if t.held.len() >= self.capacity
                && let Some(cutoff) = now.checked_sub(self.idle)
            {
                t.expire(cutoff);
            }
            t.make_room(addr, self.per_address, self.capacity)?;
        }
        t.insert(
            k,
            Held {
                session,
                last_seen: now,
                addr,
            },
        );
        Ok(())
    }

    pub fn remove(&self, id: &str) {
        self.table().remove(&key(id));
    }

    /// Drops the sessions idle too long; how many are left.
    pub fn sweep(&self) -> usize {
        let mut t = self.table();
        if let Some(cutoff) = Instant::now().checked_sub(self.idle) {
            t.expire(cutoff);
        }
        t.held.len()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().held.len()
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

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn with_lang() -> Session {
        Session {
            lang: Some("de"),
            ..Session::default()
        }
    }

    fn with_flow(login: &str) -> Session {
        Session {
            flow: Some(Flow {
                id: Secret::new("flow"),
                purpose: Purpose::Reset,
                login: login.into(),
                required: 1,
                verified: 0,
                challenges: vec![],
                sent: vec![],
                ready: false,
                attempts_left: 3,
            }),
            ..Session::default()
        }
    }

    #[test]
    fn an_empty_session_is_not_stored_and_idle_ones_expire() {
        let s = Sessions::new(Duration::from_millis(200), 10, 10);
        s.save(&token(), ip(1), Session::default()).unwrap();
        assert_eq!(s.len(), 0, "nothing to keep");
        let a = token();
        s.save(&a, ip(1), with_lang()).unwrap();
        assert_eq!(s.load(&a).unwrap().lang, Some("de"));
        // Emptied again (a flow cancelled, a message shown): its entry goes.
        s.save(&a, ip(1), Session::default()).unwrap();
        assert!(s.load(&a).is_none());
        s.save(&a, ip(1), with_lang()).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(s.load(&a).is_none());
        assert_eq!(s.sweep(), 0);
    }

    #[test]
    fn an_address_over_its_share_gives_way_itself_light_sessions_first() {
        let s = Sessions::new(Duration::from_secs(60), 100, 3);
        let user = token();
        s.save(&user, ip(1), with_flow("user")).unwrap();
        let mine: Vec<String> = (0..3).map(|_| token()).collect();
        s.save(&mine[0], ip(2), with_flow("a")).unwrap();
        s.save(&mine[1], ip(2), with_lang()).unwrap();
        s.save(&mine[2], ip(2), with_flow("b")).unwrap();
        let more = token();
        s.save(&more, ip(2), with_flow("c")).unwrap();
        assert!(s.load(&mine[1]).is_none(), "its light session went first");
        assert!(s.load(&mine[0]).is_some());
        let again = token();
        s.save(&again, ip(2), with_flow("d")).unwrap();
        assert!(
            s.load(&mine[2]).is_none(),
            "then its least recently seen one"
        );
        assert!(s.load(&user).is_some(), "another address keeps its session");
        assert_eq!(s.len(), 4);
    }

    /// A full table: light sessions give way first, then the heaviest address's; the only
    /// session of an address is never taken for a newcomer, who is refused instead.
    #[test]
    fn a_full_table_takes_from_the_heaviest_address_and_never_from_a_lone_user() {
        let s = Sessions::new(Duration::from_secs(60), 4, 10);
        let user = token();
        s.save(&user, ip(1), with_flow("user")).unwrap();
        let light = token();
        s.save(&light, ip(3), with_lang()).unwrap();
        let flood: Vec<String> = (0..2).map(|_| token()).collect();
        for id in &flood {
            s.save(id, ip(2), with_flow("x")).unwrap();
        }
        // Full: a newcomer takes the light session's place.
        let newcomer = token();
        s.save(&newcomer, ip(4), with_flow("n")).unwrap();
        assert!(s.load(&light).is_none());
        // Full again: the flooding address (2 sessions) gives way.
        let second = token();
        s.save(&second, ip(5), with_flow("m")).unwrap();
        assert!(s.load(&flood[0]).is_none());
        assert!(s.load(&flood[1]).is_some());
        // Every address holds one: a newcomer is refused, nobody is signed out.
        assert_eq!(s.save(&token(), ip(6), with_flow("o")), Err(Full));
        for id in [&user, &newcomer, &second, &flood[1]] {
            assert!(s.load(id).is_some());
        }
        // A stored session still changes.
        s.save(&user, ip(1), with_flow("user again")).unwrap();
        assert_eq!(s.load(&user).unwrap().flow.unwrap().login, "user again");
    }

    /// Filling a full table stays cheap: no step scans it.
    #[test]
    fn ten_thousand_newcomers_on_a_full_table() {
        let s = Sessions::new(Duration::from_secs(60), 1_000, 10_000);
        let user = token();
        s.save(&user, ip(1), with_flow("user")).unwrap();
        for i in 0..10_000u32 {
            let addr = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            let _ = s.save(&token(), addr, with_lang());
        }
        assert_eq!(s.len(), 1_000);
        assert!(s.load(&user).is_some(), "light sessions never evict a flow");
    }

    #[test]
    fn csrf_tokens_belong_to_one_id() {
        let k = CsrfKey::new([7; 32]);
        let (a, b) = (token(), token());
        let t = k.token(&a);
        assert!(k.matches(&a, &t));
        assert!(!k.matches(&b, &t));
        assert!(!k.matches(&a, ""));
        assert!(!CsrfKey::new([8; 32]).matches(&a, &t));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_carries_its_attributes() {
        let id = token();
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
