//! Writeback latency, measured against a real slapd over LDAPS (run with
//! `cargo bench --bench writeback`; needs slapd, see `scripts/install-test-deps.sh`).
//!
//! Product reference: Entra's synchronous writeback answers in under 500 ms on average. ssprd
//! is compared with a baseline measured in the same run against the same server — the
//! least directory work the same step needs, done directly with ldap3:
//!
//! - **CompleteReset** (gRPC+TLS, write intent flushed, password-change marker read,
//!   Password Modify as the service account, verification bind as the user, flow and
//!   counters committed, audit record) against *connect + service bind + Password Modify,
//!   then connect + user bind*;
//! - **StartReset** (gRPC+TLS, user search, registration read, flow stored, audit record)
//!   against *connect + service bind + user search*.
//!
//! Calls alternate between ssprd and the baseline so both see the same machine load. The
//! figures are printed, not asserted.

#[path = "../tests/support/mod.rs"]
mod support;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope};
use std::time::{Duration, Instant};
use support::{Daemon, OpenLdap, TestDirectory, client_tls, unique};

const USERS: usize = 40;

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
    let ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir_cfg = ldap.directory_config(&work.path().join("dir"));
    let direct = Direct {
        uri: ldap.slapd.ldaps_uri(),
        ca_pem: ldap.slapd.ca_pem.clone(),
        service_dn: dir_cfg.bind_dn.clone(),
        service_password: ldap.slapd.service_password.expose().to_string(),
    };
    let (mut raw, ca) = Daemon::config(work.path(), dir_cfg);
    raw.server.per_client_requests_per_minute = 0;
    // The default local rules, common-password list included, are part of what is measured.
    raw.password = ssprd::config::RawPassword::default();
    let d = Daemon::start(raw, ca).await;
    let mut c = d.clients().await;

    let pw = "Bench-Old-1234";
    let mut logins = Vec::new();
    for _ in 0..USERS {
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
