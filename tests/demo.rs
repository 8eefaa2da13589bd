//! `ssprd demo` (cargo feature `demo`), as the README's first command runs it: the binary
//! starts a throwaway slapd, the daemon and its portal; a gRPC client registers the demo
//! user and resets the password, then the portal resets it again the way a browser does;
//! Ctrl-C stops everything and removes the work directory.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_ssprd");

#[tokio::test]
async fn the_demo_registers_and_resets_the_demo_user_then_cleans_up() {
    support::init();
    let port = ssprd_testbed::free_port().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ssprd demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut work = None;
    let mut metrics = None;
    let mut portal = None;
    let mut running = false;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            running |= line.contains("ssprd demo is running");
            if let Some(url) = line.trim().strip_prefix("portal    : https://localhost:") {
                portal = url.split('/').next().and_then(|p| p.parse::<u16>().ok());
            }
            if let Some(url) = line.trim().strip_prefix("metrics   : http://") {
                metrics = url.split('/').next().and_then(|a| a.parse().ok());
            }
            if let Some(dir) = line.trim().strip_prefix("work dir  : ") {
                work = Some(PathBuf::from(dir));
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the demo prints its banner within 60 s");
    assert!(running, "banner");
    let work = work.expect("the banner names the work dir");
    assert!(work.join("ssprd.toml").exists());

    let ca = std::fs::read_to_string(work.join("grpc/ca.crt")).unwrap();
    let mut c = support::scenarios::connect_daemon(port, &ca).await;
    c.register("demo", "Demo-Pass-1").await;
    let flow = c.verified_flow("demo").await;
    let done = c
        .complete(&flow, "Brand-New-Pass-9", false)
        .await
        .expect("CompleteReset");
    assert!(done.verified_by_bind, "the new password works at slapd");

    // The management listener: the reset is counted.
    let metrics: std::net::SocketAddr = metrics.expect("the banner names the metrics URL");
    let (status, text) = support::http_get(metrics, "/metrics", "localhost").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"ssprd_recoveries_total{action="reset.complete",methods="security_questions"} 1"#
        ),
        "{text}"
    );

    // The portal serves the same daemon: the demo user resets again, as in a browser.
    let portal = portal.expect("the banner names the portal");
    portal_reset(portal, &ca, "Portal-New-Pass-7").await;

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("Ctrl-C stops the demo")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !work.exists(),
        "the work dir is removed: {}",
        work.display()
    );
}

/// A reset on the demo's portal with an HTTPS client that keeps the session cookie, as a
/// browser without JavaScript does: the name, the drawn questions answered, the new
/// password, done.
async fn portal_reset(port: u16, ca: &str, new_password: &str) {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let mut cookie = String::new();
    let mut keep = |r: &reqwest::Response| {
        if let Some(c) = r.headers().get("set-cookie") {
            cookie = c.to_str().unwrap().split(';').next().unwrap().to_string();
        }
        cookie.clone()
    };
    let csrf = |page: &str| {
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        page[at..].split('"').next().unwrap().to_string()
    };
    let r = http.get(format!("{base}/reset")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let c = keep(&r);
    let page = r.text().await.unwrap();
    let r = http
        .post(format!("{base}/reset"))
        .header("cookie", &c)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("login", "demo".to_string()),
            ("csrf", csrf(&page)),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/verify");
    let c = keep(&r);
    let page = fetch(&http, &format!("{base}/verify"), &c).await;
    let names = ["answer-0", "answer-1", "answer-2"];
    let mut form = vec![
        ("method", "security_questions".to_string()),
        ("csrf", csrf(&page)),
    ];
    for (i, part) in page.split("data-question=\"").skip(1).enumerate() {
        let id = part.split('"').next().unwrap();
        form.push((names[i], support::answer_for(id)));
    }
    assert_eq!(form.len(), 5, "three questions drawn: {page}");
    let r = http
        .post(format!("{base}/verify"))
        .header("cookie", &c)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/password");
    let page = fetch(&http, &format!("{base}/password"), &c).await;
    let r = http
        .post(format!("{base}/password"))
        .header("cookie", &c)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("new_password", new_password.to_string()),
            ("confirm_password", new_password.to_string()),
            ("csrf", csrf(&page)),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/done");
    let done = fetch(&http, &format!("{base}/done"), &c).await;
    assert!(done.contains("Your password has been changed"), "{done}");
}

fn encode(form: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// The page at `url` in the session `cookie`.
async fn fetch(http: &reqwest::Client, url: &str, cookie: &str) -> String {
    let r = http.get(url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}
