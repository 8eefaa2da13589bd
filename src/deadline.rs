//! The deadline of the request being served: the server's request timeout or the client's
//! `grpc-timeout`, whichever ends first (set by the server for each call). Work done for a
//! request reads it to answer before it — with a reason — instead of being cut off. Work
//! that must outlive a request (a password write and its record) runs in a task of its own,
//! where no deadline applies.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Time kept back from a deadline for the answer to be encoded and sent: a call answers this
/// long before its deadline at the latest.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// Runs `f` as a request with this deadline.
pub async fn scope<F: Future>(deadline: Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// The deadline of the request being served, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// When work for the current request must stop to leave [`ANSWER_MARGIN`] for the answer
/// (`None` outside a request).
pub fn answer_by() -> Option<Instant> {
    current().map(|d| d.checked_sub(ANSWER_MARGIN).unwrap_or(d))
}

/// Parses a `grpc-timeout` header value: an integer of at most 8 digits and a unit (`H`,
/// `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (n, unit) = v.split_at(v.len() - 1);
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-5S", "5 S", "5SS"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_deadline_is_scoped_to_the_request() {
        assert_eq!(current(), None);
        let d = Instant::now() + Duration::from_secs(2);
        scope(d, async {
            assert_eq!(current(), Some(d));
            assert_eq!(answer_by(), Some(d - ANSWER_MARGIN));
            // A task of its own has none.
            tokio::spawn(async { assert_eq!(current(), None) })
                .await
                .unwrap();
        })
        .await;
    }
}
