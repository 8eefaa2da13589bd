//! The management listener and the readiness loop; `[metrics]`.
//!
//! - **Readiness** ([`watch_readiness`]): every `ready_check_secs` the daemon checks that the
//!   store takes writes, the directory answers the service account and no notification is
//!   stuck in the outbox ([`crate::service::health`]). The outcome sets the gRPC health
//!   status (`NOT_SERVING` while not ready) whether or not the listener is on.
//! - **The listener** (`[metrics] listen`, off unless set; loopback unless `allow_remote`),
//!   plain HTTP/1.1:
//!   - `GET /metrics`: Prometheus text (see [`describe`] for every series);
//!   - `GET /healthz`: 200 while the process serves requests;
//!   - `GET /readyz`: 200 when ready, 503 when not, with each check's verdict as JSON.
//!
//! No label of any series carries a user name, address or DN: labels are fixed names (RPC
//! paths the daemon serves, event kinds, reasons, channels, outcomes). The listener has no
//! TLS and no authentication; it answers only requests whose `Host` is an IP address or
//! `localhost` unless `allow_remote` is set, so a web page cannot read it through DNS
//! rebinding.

use crate::problems::Problems;
use crate::service::Service;
use crate::service::health::Readiness;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// The `[metrics]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// Address of the management listener (`/metrics`, `/healthz`, `/readyz`), e.g.
    /// `127.0.0.1:9850`; unset: no listener.
    pub listen: Option<String>,
    /// Allow a listen address other than loopback (the listener has no TLS and no
    /// authentication: put it on a management network only).
    pub allow_remote: bool,
    /// Seconds between readiness checks (1-300).
    pub ready_check_secs: u64,
    /// A notification waiting longer than this many minutes makes the daemon not ready
    /// (1-10080).
    pub outbox_stuck_minutes: u64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            listen: None,
            allow_remote: false,
            ready_check_secs: 10,
            outbox_stuck_minutes: 30,
        }
    }
}

/// The checked `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub listen: Option<SocketAddr>,
    pub allow_remote: bool,
    pub ready_check: Duration,
    pub outbox_stuck_after_secs: u64,
}

impl RawMetrics {
    /// Checks the `[metrics]` section into `p`.
    pub fn validate(&self, p: &mut Problems) -> MetricsSettings {
        p.in_range("metrics.ready_check_secs", self.ready_check_secs, 1, 300);
        p.in_range(
            "metrics.outbox_stuck_minutes",
            self.outbox_stuck_minutes,
            1,
            10_080,
        );
        let listen = self
            .listen
            .as_deref()
            .and_then(|l| match l.parse::<SocketAddr>() {
                Ok(a) if !a.ip().is_loopback() && !self.allow_remote => {
                    p.bad(
                        "metrics.listen",
                        format!(
                            "{a} is not a loopback address; the listener has no TLS and no \
                         authentication: set metrics.allow_remote = true to serve it there"
                        ),
                    );
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    p.bad(
                        "metrics.listen",
                        format!("{l:?} is not an IP address and port (e.g. 127.0.0.1:9850)"),
                    );
                    None
                }
            });
        MetricsSettings {
            listen,
            allow_remote: self.allow_remote,
            ready_check: Duration::from_secs(self.ready_check_secs),
            outbox_stuck_after_secs: self.outbox_stuck_minutes * 60,
        }
    }
}

/// Histogram buckets (seconds) for every duration series.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's Prometheus recorder, installed on first use (one per process: the
/// `metrics` macros everywhere record into it). Without a listener none is installed and
/// recording costs nothing.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                warn!("another metrics recorder was installed first: /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Every series the daemon records, with its help text.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "ssprd_rpc_requests_total",
        "gRPC calls by method (path) and status code"
    );
    describe_histogram!(
        "ssprd_rpc_duration_seconds",
        metrics::Unit::Seconds,
        "gRPC call duration by method, until the status was sent"
    );
    describe_counter!(
        "ssprd_events_total",
        "Audited events by event, outcome and reason (verifications, blocks, resets, unlocks, registrations)"
    );
    describe_counter!(
        "ssprd_recoveries_total",
        "Completed resets and unlocks by action and the methods the user proved"
    );
    describe_counter!(
        "ssprd_deliveries_total",
        "Delivery attempts of codes and notifications by channel and outcome"
    );
    describe_gauge!(
        "ssprd_outbox_backlog",
        "Notifications waiting in the outbox (at the last readiness check)"
    );
    describe_gauge!(
        "ssprd_outbox_oldest_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest waiting notification (at the last readiness check)"
    );
    describe_histogram!(
        "ssprd_directory_operation_duration_seconds",
        metrics::Unit::Seconds,
        "Directory operation duration by operation"
    );
    describe_counter!(
        "ssprd_directory_errors_total",
        "Failed directory operations by operation and error kind"
    );
    describe_gauge!(
        "ssprd_ldap_pool_connections",
        "Pooled LDAP connections by pool (service, user_binds) and state (idle, busy)"
    );
    describe_histogram!(
        "ssprd_store_flush_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of one flush of the store to disk (shared by concurrent writes)"
    );
    describe_gauge!(
        "ssprd_ready",
        "1 when the last readiness check passed, else 0"
    );
}

/// Checks readiness now and then once per `every`, publishing each outcome (and, when
/// it changes, whether the gRPC services are serving); runs until aborted.
pub async fn watch_readiness(
    service: Arc<Service>,
    every: Duration,
    publish: watch::Sender<Readiness>,
    serving: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_ready = None;
    loop {
        tick.tick().await;
        let r = service.readiness().await;
        let ready = r.ready();
        if was_ready != Some(ready) {
            if ready {
                info!("ready");
            } else {
                warn!(store = %r.store, directory = %r.directory, outbox = %r.outbox, "not ready");
            }
            was_ready = Some(ready);
        }
        publish.send_replace(r);
        serving.send_if_modified(|up| std::mem::replace(up, ready) != ready);
    }
}

/// Whether a request naming `host` (its `Host` header) may be answered: any when remote
/// access is allowed; else only an IP address or `localhost`, with or without a port.
pub fn host_allowed(host: Option<&str>, allow_remote: bool) -> bool {
    if allow_remote {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    if host.parse::<SocketAddr>().is_ok() || host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    name.eq_ignore_ascii_case("localhost")
}

#[derive(Clone)]
struct State {
    handle: PrometheusHandle,
    readiness: watch::Receiver<Readiness>,
    allow_remote: bool,
}

/// Serves the management listener; runs until aborted (the daemon aborts it when it
/// stops).
pub async fn serve(
    listener: tokio::net::TcpListener,
    allow_remote: bool,
    readiness: watch::Receiver<Readiness>,
) -> std::io::Result<()> {
    use axum::routing::get;
    let handle = recorder();
    let state = State {
        handle: handle.clone(),
        readiness,
        allow_remote,
    };
    // Histograms and idle series are maintained as scrapes come in and in between.
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let app = axum::Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state);
    info!(addr = ?listener.local_addr().ok(), "management listener serving");
    let served = axum::serve(listener, app).await;
    upkeep.abort();
    served
}

type Answer = axum::response::Response;

fn answer(status: u16, content_type: &'static str, body: String) -> Answer {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(axum::body::Body::from(body))
        .expect("a valid response")
}

/// Refuses requests for other host names (DNS rebinding) before any route runs.
async fn guard(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Answer {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host_allowed(host, state.allow_remote) {
        return answer(
            421,
            "text/plain; charset=utf-8",
            "this listener answers requests for an IP address or localhost only\n".into(),
        );
    }
    next.run(request).await
}

async fn metrics_text(axum::extract::State(state): axum::extract::State<State>) -> Answer {
    answer(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        state.handle.render(),
    )
}

async fn healthz() -> Answer {
    answer(200, "text/plain; charset=utf-8", "ok\n".into())
}

async fn readyz(axum::extract::State(state): axum::extract::State<State>) -> Answer {
    let r = state.readiness.borrow().clone();
    let ready = r.ready();
    let body = serde_json::json!({ "ready": ready, "checks": r });
    answer(
        if ready { 200 } else { 503 },
        "application/json",
        format!("{body}\n"),
    )
}

async fn not_found() -> Answer {
    answer(
        404,
        "text/plain; charset=utf-8",
        "not found: /metrics, /healthz and /readyz are served here\n".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_addresses_and_localhost_unless_remote_is_allowed() {
        let table = [
            (Some("127.0.0.1:9850"), false, true),
            (Some("127.0.0.1"), false, true),
            (Some("[::1]:9850"), false, true),
            (Some("::1"), false, true),
            (Some("localhost:9850"), false, true),
            (Some("LOCALHOST"), false, true),
            (Some("attacker.example:9850"), false, false),
            (Some("localhost.attacker.example"), false, false),
            (Some("localhost:x"), false, false),
            (None, false, false),
            (Some("sspr.example.org:9850"), true, true),
            (None, true, true),
        ];
        for (host, remote, want) in table {
            assert_eq!(host_allowed(host, remote), want, "{host:?} remote={remote}");
        }
    }

    #[test]
    fn the_listener_stays_on_loopback_unless_allowed() {
        let check = |listen: &str, allow_remote: bool| {
            let mut p = Problems::new();
            let raw = RawMetrics {
                listen: Some(listen.into()),
                allow_remote,
                ..RawMetrics::default()
            };
            let s = raw.validate(&mut p);
            (s.listen, p.into_vec())
        };
        let (a, p) = check("127.0.0.1:9850", false);
        assert_eq!((a.map(|a| a.port()), p.len()), (Some(9850), 0));
        let (a, p) = check("0.0.0.0:9850", false);
        assert!(a.is_none() && p[0].starts_with("metrics.listen: 0.0.0.0:9850 is not a loopback"));
        let (a, p) = check("0.0.0.0:9850", true);
        assert!(a.is_some() && p.is_empty());
        let (a, p) = check("localhost:9850", false);
        assert!(a.is_none() && p[0].contains("not an IP address and port"));
        let mut p = Problems::new();
        RawMetrics {
            ready_check_secs: 0,
            outbox_stuck_minutes: 0,
            ..RawMetrics::default()
        }
        .validate(&mut p);
        assert_eq!(p.into_vec().len(), 2);
    }
}
