//! The decisions of the password-write protocol (CompleteReset and admin resets alike), as
//! pure functions of what the directory answered and what the user's password-change
//! marker (`pwdChangedTime` / `pwdLastSet`) said when it was read back. The service
//! (`service::reset`) performs the IO in a fixed order — intent stored, marker read, write,
//! read-back when needed — and carries out what these return.

/// What the directory answered to the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Written.
    Done,
    /// Refused (policy, rights, an insecure connection): certainly not written. `reason` is
    /// the audit reason.
    Refused { reason: &'static str },
    /// No answer, or one that leaves the outcome open (a timeout, a dropped connection, a
    /// lost reply): perhaps written.
    Unknown { reason: &'static str },
}

/// What reading the marker back said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBack {
    /// It moved: the password was changed.
    Moved,
    /// Unchanged, and still unchanged after the settle time: not written.
    Unchanged,
    /// The directory could not be asked.
    Unreadable,
}

/// What to do after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The password changed: spend the flow. `indeterminate`: the directory's answer said
    /// otherwise (audited as `indeterminate` / `resolved_applied` first).
    Commit { indeterminate: bool },
    /// Not written: drop the intent (the flow is usable again), audit `failure` with
    /// `reason`, and answer with the directory's error.
    Drop { reason: &'static str },
    /// Unknown for now: keep the intent for the next call to decide, audit `indeterminate`
    /// with `reason`, answer OUTCOME_PENDING.
    Pending { reason: &'static str },
}

/// Whether `answer` needs the marker read back before deciding: only an unknown outcome
/// does (never a second write, never a bind as the user).
pub fn needs_read_back(answer: Answer) -> bool {
    matches!(answer, Answer::Unknown { .. })
}

/// The decision after a write, from its answer and, when [`needs_read_back`], the read-back.
pub fn after_write(answer: Answer, read_back: Option<ReadBack>) -> Decision {
    match (answer, read_back) {
        (Answer::Done, _) => Decision::Commit {
            indeterminate: false,
        },
        (Answer::Refused { reason }, _) => Decision::Drop { reason },
        (Answer::Unknown { .. }, Some(ReadBack::Moved)) => Decision::Commit {
            indeterminate: true,
        },
        (Answer::Unknown { reason }, Some(ReadBack::Unchanged)) => Decision::Drop { reason },
        (Answer::Unknown { reason }, Some(ReadBack::Unreadable) | None) => {
            Decision::Pending { reason }
        }
    }
}

/// What became of a write cut off earlier (a crash, or an outcome left pending), decided
/// before anything else writes the user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// It was written: spend its flow, audit `success` / `resolved_after_interruption`; a
    /// retry of that flow hears RESET_ALREADY_COMPLETED.
    Applied,
    /// It was not: drop the intent (a self-service flow is usable again, an admin reset is
    /// over), audit `failure` / `write_not_applied`.
    NotApplied,
    /// Still unknown: keep the intent, answer OUTCOME_PENDING.
    Pending,
}

/// Decides a write cut off earlier from the marker read back now.
pub fn after_interruption(read_back: ReadBack) -> Interrupted {
    match read_back {
        ReadBack::Moved => Interrupted::Applied,
        ReadBack::Unchanged => Interrupted::NotApplied,
        ReadBack::Unreadable => Interrupted::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: Answer = Answer::Refused {
        reason: "PASSWORD_IN_HISTORY",
    };
    const UNKNOWN: Answer = Answer::Unknown {
        reason: "directory_unavailable",
    };

    /// Every answer × read-back: one table.
    #[test]
    fn write_outcomes() {
        use Decision::*;
        use ReadBack::*;
        let cases: &[(Answer, Option<ReadBack>, Decision)] = &[
            // written
            (
                Answer::Done,
                None,
                Commit {
                    indeterminate: false,
                },
            ),
            // refused: certain, whatever a read-back would say (none is made)
            (
                REFUSED,
                None,
                Drop {
                    reason: "PASSWORD_IN_HISTORY",
                },
            ),
            (
                REFUSED,
                Some(Moved),
                Drop {
                    reason: "PASSWORD_IN_HISTORY",
                },
            ),
            // unknown: the marker decides
            (
                UNKNOWN,
                Some(Moved),
                Commit {
                    indeterminate: true,
                },
            ),
            (
                UNKNOWN,
                Some(Unchanged),
                Drop {
                    reason: "directory_unavailable",
                },
            ),
            (
                UNKNOWN,
                Some(Unreadable),
                Pending {
                    reason: "directory_unavailable",
                },
            ),
            (
                UNKNOWN,
                None,
                Pending {
                    reason: "directory_unavailable",
                },
            ),
        ];
        for (answer, read_back, expected) in cases {
            assert_eq!(
                after_write(*answer, *read_back),
                *expected,
                "{answer:?} / {read_back:?}"
            );
        }
        assert!(needs_read_back(UNKNOWN));
        assert!(!needs_read_back(REFUSED));
        assert!(!needs_read_back(Answer::Done));
    }

    #[test]
    fn interrupted_writes() {
        assert_eq!(after_interruption(ReadBack::Moved), Interrupted::Applied);
        assert_eq!(
            after_interruption(ReadBack::Unchanged),
            Interrupted::NotApplied
        );
        assert_eq!(
            after_interruption(ReadBack::Unreadable),
            Interrupted::Pending
        );
    }
}
