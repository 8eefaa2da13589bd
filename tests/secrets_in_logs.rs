//! The flows at TRACE (ssprd, tonic, h2, rustls, ldap3 via `log`) with canary secrets:
//! none of them may appear in the captured logs, in `Debug` output of the configuration, or
//! in any error message or detail returned to clients.

mod support;

use ssprd::api::pb;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::{OpenLdap, TestDirectory, scenarios};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_debug_or_errors() {
    support::init();
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this test binary");

    let mut ldap = OpenLdap::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir_cfg = ldap.directory_config(&work.path().join("dir"));
    let (raw, ca) = support::Daemon::config(work.path(), dir_cfg);
    let checked = raw.clone().validate().unwrap();
    let debug_cfg = format!("{checked:?} {raw:?}");
    let daemon = support::Daemon::start(raw, ca).await;
    let mut c = daemon.clients().await;

    let mut canaries: Vec<String> = vec![
        ldap.slapd.service_password.expose().to_string(),
        ldap.slapd.root_password.expose().to_string(),
    ];
    // The gRPC server's private key (its base64 body).
    let key = std::fs::read_to_string(work.path().join("server.key")).unwrap();
    canaries.extend(
        key.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(String::from),
    );

    // A flow whose every secret is a canary: password, answers, tokens, new password.
    let login = "canary-user";
    let old = "Canary-Old-Pw-7f3a";
    let new = "Canary-New-Pw-9e1b";
    ldap.create_user(login, old).await;
    let mut errors = Vec::new();
    let begin = c
        .reg
        .begin_registration(pb::BeginRegistrationRequest {
            username: login.into(),
            password: old.into(),
        })
        .await
        .unwrap()
        .into_inner();
    canaries.push(begin.registration_token.clone());
    let answers: Vec<(&str, &str)> = vec![
        ("bank.first_pet", "Canary Pet Zq81"),
        ("bank.birth_city", "Canary City Xw27"),
        ("bank.first_car", "Canary Car Vy64"),
    ];
    for (_, a) in &answers {
        canaries.push(a.to_string());
        canaries.push(a.to_lowercase());
    }
    c.reg
        .set_security_questions(pb::SetSecurityQuestionsRequest {
            registration_token: begin.registration_token.clone(),
            answers: answers
                .iter()
                .map(|(q, a)| pb::QuestionAnswer {
                    question_id: q.to_string(),
                    answer: a.to_string(),
                })
                .collect(),
        })
        .await
        .unwrap();
    // Wrong registration password (an error path).
    let wrong_pw = "Canary-Wrong-Pw-4d2c";
    canaries.push(wrong_pw.into());
    errors.push(
        c.reg
            .begin_registration(pb::BeginRegistrationRequest {
                username: login.into(),
                password: wrong_pw.into(),
            })
            .await
            .unwrap_err(),
    );
    let s = c.start(login).await;
    canaries.push(s.flow_id.clone());
    let wrong_answer = "Canary Wrong Answer Kk55";
    canaries.push(wrong_answer.into());
    let v = c
        .verify_with(&s.flow_id, &s.methods, |_| wrong_answer.into())
        .await
        .unwrap();
    let v = c
        .verify_with(&s.flow_id, &v.remaining, |q| {
            answers.iter().find(|(id, _)| *id == q).unwrap().1.into()
        })
        .await
        .unwrap();
    assert!(v.verified);
    // Refused by policy, then directory down, then success.
    let refused = "Canary1"; // too short: refused by ppolicy
    canaries.push("Canary1".into());
    errors.push(c.complete(&s.flow_id, refused, false).await.unwrap_err());
    ldap.stop().await;
    errors.push(c.complete(&s.flow_id, new, false).await.unwrap_err());
    ldap.start().await;
    canaries.push(new.into());
    c.complete(&s.flow_id, new, true).await.unwrap();
    canaries.push(old.into());

    // The shared scenarios too (their passwords are canaries as well).
    scenarios::register_and_reset(&ldap, &mut c).await;
    scenarios::registration_errors(&ldap, &mut c).await;
    canaries.extend(
        [
            "Old-Pass-1234",
            "New-Pass-5678",
            "Reg-Pass-1234",
            "Answer to first_pet",
            "answer to first_pet",
        ]
        .map(String::from),
    );

    daemon.stop().await;
    drop(ldap);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("TRACE") && logs.contains("ssprd"),
        "TRACE capture is working"
    );
    assert!(logs.len() > 10_000, "captured {} bytes only", logs.len());
    // The noisy layers under the secrets are in the capture too.
    for target in ["h2::", "rustls::", "sled::", "complete_reset"] {
        assert!(logs.contains(target), "no {target} lines captured");
    }
    let mut error_text = String::new();
    for e in &errors {
        error_text.push_str(&format!("{e:?} {} {:?}\n", e.message(), e.details()));
    }
    for canary in &canaries {
        assert!(
            !logs.contains(canary.as_str()),
            "secret {canary:?} found in logs"
        );
        assert!(
            !debug_cfg.contains(canary.as_str()),
            "secret {canary:?} found in config Debug output"
        );
        assert!(
            !error_text.contains(canary.as_str()),
            "secret {canary:?} found in an error returned to the client"
        );
    }
    eprintln!(
        "checked {} canaries against {} bytes of TRACE logs and {} errors",
        canaries.len(),
        logs.len(),
        errors.len()
    );
}
