//! Writeback latency and throughput, measured against a real slapd over LDAPS (run with
//! `cargo bench --bench writeback`; needs slapd, see `scripts/install-test-deps.sh`). The
//! test command runs it once in its debug build with fewer calls, so every CI log shows it.
//!
//! **Latency.** Product reference: Entra's synchronous writeback answers in under 500 ms on
//! average. ssprd is compared with a baseline measured in the same run against the same
//! server — the least directory work the same step needs, done directly with ldap3:
//!
//! - **CompleteReset** (gRPC+TLS, write intent flushed, password-change marker read,
//!   Password Modify as the service account, verification bind as the user, flow and
//!   counters committed, audit record) against *connect + service bind + Password Modify,
//!   then connect + user bind*;
//! - **StartReset** (gRPC+TLS, user search, registration read, flow and audit record in one
//!   batch) against *connect + service bind + user search*.
//!
//! Calls alternate between ssprd and the baseline so both see the same machine load.
//!
//! **Throughput.** Against a second slapd that hashes with `{SSHA}` (so the directory is not
//! the bottleneck): complete reset flows per second — StartReset, VerifyMethod, CompleteReset
//! over gRPC+TLS, one connection per client — at concurrency 1, 8 and 32, for authenticator
//! codes and for security questions (argon2id, bounded on purpose). The baseline, in the same
//! run and at the same concurrency: a Password Modify as the service account and a bind as
//! the user, each on a connection kept open. slapd's own counters (`cn=Monitor`) give the
//! LDAP connections opened and operations per flow; the daemon's `/metrics`
//! (`ssprd_store_flush_duration_seconds_count`) its store flushes per flow (writes waiting
//! together share one). Then the ceiling, from the same run: triples of empty gRPC calls
//! (health checks through the same listener) per second, and the highest ratio a flow —
//! three calls plus at least one raw pair's work — could reach. The daemon runs in this
//! process, so its resident memory is this process's, printed after each mode.
//!
//! The figures are printed, not asserted.

#[path = "../tests/support/mod.rs"]
mod support;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope};
use ssprd::api::pb;
use ssprd::method::totp;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Daemon, OpenLdap, TestClock, TestDirectory, client_tls, unique};

/// `cargo bench` passes `--bench`; `cargo test` runs the benchmark once, shorter.
fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    let p95 = s[(s.len() * 95 / 100).min(s.len() - 1)];
    (mean, s[s.len() / 2], p95)
}

fn report(what: &str, ssprd: &[f64], base: &[f64]) {
    let (m, med, p95) = summary(ssprd);
    let (bm, bmed, bp95) = summary(base);
    println!("{what} ({} calls each)", ssprd.len());
    println!("  ssprd     mean {m:7.1} ms  median {med:7.1} ms  p95 {p95:7.1} ms");
    println!("  baseline  mean {bm:7.1} ms  median {bmed:7.1} ms  p95 {bp95:7.1} ms");
    println!(
        "  ratio ssprd/baseline: mean {:.2}, median {:.2}",
        m / bm,
        med / bmed
    );
}

#[derive(Clone)]
struct Direct {
    uri: String,
    ca_pem: String,
    service_dn: String,
    service_password: String,
}

impl Direct {
    /// LDAPS with TCP_NODELAY, as ssprd connects (with Nagle on, each connection waits
    /// ~40 ms for a delayed ACK, which would swamp everything else measured here).
    async fn connect(&self) -> ldap3::Ldap {
        let port = self.uri.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tcp.set_nodelay(true).unwrap();
        let settings = LdapConnSettings::new()
            .set_config(client_tls(&self.ca_pem))
            .set_std_stream(ldap3::StdStream::Tcp(tcp.into_std().unwrap()));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.uri)
            .await
            .expect("LDAPS connect");
        ldap3::drive!(conn);
        ldap
    }

    async fn service(&self) -> ldap3::Ldap {
        let mut ldap = self.connect().await;
        ldap.simple_bind(&self.service_dn, &self.service_password)
            .await
            .unwrap()
            .success()
            .expect("service bind");
        ldap
    }

    /// Password Modify as the service account, then a bind as the user.
    async fn write_and_verify(&self, dn: &str, password: &str) {
        let mut ldap = self.service().await;
        ldap.extended(ldap3::exop::PasswordModify {
            user_id: Some(dn),
            old_pass: None,
            new_pass: Some(password),
        })
        .await
        .unwrap()
        .success()
        .expect("password modify");
        ldap.unbind().await.unwrap();
        let mut user = self.connect().await;
        user.simple_bind(dn, password)
            .await
            .unwrap()
            .success()
            .expect("user bind");
        user.unbind().await.unwrap();
    }

    async fn find(&self, login: &str) {
        let mut ldap = self.service().await;
        let (entries, _) = ldap
            .search(
                ssprd_testbed::PEOPLE,
                Scope::Subtree,
                &format!("(uid={})", ldap3::ldap_escape(login)),
                vec!["entryUUID", "displayName", "pwdAccountLockedTime"],
            )
            .await
            .unwrap()
            .success()
            .expect("search");
        assert_eq!(entries.len(), 1);
        ldap.unbind().await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    support::init();
    // `cargo bench --bench writeback -- throughput` skips the latency part;
    // `-- throughput authenticator` the question flows too; a number (`-- throughput
    // authenticator 32`) measures that concurrency only (for profiling).
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    if !has("throughput") {
        latency().await;
    }
    let only: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let concs = if only.is_empty() {
        vec![1, 8, 32]
    } else {
        only
    };
    throughput(!has("authenticator"), &concs).await;
}

/// The direct connection to `ldap` for the baseline, and a daemon configuration for it
/// (with its CA): no per-client quota, and the default local password rules (common-password
/// list included), which are part of what is measured.
fn setup(ldap: &OpenLdap, work: &std::path::Path) -> (Direct, ssprd::config::RawConfig, String) {
    let dir_cfg = ldap.directory_config(&work.join("dir"));
    let direct = Direct {
        uri: ldap.slapd.ldaps_uri(),
        ca_pem: ldap.slapd.ca_pem.clone(),
        service_dn: dir_cfg.bind_dn.clone(),
        service_password: ldap.slapd.service_password.expose().to_string(),
    };
    let (mut raw, ca) = Daemon::config(work, dir_cfg);
    raw.server.per_client_requests_per_minute = 0;
    raw.password = ssprd::config::RawPassword::default();
    (direct, raw, ca)
}

async fn latency() {
    let users = if quick() { 8 } else { 40 };
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let (direct, raw, ca) = setup(&ldap, work.path());
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;

    let pw = "Bench-Old-1234";
    let mut logins = Vec::new();
    for _ in 0..users {
        let login = unique("bench");
        ldap.create_user(&login, pw).await;
        c.register(&login, pw).await;
        logins.push(login);
    }
    // Warm up both paths once.
    c.start(&logins[0]).await;
    direct.find(&logins[0]).await;

    let (mut start, mut start_base) = (Vec::new(), Vec::new());
    let (mut complete, mut complete_base) = (Vec::new(), Vec::new());
    for (i, login) in logins.iter().enumerate() {
        let dn = ldap.user_dn(login);

        let t = Instant::now();
        direct.find(login).await;
        start_base.push(ms(t.elapsed()));
        let t = Instant::now();
        let s = c.start(login).await;
        start.push(ms(t.elapsed()));

        let t = Instant::now();
        direct
            .write_and_verify(&dn, &format!("Bench-Base-{i:03}"))
            .await;
        complete_base.push(ms(t.elapsed()));
        let v = c
            .verify_with(&s.flow_id, &s.methods, support::answer_for)
            .await
            .expect("VerifyMethod");
        assert!(v.verified);
        let t = Instant::now();
        let done = c
            .complete(&s.flow_id, &format!("Bench-Ssprd-{i:03}"), false)
            .await
            .expect("CompleteReset");
        complete.push(ms(t.elapsed()));
        assert!(done.verified_by_bind);
    }
    d.stop().await;

    println!();
    report("StartReset vs user search", &start, &start_base);
    report(
        "CompleteReset vs password modify + user bind",
        &complete,
        &complete_base,
    );
    let (mean, _, _) = summary(&complete);
    println!("  reference: Entra writeback under 500 ms on average; ssprd mean {mean:.1} ms");
}

/// This process's resident memory now and at its peak (MiB).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// Password Modify + user bind pairs per second at `conc`, each worker on two connections
/// kept open (one bound as the service account, one for user binds).
async fn raw_rate(direct: &Direct, dns: &[String], conc: usize, run: Duration) -> (f64, usize) {
    let mut workers = Vec::new();
    for w in 0..conc {
        let service = direct.service().await;
        let user = direct.connect().await;
        let dn = dns[w % dns.len()].clone();
        workers.push((service, user, dn));
    }
    let until = Instant::now() + run;
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(w, (mut service, mut user, dn))| {
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    let pw = format!("Raw-{w}-{n}-Pass");
                    service
                        .extended(ldap3::exop::PasswordModify {
                            user_id: Some(&dn),
                            old_pass: None,
                            new_pass: Some(&pw),
                        })
                        .await
                        .unwrap()
                        .success()
                        .expect("password modify");
                    user.simple_bind(&dn, &pw)
                        .await
                        .unwrap()
                        .success()
                        .expect("user bind");
                    n += 1;
                }
                let _ = service.unbind().await;
                let _ = user.unbind().await;
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

/// Triples of empty gRPC calls per second at `conc` (grpc.health.v1 Check, through the same
/// TLS listener and layers as the flows' calls), each client on a connection of its own:
/// what the three calls of a flow cost with no work behind them. A flow also needs at least
/// one raw pair's directory work (its Password Modify and bind), so — sequential at
/// concurrency 1, sharing a busy machine above — its rate is at most
/// `1 / (1/triples + 1/raw)`: flows/raw at most `1 / (raw/triples + 1)`.
async fn empty_calls(d: &Daemon, conc: usize, run: Duration) -> f64 {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut clients = Vec::new();
    for _ in 0..conc {
        clients.push(HealthClient::new(d.channel().await.expect("channel")));
    }
    let until = Instant::now() + run;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut h| {
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    for _ in 0..3 {
                        h.check(HealthCheckRequest::default())
                            .await
                            .expect("health check");
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Numbers every new password of the throughput runs (each must be new to the user).
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A registered test user: login, and the authenticator secret (None: security questions).
struct FlowUser {
    login: String,
    totp: Option<Vec<u8>>,
}

/// StartReset, VerifyMethod, CompleteReset for `u`.
async fn one_flow(c: &mut support::Clients, u: &FlowUser, now: u64, password: &str) {
    let s = c.start(&u.login).await;
    let v = match &u.totp {
        Some(secret) => c
            .reset
            .verify_method(pb::VerifyMethodRequest {
                flow_id: s.flow_id.clone(),
                proof: Some(pb::verify_method_request::Proof::AuthenticatorCode(
                    totp::code_at(secret, now),
                )),
            })
            .await
            .map(tonic::Response::into_inner),
        None => {
            c.verify_with(&s.flow_id, &s.methods, support::answer_for)
                .await
        }
    }
    .expect("VerifyMethod");
    assert!(v.verified, "{}", u.login);
    let done = c
        .complete(&s.flow_id, password, false)
        .await
        .expect("CompleteReset");
    assert!(done.verified_by_bind);
}

/// A new password for flow `n`, distinct per flow and never refused by the local rules:
/// the number in consonants, since digits can read as letters ("7357" as "test", a word of
/// every test user's display name).
fn password(mut n: usize) -> String {
    const LETTERS: &[u8] = b"bdfghjkm";
    let mut tag = String::new();
    loop {
        tag.push(char::from(LETTERS[n % 8]));
        n /= 8;
        if n == 0 {
            break;
        }
    }
    format!("Kiwi-{tag}-Pass")
}

/// Complete flows per second at `conc`: rounds in which every user resets once (an
/// authenticator code is good once per 30 s step, so the daemon's clock moves a step on
/// between rounds), until `run` has passed. Each client has a connection of its own, opened
/// before the clock starts.
async fn flow_rate(
    d: &Daemon,
    clock: &TestClock,
    users: &Arc<Vec<FlowUser>>,
    conc: usize,
    run: Duration,
) -> (f64, usize) {
    let mut clients = Vec::new();
    for _ in 0..conc {
        clients.push(d.clients().await);
    }
    let started = Instant::now();
    let mut total = 0usize;
    loop {
        let next = Arc::new(AtomicUsize::new(0));
        let now = clock.now();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(w, mut c)| {
                let (next, users) = (next.clone(), users.clone());
                tokio::spawn(async move {
                    let mut n = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(u) = users.get(i) else { break };
                        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
                        let pw = password(seq * 64 + w);
                        one_flow(&mut c, u, now, &pw).await;
                        n += 1;
                    }
                    (c, n)
                })
            })
            .collect();
        clients = Vec::new();
        for t in tasks {
            let (c, n) = t.await.unwrap();
            clients.push(c);
            total += n;
        }
        clock.advance(30);
        if started.elapsed() >= run {
            break;
        }
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

async fn throughput(questions: bool, concs: &[usize]) {
    let quick = quick();
    let run = Duration::from_millis(if quick { 300 } else { 4_000 });
    let (n_totp, n_questions) = if quick { (16, 8) } else { (1024, 48) };
    let ldap = OpenLdap::start_with(ssprd_testbed::PasswordHash::Ssha).await;
    let work = tempfile::tempdir().unwrap();
    let (direct, mut raw, ca) = setup(&ldap, work.path());
    raw.policy.enabled_methods = vec!["security_questions".into(), "authenticator_code".into()];
    raw.policy.new_method_cooloff_hours = 0;
    let key = work.path().join("totp-key");
    ssprd_testbed::write_private(&key, &"5a".repeat(32)).unwrap();
    raw.authenticator.key = Some(ssprd::config::SecretSource::File(key));
    // The daemon's own /metrics counts its store flushes.
    let metrics: std::net::SocketAddr =
        format!("127.0.0.1:{}", ssprd_testbed::free_port().unwrap())
            .parse()
            .unwrap();
    raw.metrics.listen = Some(metrics.to_string());
    let clock = TestClock::default();
    let d = Daemon::start_with_clock(raw, ca, clock.clock()).await;
    let mut c = d.clients().await;

    let pw = "Bench-Old-1234";
    let mut totp_users = Vec::new();
    for _ in 0..n_totp {
        let login = unique("tput");
        ldap.create_user(&login, pw).await;
        let token = c.begin(&login, pw).await;
        let e = c
            .reg
            .enroll_authenticator(pb::EnrollAuthenticatorRequest {
                registration_token: token.clone(),
            })
            .await
            .expect("EnrollAuthenticator")
            .into_inner();
        let secret = totp::secret_from_uri(&e.otpauth_uri).unwrap();
        c.reg
            .confirm_authenticator(pb::ConfirmAuthenticatorRequest {
                registration_token: token,
                code: totp::code_at(&secret, clock.now()),
            })
            .await
            .expect("ConfirmAuthenticator");
        totp_users.push(FlowUser {
            login,
            totp: Some(secret),
        });
    }
    let mut question_users = Vec::new();
    for _ in 0..n_questions {
        let login = unique("tputq");
        ldap.create_user(&login, pw).await;
        c.register(&login, pw).await;
        question_users.push(FlowUser { login, totp: None });
    }
    // The enrolment used this step's code.
    clock.advance(30);
    let totp_users = Arc::new(totp_users);
    let question_users = Arc::new(question_users);
    // A user per raw worker: two workers on one user would change its password under
    // each other's bind.
    let mut raw_dns = Vec::new();
    for _ in 0..concs.iter().copied().max().unwrap_or(1).max(32) {
        let login = unique("raw");
        ldap.create_user(&login, pw).await;
        raw_dns.push(ldap.user_dn(&login));
    }
    // Warm up both paths.
    raw_rate(&direct, &raw_dns, 2, Duration::from_millis(100)).await;
    flow_rate(&d, &clock, &totp_users, 2, Duration::ZERO).await;

    println!();
    println!(
        "Throughput against slapd hashing with {{SSHA}} ({} ms per figure{})",
        run.as_millis(),
        if quick { ", quick run" } else { "" }
    );
    println!(
        "  conc  raw modify+bind/s   authenticator flows/s (ratio; LDAP conns, ops, store flushes per flow)   question flows/s (ratio; LDAP conns, ops, store flushes per flow)"
    );
    // What reading slapd's counters itself adds to them.
    let slapd = &ldap.slapd;
    let (c0, o0) = (
        slapd.connections_total().await.unwrap(),
        slapd.operations_total().await.unwrap(),
    );
    let (c1, o1) = (
        slapd.connections_total().await.unwrap(),
        slapd.operations_total().await.unwrap(),
    );
    let (c_own, o_own) = (c1 - c0, o1 - o0);
    // (LDAP connections, LDAP operations, store flushes) so far.
    let counters = || async {
        let (_, m) = support::http_get(metrics, "/metrics", "localhost").await;
        let flushes =
            support::metric_value(&m, "ssprd_store_flush_duration_seconds_count").unwrap_or(0.0);
        (
            slapd.connections_total().await.unwrap(),
            slapd.operations_total().await.unwrap(),
            flushes,
        )
    };
    let per = |(c_a, o_a, f_a): (u64, u64, f64), (c_b, o_b, f_b): (u64, u64, f64), n: usize| {
        let n = n.max(1) as f64;
        (
            (c_b - c_a).saturating_sub(c_own) as f64 / n,
            (o_b - o_a).saturating_sub(o_own) as f64 / n,
            (f_b - f_a) / n,
        )
    };
    let mut ceilings = Vec::new();
    for &conc in concs {
        let (raw_ops, _) = raw_rate(&direct, &raw_dns, conc, run).await;
        let before = counters().await;
        let (totp_rate, totp_n) = flow_rate(&d, &clock, &totp_users, conc, run).await;
        let mid = counters().await;
        let (q_rate, q_n) = if questions {
            flow_rate(&d, &clock, &question_users, conc, run).await
        } else {
            (0.0, 0)
        };
        let after = counters().await;
        let (t_conns, t_ops, t_flushes) = per(before, mid, totp_n);
        let (q_conns, q_ops, q_flushes) = per(mid, after, q_n);
        println!(
            "  {conc:4}  {raw_ops:17.0}   {totp_rate:13.1} ({:.3}; {t_conns:.2}, {t_ops:.1}, {t_flushes:.2})                   {q_rate:10.1} ({:.3}; {q_conns:.2}, {q_ops:.1}, {q_flushes:.2})",
            totp_rate / raw_ops,
            q_rate / raw_ops,
        );
        ceilings.push((conc, raw_ops, empty_calls(&d, conc, run).await));
    }
    println!(
        "  The ceiling, from the same run: a flow makes three gRPC calls and at least one raw pair's directory work"
    );
    println!("  conc  empty gRPC call triples/s   highest ratio a flow could reach");
    for (conc, raw_ops, triples) in ceilings {
        println!(
            "  {conc:4}  {triples:25.0}   {:.3}",
            1.0 / (raw_ops / triples + 1.0)
        );
    }
    let (rss, peak) = rss_mib();
    println!("  resident memory of bench + daemon: {rss:.0} MiB now, {peak:.0} MiB peak");
    d.stop().await;
}
