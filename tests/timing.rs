//! Security item 2: the timing of StartReset for a registered user and for an unknown name
//! is statistically indistinguishable — 1,000 samples of each, compared with a two-sample
//! Kolmogorov–Smirnov test. Run against a real slapd over gRPC+TLS. The same measurement
//! without response padding is printed for comparison (not asserted: it may or may not
//! differ on a given machine).

mod support;

use ssprd::api::pb;
use std::time::{Duration, Instant};
use support::{Daemon, OpenLdap, TestDirectory, unique};

const SAMPLES: usize = 1_000;
const PARALLEL: usize = 10;

/// The two-sample KS statistic: the largest distance between the empirical CDFs.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The critical value of the KS statistic at significance `alpha` for samples of n and m.
fn ks_critical(alpha: f64, n: usize, m: usize) -> f64 {
    let c = (-(alpha / 2.0).ln() / 2.0).sqrt();
    c * (((n + m) as f64) / ((n * m) as f64)).sqrt()
}

#[test]
fn ks_helpers_are_right() {
    let same: Vec<f64> = (0..100).map(f64::from).collect();
    assert_eq!(ks_statistic(&same, &same), 0.0);
    let shifted: Vec<f64> = (50..150).map(f64::from).collect();
    assert!((ks_statistic(&same, &shifted) - 0.5).abs() < 1e-9);
    assert!((ks_critical(0.001, 1000, 1000) - 0.0872).abs() < 0.001);
}

/// Milliseconds per StartReset for `real` and `unknown`, interleaved across parallel
/// clients so both see the same load.
async fn measure(d: &Daemon, real: &str, unknown: &str) -> (Vec<f64>, Vec<f64>) {
    let ch = d.channel().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..PARALLEL {
        let mut c = pb::reset_service_client::ResetServiceClient::new(ch.clone());
        let (real, unknown) = (real.to_string(), unknown.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut r, mut u) = (Vec::new(), Vec::new());
            for i in 0..(2 * SAMPLES / PARALLEL) {
                let is_real = (i + t) % 2 == 0;
                let name = if is_real { &real } else { &unknown };
                let t0 = Instant::now();
                let resp = c
                    .start_reset(pb::StartResetRequest {
                        username: name.clone(),
                    })
                    .await
                    .expect("StartReset");
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                assert!(!resp.into_inner().flow_id.is_empty());
                if is_real { r.push(ms) } else { u.push(ms) }
            }
            (r, u)
        }));
    }
    let (mut real_ms, mut unknown_ms) = (Vec::new(), Vec::new());
    for t in tasks {
        let (r, u) = t.await.unwrap();
        real_ms.extend(r);
        unknown_ms.extend(u);
    }
    (real_ms, unknown_ms)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reset_timing_does_not_tell_real_from_unknown_users() {
    support::init();
    let ldap = OpenLdap::start().await;
    let login = unique("timing");
    let pw = "Timing-Pass-1234";
    ldap.create_user(&login, pw).await;
    let unknown = unique("nosuchuser");
    let alpha = 0.001;
    let mut results = Vec::new();
    for padding_ms in [0u64, 150] {
        let work = tempfile::tempdir().unwrap();
        let (mut raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        raw.server.uniform_response_ms = padding_ms;
        raw.server.per_client_requests_per_minute = 0;
        let d = Daemon::start(raw, ca).await;
        let mut c = d.clients().await;
        c.register(&login, pw).await;
        // Warm up connections and caches.
        measure_warm(&d, &login, &unknown).await;
        let started = Instant::now();
        let (r, u) = measure(&d, &login, &unknown).await;
        let ks = ks_statistic(&r, &u);
        let crit = ks_critical(alpha, r.len(), u.len());
        println!(
            "padding {padding_ms} ms: {} + {} samples in {:?}; median real {:.1} ms, unknown {:.1} ms; KS D = {ks:.4} (critical {crit:.4} at alpha {alpha})",
            r.len(),
            u.len(),
            started.elapsed(),
            median(&r),
            median(&u)
        );
        results.push((padding_ms, ks, crit));
        d.stop().await;
    }
    let (_, ks, crit) = results[1];
    assert!(
        ks < crit,
        "with response padding the distributions must not be distinguishable: D = {ks} ≥ {crit}"
    );
}

async fn measure_warm(d: &Daemon, real: &str, unknown: &str) {
    let mut c = d.clients().await;
    for _ in 0..10 {
        c.start(real).await;
        c.start(unknown).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
