//! Security item 2: the timing of StartReset for a registered user is statistically
//! indistinguishable from that for an unknown, unregistered, out-of-scope, locked or disabled
//! one, and SendCode for a real account (a real message through a real SMTP server) from
//! SendCode in a decoy flow — 1,000 samples of each, compared with two-sample
//! Kolmogorov–Smirnov tests; so is a wrong password for an existing account from an unknown
//! name in BeginRegistration and ChangePassword (issue 24 item 3). Run against a real slapd
//! over gRPC+TLS. Each is also measured without response padding and printed for comparison
//! (not asserted: it may or may not differ on a given machine).

mod support;

use ssprd::api::pb;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use support::{Certs, Daemon, OpenLdap, TestDirectory, unique};

const SAMPLES: usize = 1_000;
const PARALLEL: usize = 10;
/// Each KS test's significance level.
const ALPHA: f64 = 0.001;
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
    // At the critical value the p-value is about alpha.
    let p = ks_p(ks_critical(0.001, 1000, 1000), 1000, 1000);
    assert!((0.0005..0.002).contains(&p), "{p}");
    assert!(ks_p(0.0, 100, 100) > 0.99);
}

/// `per_name` samples for each of `names`: `call` returns the milliseconds the part it
/// times took. Calls are interleaved across parallel clients so every kind sees the same
/// load.
async fn measure<F, Fut>(names: &[String], per_name: usize, call: F) -> Vec<Vec<f64>>
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = f64> + Send,
{
    let n = names.len();
    let mut tasks = Vec::new();
    for t in 0..PARALLEL {
        let names = names.to_vec();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = vec![Vec::new(); n];
            for i in 0..(n * per_name / PARALLEL) {
                let k = (i + t) % n;
                out[k].push(call(names[k].clone()).await);
            }
            out
        }));
    }
    let mut all = vec![Vec::new(); n];
    for t in tasks {
        for (k, v) in t.await.unwrap().into_iter().enumerate() {
            all[k].extend(v);
        }
    }
    all
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The asymptotic p-value of a two-sample KS statistic `d` for samples of n and m (the
/// first terms of the Kolmogorov distribution's series; 1 for small `d`).
fn ks_p(d: f64, n: usize, m: usize) -> f64 {
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 0.3 {
        // The series converges too slowly here; the p-value is above 0.99999.
        return 1.0;
    }
    let p: f64 = (1..=100)
        .map(|k| {
            let k = f64::from(k);
            2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    p.clamp(0.0, 1.0)
}

/// Prints each kind against the first and returns the kinds whose distribution differs.
fn compare(what: &str, kinds: &[&str], samples: &[Vec<f64>]) -> Vec<String> {
    let base = &samples[0];
    let mut differ = Vec::new();
    for (kind, s) in kinds.iter().zip(samples).skip(1) {
        let d = ks_statistic(base, s);
        let crit = ks_critical(ALPHA, base.len(), s.len());
        println!(
            "{what}: {} {} vs {kind} {}: median {:.1} vs {:.1} ms; KS D = {d:.4} (critical {crit:.4} at alpha {ALPHA}), p = {:.3}",
            kinds[0],
            base.len(),
            s.len(),
            median(base),
            median(s),
            ks_p(d, base.len(), s.len())
        );
        if d >= crit {
            differ.push(format!("{kind} (D = {d:.4} ≥ {crit:.4})"));
        }
    }
    differ
}

const KINDS: [&str; 6] = [
    "registered",
    "unknown",
    "unregistered",
    "out of scope",
    "locked",
    "disabled",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reset_timing_does_not_tell_account_kinds_apart() {
    support::init();
    let ldap = OpenLdap::start().await;
    let pw = "Timing-Pass-1234";
    let names: Vec<String> = KINDS.iter().map(|k| unique(&k.replace(' ', ""))).collect();
    // names[1] stays unknown to the directory.
    let [registered, unregistered, out_of_scope, locked, disabled] =
        [0, 2, 3, 4, 5].map(|i| names[i].clone());
    for u in [
        &registered,
        &unregistered,
        &out_of_scope,
        &locked,
        &disabled,
    ] {
        ldap.create_user(u, pw).await;
    }
    let work = tempfile::tempdir().unwrap();
    // Registration happens under scope "all"; the measured daemons (same store) limit SSPR
    // to a group the out-of-scope user is not in.
    let group = ldap
        .create_group(
            &unique("sspr-users"),
            &[&registered, &unregistered, &locked, &disabled].map(|u| ldap.user_dn(u)),
        )
        .await;
    {
        let (raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        let d = Daemon::start(raw, ca).await;
        let mut c = d.clients().await;
        for u in [&registered, &out_of_scope, &locked, &disabled] {
            c.register(u, pw).await;
        }
        d.stop().await;
    }
    ldap.lock(&locked).await;
    ldap.set_attribute(&disabled, "pwdAccountLockedTime", "000001010000Z")
        .await;

    for (padding_ms, per_name) in [(0u64, 200), (150, SAMPLES)] {
        let (mut raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        raw.server.uniform_response_ms = padding_ms;
        raw.server.per_client_requests_per_minute = 0;
        raw.policy.scope = ssprd::policy::Scope::Selected;
        raw.policy.scope_groups = vec![group.clone()];
        let d = Daemon::start(raw, ca).await;
        let ch = d.channel().await.unwrap();
        let call = move |name: String| {
            let mut c = pb::reset_service_client::ResetServiceClient::new(ch.clone());
            async move {
                let t0 = Instant::now();
                let r = c
                    .start_reset(pb::StartResetRequest { username: name })
                    .await
                    .expect("StartReset")
                    .into_inner();
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                assert!(!r.flow_id.is_empty() && !r.methods.is_empty());
                ms
            }
        };
        // Warm up connections and caches.
        measure(&names, 2 * PARALLEL, call.clone()).await;
        let started = Instant::now();
        let samples = measure(&names, per_name, call).await;
        println!(
            "StartReset with padding {padding_ms} ms: {} samples in {:?}",
            samples.iter().map(Vec::len).sum::<usize>(),
            started.elapsed()
        );
        let differ = compare(&format!("StartReset/{padding_ms}"), &KINDS, &samples);
        if padding_ms > 0 {
            assert!(
                differ.is_empty(),
                "with response padding these must not be distinguishable from a registered user: {differ:?}"
            );
        }
        d.stop().await;
    }
}

/// SendCode in a real flow (the code goes through a real SMTP server) against SendCode in a
/// decoy flow (nothing is sent): the answers take the same time and are pending equally
/// often.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_code_timing_does_not_tell_real_from_decoy_flows() {
    support::init();
    let ldap = OpenLdap::start().await;
    let smtp = ssprd_testbed::SmtpSink::start().await.expect("SMTP sink");
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    let certs = Certs::install(&mut raw, work.path());
    raw.server.uniform_response_ms = 200;
    raw.server.per_client_requests_per_minute = 0;
    raw.policy.enabled_methods = vec!["email".into()];
    raw.policy.codes.max_sends_per_account = 100;
    raw.policy.codes.max_sends_per_account_per_day = 1_000;
    raw.email = support::email_to(&smtp);
    let d = Daemon::start(raw, ca).await;

    // 20 real accounts with an email address the admin set, and 20 unknown names; each
    // account gets 50 codes (the per-account limit is 100 per window).
    const ACCOUNTS: usize = 20;
    let mut admin = d.admin(&certs.admin);
    let mut real = Vec::new();
    for i in 0..ACCOUNTS {
        let login = unique(&format!("sendtiming{i}"));
        ldap.create_user(&login, "Timing-Pass-1234").await;
        admin
            .set_contact(pb::SetContactRequest {
                username: login.clone(),
                kind: pb::AdminContactKind::Email as i32,
                value: format!("{login}@example.org"),
            })
            .await
            .expect("SetContact");
        real.push(login);
    }
    let decoys: Vec<String> = (0..ACCOUNTS).map(|_| unique("nosuchuser")).collect();

    let ch = d.channel().await.unwrap();
    let pending = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let counted = pending.clone();
    let next = Arc::new(AtomicUsize::new(0));
    let (real_names, decoy_names) = (real.clone(), decoys.clone());
    // Names "real"/"decoy" pick the kind; the account is the next in turn.
    let call = move |kind: String| {
        let mut c = pb::reset_service_client::ResetServiceClient::new(ch.clone());
        let i = next.fetch_add(1, Ordering::Relaxed);
        let is_real = kind == "real";
        let login = if is_real {
            real_names[i % ACCOUNTS].clone()
        } else {
            decoy_names[i % ACCOUNTS].clone()
        };
        let counted = counted.clone();
        async move {
            let s = c
                .start_reset(pb::StartResetRequest { username: login })
                .await
                .expect("StartReset")
                .into_inner();
            assert!(
                s.methods
                    .iter()
                    .any(|m| m.method == pb::Method::Email as i32),
                "email is offered"
            );
            // Only SendCode is timed: StartReset is measured by the test above.
            let t0 = Instant::now();
            let r = c
                .send_code(pb::SendCodeRequest {
                    flow_id: s.flow_id,
                    method: pb::Method::Email as i32,
                })
                .await
                .expect("SendCode")
                .into_inner();
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if r.pending {
                counted[usize::from(!is_real)].fetch_add(1, Ordering::Relaxed);
            }
            ms
        }
    };
    let kinds = ["real".to_string(), "decoy".to_string()];
    let started = Instant::now();
    let samples = measure(&kinds, SAMPLES, call).await;
    println!(
        "SendCode: {} samples in {:?}; pending answers: real {}, decoy {}",
        samples.iter().map(Vec::len).sum::<usize>(),
        started.elapsed(),
        pending[0].load(Ordering::Relaxed),
        pending[1].load(Ordering::Relaxed)
    );
    let differ = compare("SendCode", &["real", "decoy"], &samples);
    assert!(
        differ.is_empty(),
        "SendCode in decoy flows must not be distinguishable: {differ:?}"
    );
    // The real messages did go out.
    let last = &real[ACCOUNTS - 1];
    assert!(
        smtp.wait_for(&format!("{last}@example.org"), &[])
            .await
            .is_some(),
        "codes reached the SMTP server"
    );
    d.stop().await;
}

/// Issue 24 item 3: BeginRegistration (the portal's "My methods" sign-in) and ChangePassword
/// take as long for a wrong password of an existing account — a bind as that user, through
/// the sign-in guard — as for a name the directory does not know (no bind), so neither
/// tells which accounts exist. 320 samples of each, interleaved; each account takes two
/// wrong passwords, so every sample of an existing account is a real bind (the guard would
/// stop binding short of the directory's lockout), and every path is padded alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_change_timing_do_not_tell_accounts_apart() {
    support::init();
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    for (padding_ms, per_kind) in [(0u64, 80), (150, 320)] {
        let (mut raw, ca) =
            Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
        raw.server.uniform_response_ms = padding_ms;
        raw.server.per_client_requests_per_minute = 0;
        let d = Daemon::start(raw, ca).await;
        let ch = d.channel().await.unwrap();
        for call in ["BeginRegistration", "ChangePassword"] {
            let accounts = per_kind / 2;
            let mut existing = Vec::new();
            for i in 0..accounts {
                let login = unique(&format!("signtiming{i}"));
                ldap.create_user(&login, "Timing-Pass-1234").await;
                existing.push(login);
            }
            let unknown: Vec<String> = (0..accounts).map(|_| unique("nosuchuser")).collect();
            // Each kind its own turn: every name gets exactly two samples.
            let next = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            let ch = ch.clone();
            let timed = move |kind: String| {
                let real = kind == "existing";
                let i = next[usize::from(real)].fetch_add(1, Ordering::Relaxed) / 2;
                let login = if real {
                    existing[i % accounts].clone()
                } else {
                    unknown[i % accounts].clone()
                };
                let ch = ch.clone();
                async move {
                    let t0 = Instant::now();
                    let err = if call == "BeginRegistration" {
                        pb::registration_service_client::RegistrationServiceClient::new(ch)
                            .begin_registration(pb::BeginRegistrationRequest {
                                username: login,
                                password: "Not-The-Password-1".into(),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    } else {
                        pb::reset_service_client::ResetServiceClient::new(ch)
                            .change_password(pb::ChangePasswordRequest {
                                username: login,
                                current_password: "Not-The-Password-1".into(),
                                new_password: "Brand-New-Timing-9".into(),
                            })
                            .await
                            .map(|_| ())
                    }
                    .expect_err("a wrong password is refused");
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    assert_eq!(support::reason(&err), "INVALID_CREDENTIALS");
                    ms
                }
            };
            let kinds = ["existing".to_string(), "unknown".to_string()];
            let samples = measure(&kinds, per_kind, timed).await;
            let differ = compare(
                &format!("{call}/{padding_ms}"),
                &["existing", "unknown"],
                &samples,
            );
            if padding_ms > 0 {
                assert!(
                    differ.is_empty(),
                    "{call}: an unknown name must not be distinguishable from a wrong password: {differ:?}"
                );
            }
        }
        d.stop().await;
    }
}
