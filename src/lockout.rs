//! The sign-in guard's decisions (pure: time and data in, counters out). Every check of a
//! user's password by a bind goes through the guard (`service::sign_in`), which keeps the
//! failed binds ssprd causes below the directory's own lockout threshold, so that nobody who
//! can reach the API can lock a directory account through ssprd.
//!
//! Per account, in the store (so the count holds across clients, and later daemons): the
//! failed sign-ins within a window, the sign-ins being checked now, and a block. A sign-in
//! may bind only when the failures already counted — ssprd's own or the directory's,
//! whichever is more — plus those being checked stay below the account's budget: the
//! directory's threshold minus a margin (or ssprd's own cap when the directory never
//! locks). When the failures reach the budget the account is blocked from sign-in for the
//! window, without a bind, and the caller says that password sign-in is paused and for
//! how long — until the window ends, or, when the directory counts failures until the next
//! successful bind (ppolicy `pwdFailureCountInterval: 0`), until the password is reset (a
//! reset clears the directory's count) or an administrator clears the block. Names the
//! directory does not know are counted alike, under a stand-in key, so the pause tells
//! nothing about which accounts exist.

use crate::directory::Lockout;
use crate::problems::Problems;
use crate::store::{PendingAttempt, SignInCounters};
use serde::{Deserialize, Serialize};

/// The threshold assumed when the directory's lockout policy cannot be read: the lowest in
/// common use. Grant the service account read access to the policy instead of relying on it.
pub const ASSUMED_THRESHOLD: u32 = 3;

/// A sign-in check not settled after this long was interrupted: it counts as a failure.
pub const STALE_SECS: u64 = 120;

/// The administrator's settings (`[sign_in]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInPolicy {
    /// Failed binds ssprd stays below the directory's threshold (at least 1).
    pub lockout_margin: u32,
    /// Failed sign-ins allowed when the directory never locks accounts.
    pub max_failures: u32,
    /// The shortest block, and the window of ssprd's own count when the directory counts
    /// failures until the next successful bind.
    pub block_secs: u64,
}

/// How many failed sign-ins may exist for an account before ssprd stops binding, and how
/// long a failure counts (and a block lasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub failures: u32,
    pub window_secs: u64,
    /// The directory forgets failures after a window of its own (or never locks): a block
    /// ends with ssprd's window. When it does not, a block lasts until the password is
    /// reset or an administrator clears it.
    pub directory_forgets: bool,
}

/// The budget under the directory's lockout: its threshold minus the margin — at least one
/// failure when the threshold is 2 or more, none when the directory locks at the first
/// failed bind — or ssprd's own cap when the directory never locks.
pub fn budget(lockout: &Lockout, p: &SignInPolicy) -> Budget {
    let failures = match lockout.threshold.unwrap_or(ASSUMED_THRESHOLD) {
        0 => p.max_failures,
        1 => 0,
        t => t.saturating_sub(p.lockout_margin).max(1),
    };
    Budget {
        failures,
        window_secs: lockout.window_secs.max(p.block_secs),
        directory_forgets: lockout.window_secs > 0 || lockout.threshold == Some(0),
    }
}

/// Blocks sign-in from `now` for the window (and, when the directory does not forget
/// failures, until the password is reset).
fn block(c: &mut SignInCounters, now: u64, b: &Budget) {
    c.blocked_until = c.blocked_until.max(now + b.window_secs);
    c.until_reset = !b.directory_forgets;
}

/// How long sign-in stays paused for the account, when it is paused at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Until this Unix time.
    Until(u64),
    /// Until the password is reset or an administrator clears it (the directory keeps
    /// counting the failures until then).
    UntilReset,
}

/// The pause in force at `now`, if any.
pub fn pause(c: &SignInCounters, now: u64) -> Option<Pause> {
    blocked(c, now).then_some(if c.until_reset {
        Pause::UntilReset
    } else {
        Pause::Until(c.blocked_until)
    })
}

/// Whether sign-in is blocked for the account at `now`.
pub fn blocked(c: &SignInCounters, now: u64) -> bool {
    c.blocked_until > now
}

/// The outcome of [`take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The bind may go ahead; settle with the same id afterwards.
    Granted,
    /// Blocked (before, or from now on): no bind.
    Blocked,
    /// Other checks of this account are in progress and use the rest of the budget: no
    /// bind, no block.
    Busy,
}

/// Drops failures older than the window; interrupted checks become failures.
fn prune(c: &mut SignInCounters, now: u64, b: &Budget) {
    let stale: Vec<PendingAttempt> = c
        .pending
        .iter()
        .copied()
        .filter(|a| a.at + STALE_SECS <= now)
        .collect();
    c.pending.retain(|a| a.at + STALE_SECS > now);
    c.failures.extend(stale.iter().map(|a| a.at));
    c.failures.retain(|&t| t + b.window_secs > now);
}

/// Takes a sign-in check `id` from the account's budget, given the failures the directory
/// counts now (`directory_failures`, when it could be read). Apply atomically
/// (compare-and-swap); [`taken`] tells the outcome from the result.
pub fn take(
    mut c: SignInCounters,
    id: u64,
    owner: u64,
    now: u64,
    b: &Budget,
    directory_failures: Option<u32>,
) -> SignInCounters {
    prune(&mut c, now, b);
    if blocked(&c, now) {
        return c;
    }
    let counted = (c.failures.len() as u32).max(directory_failures.unwrap_or(0));
    if counted >= b.failures {
        block(&mut c, now, b);
    } else if counted + (c.pending.len() as u32) < b.failures {
        c.pending.push(PendingAttempt { id, at: now, owner });
    }
    c
}

/// What [`take`] decided for `id`, from the counters it returned.
pub fn taken(c: &SignInCounters, id: u64, now: u64) -> Taken {
    if c.pending.iter().any(|a| a.id == id) {
        Taken::Granted
    } else if blocked(c, now) {
        Taken::Blocked
    } else {
        Taken::Busy
    }
}

/// How a bind turned out, for the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindResult {
    /// The password was right: the directory forgets earlier failures, and so does ssprd
    /// (those recorded before this check began).
    Right,
    /// The password was wrong, or the outcome is unknown (a timeout): a failure.
    Wrong,
    /// Neither (a locked or disabled account, which the directory does not count).
    Neutral,
}

/// Settles the check `id`. A failure that uses up the budget blocks the account for the
/// window. Nothing changes when `id` is no longer pending (it went stale and counts already).
pub fn settle(
    mut c: SignInCounters,
    id: u64,
    result: BindResult,
    now: u64,
    b: &Budget,
) -> SignInCounters {
    let Some(mine) = c.pending.iter().find(|a| a.id == id).copied() else {
        return c;
    };
    c.pending.retain(|a| a.id != id);
    match result {
        BindResult::Right => {
            c.failures.retain(|&t| t >= mine.at);
            c.unforgotten = c.failures.len() as u32;
        }
        BindResult::Wrong => {
            c.failures.push(now);
            c.unforgotten += 1;
            prune(&mut c, now, b);
            if c.failures.len() as u32 >= b.failures {
                block(&mut c, now, b);
            }
        }
        BindResult::Neutral => {}
    }
    c
}

/// The sign-in guard: every check of a user's current password (a bind as the user) stays
/// below the directory's own lockout threshold (see `lockout`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSignIn {
    /// ssprd stops this many failed binds short of the directory's lockout threshold
    /// (ppolicy `pwdMaxFailure`, AD `lockoutThreshold` or the user's fine-grained policy),
    /// read for each sign-in (1-10).
    pub lockout_margin: u32,
    /// Failed sign-ins per account when the directory never locks accounts (1-100).
    pub max_failures: u32,
    /// Shortest block after the failures are used up, in minutes; also how long ssprd counts
    /// a failure when the directory counts them until a successful bind (1-10080).
    pub block_minutes: u64,
}

impl Default for RawSignIn {
    fn default() -> Self {
        Self {
            lockout_margin: 1,
            max_failures: 5,
            block_minutes: 30,
        }
    }
}

impl RawSignIn {
    /// Checks the `[sign_in]` section into `p`.
    pub fn validate(&self, p: &mut Problems) -> SignInPolicy {
        if !(1..=10).contains(&self.lockout_margin) {
            p.bad(
                "sign_in.lockout_margin",
                format!(
                    "{} is outside 1..=10 (0 would let the last failure lock the account)",
                    self.lockout_margin
                ),
            );
        }
        p.in_range("sign_in.max_failures", self.max_failures, 1, 100);
        p.in_range("sign_in.block_minutes", self.block_minutes, 1, 10_080);
        SignInPolicy {
            lockout_margin: self.lockout_margin,
            max_failures: self.max_failures,
            block_secs: self.block_minutes * 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SignInPolicy = SignInPolicy {
        lockout_margin: 1,
        max_failures: 5,
        block_secs: 1_800,
    };

    fn lockout(threshold: Option<u32>, window_secs: u64) -> Lockout {
        Lockout {
            threshold,
            window_secs,
            failures: None,
        }
    }

    #[test]
    fn the_budget_stays_below_the_directory_threshold() {
        // (threshold, directory window, expected failures, expected window)
        let table = [
            (Some(3), 0, 2, 1_800),
            (Some(5), 0, 4, 1_800),
            (Some(5), 3_600, 4, 3_600),
            (Some(2), 0, 1, 1_800),
            (Some(1), 0, 0, 1_800),
            (Some(0), 0, 5, 1_800),
            (None, 0, 2, 1_800),
        ];
        for (t, w, f, win) in table {
            let b = budget(&lockout(t, w), &P);
            assert_eq!((b.failures, b.window_secs), (f, win), "threshold {t:?}");
        }
        let wide = SignInPolicy {
            lockout_margin: 3,
            ..P
        };
        assert_eq!(budget(&lockout(Some(3), 0), &wide).failures, 1);
    }

    /// Sequential wrong passwords against a threshold of 3: two binds, then a block
    /// without a bind, and the directory never reaches 3.
    #[test]
    fn wrong_passwords_stop_short_of_the_threshold() {
        let b = budget(&lockout(Some(3), 0), &P);
        let mut c = SignInCounters::default();
        let mut binds = 0;
        for id in 0..10 {
            let now = 1_000 + id;
            c = take(c, id, 0, now, &b, Some(binds));
            match taken(&c, id, now) {
                Taken::Granted => {
                    binds += 1;
                    c = settle(c, id, BindResult::Wrong, now, &b);
                }
                Taken::Blocked => {}
                Taken::Busy => panic!("nothing else is in progress"),
            }
        }
        assert_eq!(binds, 2);
        assert!(blocked(&c, 1_010) && blocked(&c, 1_000 + 1_800));
        assert!(!blocked(&c, 1_001 + 1_800 + 1));
    }

    /// Twenty sign-ins at once with a budget of 2: two binds, the rest busy; no block until
    /// failures are counted.
    #[test]
    fn concurrent_sign_ins_share_the_budget() {
        let b = budget(&lockout(Some(3), 0), &P);
        let mut c = SignInCounters::default();
        for id in 0..20 {
            c = take(c, id, 0, 50, &b, Some(0));
        }
        let granted: Vec<u64> = (0..20)
            .filter(|&id| taken(&c, id, 50) == Taken::Granted)
            .collect();
        assert_eq!(granted, vec![0, 1]);
        assert_eq!(taken(&c, 7, 50), Taken::Busy);
        c = settle(c, 0, BindResult::Wrong, 51, &b);
        c = settle(c, 1, BindResult::Wrong, 51, &b);
        assert!(blocked(&c, 51));
    }

    /// Failures the directory counts from elsewhere (a workstation) use the budget too, and
    /// are not double-counted with ssprd's own.
    #[test]
    fn the_directory_count_is_respected() {
        let b = budget(&lockout(Some(3), 0), &P);
        let c = take(SignInCounters::default(), 1, 0, 10, &b, Some(2));
        assert_eq!(taken(&c, 1, 10), Taken::Blocked);
        let c = take(SignInCounters::default(), 1, 0, 10, &b, Some(1));
        assert_eq!(taken(&c, 1, 10), Taken::Granted);
        // One external failure and one check in progress: the next must wait.
        let c = take(c, 2, 0, 10, &b, Some(1));
        assert_eq!(taken(&c, 2, 10), Taken::Busy);
    }

    #[test]
    fn a_right_password_forgets_earlier_failures_only() {
        let b = budget(&lockout(Some(5), 0), &P);
        let mut c = SignInCounters::default();
        c = take(c, 1, 0, 10, &b, None);
        c = settle(c, 1, BindResult::Wrong, 11, &b);
        c = take(c, 2, 0, 20, &b, None);
        c = take(c, 3, 0, 20, &b, None);
        c = settle(c, 3, BindResult::Wrong, 21, &b);
        c = settle(c, 2, BindResult::Right, 22, &b);
        assert_eq!(
            c.failures,
            vec![21],
            "the failure that raced the success stays"
        );
        assert!(c.pending.is_empty());
        let n = settle(c.clone(), 99, BindResult::Wrong, 23, &b);
        assert_eq!(n, c, "unknown ids change nothing");
    }

    /// Issue 24 item 6: where the directory counts failures until the next successful bind,
    /// the pause lasts until they are gone (a reset, an administrator's clear, a bind
    /// elsewhere) — never a bind that could lock; where it forgets them, until the window
    /// ends. A name the directory does not know, counted as such a directory would, is
    /// paused alike.
    #[test]
    fn a_pause_says_how_long_it_lasts() {
        let keeps = budget(&lockout(Some(3), 0), &P);
        assert!(!keeps.directory_forgets);
        let forgets = budget(&lockout(Some(3), 3_600), &P);
        assert!(forgets.directory_forgets);
        // The account: two wrong binds, then paused until reset.
        let mut c = SignInCounters::default();
        for id in 0..2 {
            c = take(c, id, 0, 100, &keeps, Some(id as u32));
            c = settle(c, id, BindResult::Wrong, 100, &keeps);
        }
        assert_eq!(pause(&c, 101), Some(Pause::UntilReset));
        // After ssprd's window the directory still counts two: paused again, no bind.
        let later = 100 + keeps.window_secs;
        let c2 = take(c.clone(), 9, 0, later, &keeps, Some(2));
        assert_eq!(taken(&c2, 9, later), Taken::Blocked);
        assert_eq!(pause(&c2, later), Some(Pause::UntilReset));
        // The password was reset (the directory forgot them): a bind again.
        let c3 = take(c, 10, 0, later, &keeps, Some(0));
        assert_eq!(taken(&c3, 10, later), Taken::Granted);
        // A stand-in, counted as that directory would count it, is paused the same way.
        let mut s = SignInCounters::default();
        for id in 0..2 {
            let counted = Some(s.unforgotten);
            s = take(s, id, 0, 100, &keeps, counted);
            assert_eq!(taken(&s, id, 100), Taken::Granted);
            s = settle(s, id, BindResult::Wrong, 100, &keeps);
        }
        assert_eq!(s.unforgotten, 2);
        let counted = Some(s.unforgotten);
        let s = take(s, 9, 0, later, &keeps, counted);
        assert_eq!(
            taken(&s, 9, later),
            Taken::Blocked,
            "still paused, as the account"
        );
        // A directory that forgets: paused until the window's end.
        let mut c = SignInCounters::default();
        for id in 0..2 {
            c = take(c, id, 0, 100, &forgets, None);
            c = settle(c, id, BindResult::Wrong, 100, &forgets);
        }
        assert_eq!(pause(&c, 101), Some(Pause::Until(100 + 3_600)));
        assert_eq!(pause(&c, 100 + 3_600), None);
        // A right password forgets the failures before it.
        let c = take(c, 5, 0, 100 + 3_600, &forgets, None);
        let c = settle(c, 5, BindResult::Right, 100 + 3_600, &forgets);
        assert_eq!(c.unforgotten, 0);
    }

    #[test]
    fn interrupted_checks_count_and_old_failures_expire() {
        let b = budget(&lockout(Some(5), 0), &P);
        let c = take(SignInCounters::default(), 1, 0, 100, &b, None);
        let c = take(c, 2, 0, 100 + STALE_SECS, &b, None);
        assert_eq!(c.failures, vec![100]);
        let c = settle(c, 2, BindResult::Neutral, 100 + STALE_SECS, &b);
        let c = take(c, 3, 0, 100 + b.window_secs, &b, None);
        assert!(c.failures.is_empty(), "out of the window");
    }
}
