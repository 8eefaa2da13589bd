//! Kept-open LDAP connections, so a reset does not pay a TCP and TLS handshake (and a
//! service bind) per directory operation.
//!
//! [`LdapDirectory`](super::ldap::LdapDirectory) keeps two pools of the same shape: one of
//! connections bound as the service account, and one used for nothing but binds with a
//! user's password (a user bind never happens on a service connection, and nothing but
//! binds is ever sent on a user-bind connection).
//!
//! - **Bounded**: at most `size` connections per pool are open, busy or idle; a caller
//!   waits for one within its operation's timeout.
//! - **Health-checked**: a connection is reused only when its driver is still running; one
//!   idle for longer than [`CHECK_AFTER_IDLE`] must answer a Who am I? first; one idle for
//!   longer than [`MAX_IDLE`] or older than its lifetime is closed instead (directories and
//!   firewalls drop idle connections: AD after 15 minutes by default).
//! - **Failover**: a new connection tries the URIs in order (see `connect`); one to a later
//!   URI lives only [`FALLBACK_LIFETIME`], so the pool returns to the first URI once it is
//!   back.
//! - **Discard on doubt**: a connection goes back to the pool only when its operation ended
//!   with an answer from the server. An error, a timeout or a cancelled call drops it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// An idle connection older than this answers a Who am I? before it is reused.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed instead of reused.
pub const MAX_IDLE: Duration = Duration::from_secs(120);
/// A connection to the first URI is replaced after this long.
pub const LIFETIME: Duration = Duration::from_secs(600);
/// A connection to a later URI (after a failover) is replaced after this long.
pub const FALLBACK_LIFETIME: Duration = Duration::from_secs(30);

/// A connection with its history.
pub struct Entry<C> {
    pub conn: C,
    /// Index of the URI it was opened to.
    pub uri: usize,
    pub opened: Instant,
    pub idle_since: Instant,
}

impl<C> Entry<C> {
    pub fn new(conn: C, uri: usize, now: Instant) -> Self {
        Self {
            conn,
            uri,
            opened: now,
            idle_since: now,
        }
    }
}

/// What to do with an idle connection taken from the pool (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Use it as it is.
    Use,
    /// Use it if it answers a cheap request first.
    Check,
    /// Close it.
    Close,
}

/// Decides whether an idle connection may serve the next operation.
pub fn reuse(uri: usize, opened: Instant, idle_since: Instant, now: Instant) -> Reuse {
    let lifetime = if uri == 0 {
        LIFETIME
    } else {
        FALLBACK_LIFETIME
    };
    let idle = now.saturating_duration_since(idle_since);
    if now.saturating_duration_since(opened) >= lifetime || idle >= MAX_IDLE {
        Reuse::Close
    } else if idle >= CHECK_AFTER_IDLE {
        Reuse::Check
    } else {
        Reuse::Use
    }
}

/// A bounded set of connections of one kind.
///
/// Its use is measured: `ssprd_ldap_pool_connections{pool, state}` — `idle` connections
/// waiting, `busy` holders (an operation running or a connection being opened).
pub struct Pool<C> {
    name: &'static str,
    idle: Mutex<Vec<Entry<C>>>,
    permits: Semaphore,
    busy: AtomicUsize,
}

/// The right to hold one of a pool's connections; gives it back when dropped.
pub struct Permit<'a> {
    busy: &'a AtomicUsize,
    name: &'static str,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = self.busy.fetch_sub(1, Ordering::SeqCst) - 1;
        gauge(self.name, "busy", now);
    }
}

fn gauge(pool: &'static str, state: &'static str, n: usize) {
    metrics::gauge!("ssprd_ldap_pool_connections", "pool" => pool, "state" => state).set(n as f64);
}

impl<C> Pool<C> {
    /// A pool of at most `size` connections, named `name` in the metrics.
    pub fn new(name: &'static str, size: usize) -> Self {
        Self {
            name,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
            busy: AtomicUsize::new(0),
        }
    }

    /// Waits for the right to hold a connection (callers bound the wait by their timeout).
    pub async fn permit(&self) -> Permit<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        gauge(
            self.name,
            "busy",
            self.busy.fetch_add(1, Ordering::SeqCst) + 1,
        );
        Permit {
            busy: &self.busy,
            name: self.name,
            _permit: permit,
        }
    }

    /// The most recently used idle connection, if any.
    pub fn take_idle(&self) -> Option<Entry<C>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let taken = idle.pop();
        gauge(self.name, "idle", idle.len());
        taken
    }

    /// Puts a connection back after an operation the server answered.
    pub fn put_back(&self, mut entry: Entry<C>, now: Instant) {
        entry.idle_since = now;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(entry);
        gauge(self.name, "idle", idle.len());
    }

    /// Idle connections now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_by_age_and_idleness() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (uri, opened ago, idle for) -> decision
        let table = [
            (0, s(0), s(0), Reuse::Use),
            (0, s(100), s(4), Reuse::Use),
            (0, s(100), s(5), Reuse::Check),
            (0, s(200), s(119), Reuse::Check),
            (0, s(200), s(120), Reuse::Close),
            (0, s(599), s(1), Reuse::Use),
            (0, s(600), s(1), Reuse::Close),
            (1, s(29), s(1), Reuse::Use),
            (1, s(30), s(1), Reuse::Close),
            (2, s(10), s(6), Reuse::Check),
        ];
        for (uri, opened_ago, idle_for, want) in table {
            let now = t0 + s(1000);
            assert_eq!(
                reuse(uri, now - opened_ago, now - idle_for, now),
                want,
                "uri {uri}, opened {opened_ago:?} ago, idle {idle_for:?}"
            );
        }
    }

    #[tokio::test]
    async fn at_most_size_holders_and_last_in_first_out() {
        let pool: Pool<u32> = Pool::new("test", 2);
        let a = pool.permit().await;
        let _b = pool.permit().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), pool.permit())
                .await
                .is_err(),
            "a third holder waits"
        );
        drop(a);
        let _c = pool.permit().await;
        let now = Instant::now();
        pool.put_back(Entry::new(1, 0, now), now);
        pool.put_back(Entry::new(2, 0, now), now);
        assert_eq!(pool.idle_count(), 2);
        assert_eq!(pool.take_idle().map(|e| e.conn), Some(2));
        assert_eq!(pool.take_idle().map(|e| e.conn), Some(1));
        assert!(pool.take_idle().is_none());
    }
}
