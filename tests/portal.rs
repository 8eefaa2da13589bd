//! The web portal in a real browser: Debian's headless Chromium driven over WebDriver
//! (fantoccini → chromedriver), against the daemon with a real slapd and a real SMTP sink;
//! and its protections checked over HTTPS from the outside (headers, cookie, CSRF, origin,
//! a forged Host). Screenshots of each step are written under the cargo target's temp dir
//! and their paths printed.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use ssprd_testbed::{Chromedriver, SmtpSink};
use std::path::PathBuf;
use support::{Daemon, OpenLdap, TestDirectory, answer_for, unique};

const PASSWORD: &str = "Portal-Start-1234";

struct Env {
    ldap: OpenLdap,
    smtp: SmtpSink,
    daemon: Option<Daemon>,
    portal: String,
    portal_addr: std::net::SocketAddr,
    ca_pem: String,
    c: support::Clients,
    _work: tempfile::TempDir,
}

async fn env() -> Env {
    support::init();
    let ldap = OpenLdap::start().await;
    let smtp = SmtpSink::start().await.expect("SMTP sink starts");
    let work = tempfile::tempdir().unwrap();
    let (mut raw, ca) =
        Daemon::config(work.path(), ldap.directory_config(&work.path().join("dir")));
    raw.policy.enabled_methods = ["security_questions", "email"].map(String::from).to_vec();
    raw.email = support::email_to(&smtp);
    // The email address is added after the questions: usable at once.
    raw.policy.new_method_cooloff_hours = 0;
    let port = ssprd_testbed::free_port().unwrap();
    raw.portal.enabled = true;
    raw.portal.listen = format!("127.0.0.1:{port}");
    raw.portal.public_url = format!("https://localhost:{port}/");
    let daemon = Daemon::start(raw, ca.clone()).await;
    let c = daemon.clients().await;
    let portal_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(portal_addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Env {
        ldap,
        smtp,
        daemon: Some(daemon),
        portal: format!("https://localhost:{port}"),
        portal_addr,
        ca_pem: ca,
        c,
        _work: work,
    }
}

impl Env {
    /// A directory user registered with the three test questions and an email address.
    async fn user(&mut self, prefix: &str) -> (String, String) {
        let login = unique(prefix);
        self.ldap.create_user(&login, PASSWORD).await;
        self.c.register(&login, PASSWORD).await;
        let email = format!("{login}@example.org");
        let token = self.c.begin(&login, PASSWORD).await;
        self.c.add_confirmed_email(&token, &email, &self.smtp).await;
        (login, email)
    }

    async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await;
        }
    }
}

/// A WebDriver session: headless, this language first, JavaScript on or off.
async fn browser(driver: &Chromedriver, lang: &str, javascript: bool) -> Client {
    let mut prefs = json!({ "intl.accept_languages": lang });
    if !javascript {
        prefs["profile.managed_default_content_settings.javascript"] = json!(2);
    }
    let caps = json!({
        "browserName": "chrome",
        "acceptInsecureCerts": true,
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1024,900", &format!("--lang={lang}")],
            "prefs": prefs,
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("a WebDriver session")
}

/// Screenshots of one test, kept after the run.
struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    fn new(test: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("portal-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, n: 0 }
    }

    async fn take(&mut self, b: &Client, step: &str) {
        self.n += 1;
        let png = b.screenshot().await.expect("screenshot");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let path = self.dir.join(format!("{:02}-{step}.png", self.n));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
    }
}

/// The element at `css`; the page's source when there is none.
async fn find(b: &Client, css: &str) -> fantoccini::elements::Element {
    match b.find(Locator::Css(css)).await {
        Ok(el) => el,
        Err(e) => panic!("{css}: {e}; page: {}", b.source().await.unwrap_or_default()),
    }
}

async fn text(b: &Client, css: &str) -> String {
    find(b, css).await.text().await.unwrap()
}

async fn fill(b: &Client, css: &str, value: &str) {
    find(b, css).await.send_keys(value).await.unwrap();
}

async fn click(b: &Client, css: &str) {
    find(b, css).await.click().await.unwrap();
}

/// The browser console since the last call (a chromedriver extension: `/se/log`).
async fn console(driver: &Chromedriver, b: &Client) -> Vec<String> {
    let id = b.session_id().await.unwrap().expect("a session id");
    let r: Value = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url()))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{} {}", e["level"], e["message"]))
                .collect()
        })
        .unwrap_or_default()
}

fn driver_or_fail() {
    assert!(
        Chromedriver::available(),
        "chromium and chromium-driver are not installed: run scripts/install-test-deps.sh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_with_an_emailed_code_in_a_browser() {
    driver_or_fail();
    let mut e = env().await;
    let (login, email) = e.user("webmail").await;
    let driver = Chromedriver::start().await.expect("chromedriver starts");
    let b = browser(&driver, "en-GB,en", true).await;
    let mut shots = Shots::new("email-reset");

    b.goto(&format!("{}/", e.portal)).await.unwrap();
    assert_eq!(text(&b, "h1").await, "How can we help?");
    shots.take(&b, "home").await;
    click(&b, "a[href='/reset']").await;
    assert_eq!(text(&b, "h1").await, "Reset your password");
    fill(&b, "#login", &login).await;
    shots.take(&b, "name").await;
    click(&b, "#continue").await;

    assert_eq!(text(&b, "h1").await, "Prove it is you");
    let hint = text(&b, "#method-email + p").await;
    assert!(hint.contains("•••@example.org"), "{hint}");
    let before = e.smtp.messages_to(&email).len();
    click(&b, "#send-email").await;
    assert!(text(&b, ".notice").await.contains("We sent a code"));
    let code = support::wait_for(|| e.smtp.code_since(&email, 8, before)).await;
    shots.take(&b, "code-sent").await;
    // A wrong code first: refused, with the error summary linked to the field.
    fill(&b, "#email-code", "00000000").await;
    click(&b, "#verify-email").await;
    assert_eq!(text(&b, "#error-summary h2").await, "There is a problem");
    let wrong = text(&b, "#error-summary a").await;
    assert!(
        wrong.contains("not correct") || wrong.contains("not right"),
        "{wrong}"
    );
    shots.take(&b, "wrong-code").await;
    fill(&b, "#email-code", &code).await;
    click(&b, "#verify-email").await;

    assert_eq!(text(&b, "h1").await, "Choose a new password");
    let rules = text(&b, ".rules").await;
    assert!(
        rules.contains("at least 8 characters"),
        "the directory's minimum: {rules}"
    );
    // The directory refuses the current password (pwdInHistory): its reason, in words.
    fill(&b, "#new_password", PASSWORD).await;
    fill(&b, "#confirm_password", PASSWORD).await;
    click(&b, "#set-password").await;
    let refused = text(&b, "#error-summary").await;
    assert!(refused.contains("you used it before"), "{refused}");
    shots.take(&b, "directory-refusal").await;
    let new = "Browser-Chosen-5678";
    fill(&b, "#new_password", new).await;
    fill(&b, "#confirm_password", new).await;
    click(&b, "#set-password").await;
    assert_eq!(text(&b, "h1").await, "Done");
    shots.take(&b, "done").await;
    assert!(e.ldap.can_bind(&login, new).await, "the new password binds");
    assert!(!e.ldap.can_bind(&login, PASSWORD).await);

    let log = console(&driver, &b).await;
    let csp: Vec<_> = log
        .iter()
        .filter(|l| l.contains("Content Security Policy"))
        .collect();
    assert!(csp.is_empty(), "CSP violations: {csp:?}");
    b.close().await.unwrap();
    drop(driver);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_pages_and_security_questions_without_javascript() {
    driver_or_fail();
    let mut e = env().await;
    let (login, _) = e.user("webde").await;
    let driver = Chromedriver::start().await.expect("chromedriver starts");
    let b = browser(&driver, "de-DE,de", false).await;
    let mut shots = Shots::new("questions-de-nojs");

    b.goto(&format!("{}/", e.portal)).await.unwrap();
    let html = b.find(Locator::Css("html")).await.unwrap();
    assert_eq!(html.attr("lang").await.unwrap().as_deref(), Some("de"));
    assert_eq!(text(&b, "h1").await, "Wobei können wir helfen?");
    click(&b, "a[href='/reset']").await;
    assert_eq!(text(&b, "h1").await, "Passwort zurücksetzen");
    fill(&b, "#login", &login).await;
    click(&b, "#continue").await;
    assert_eq!(text(&b, "h1").await, "Weisen Sie sich aus");
    shots.take(&b, "methods").await;
    let inputs = b
        .find_all(Locator::Css("input[data-question]"))
        .await
        .unwrap();
    assert_eq!(inputs.len(), 3, "three questions drawn");
    for input in &inputs {
        let id = input.attr("data-question").await.unwrap().unwrap();
        input.send_keys(&answer_for(&id)).await.unwrap();
    }
    // The questions are asked in German.
    let labels = text(&b, ".method").await;
    assert!(
        labels.contains('?') && !labels.contains("What was"),
        "{labels}"
    );
    click(&b, "#verify-security_questions").await;
    assert_eq!(text(&b, "h1").await, "Neues Passwort wählen");
    // A mismatch is explained in German, next to the field.
    fill(&b, "#new_password", "Ohne-Skript-4321").await;
    fill(&b, "#confirm_password", "Ohne-Skript-4322").await;
    click(&b, "#set-password").await;
    assert!(text(&b, "#error-summary a").await.contains("nicht gleich"));
    let href = b
        .find(Locator::Css("#error-summary a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(href.as_deref(), Some("#confirm_password"));
    shots.take(&b, "mismatch").await;
    fill(&b, "#new_password", "Ohne-Skript-4321").await;
    fill(&b, "#confirm_password", "Ohne-Skript-4321").await;
    click(&b, "#set-password").await;
    assert_eq!(text(&b, "h1").await, "Erledigt");
    shots.take(&b, "done").await;
    assert!(e.ldap.can_bind(&login, "Ohne-Skript-4321").await);

    // The selector switches to French for this session.
    b.goto(&format!("{}/", e.portal)).await.unwrap();
    let select = b.find(Locator::Css("#lang-select")).await.unwrap();
    select.select_by_value("fr").await.unwrap();
    click(&b, ".language button").await;
    assert_eq!(text(&b, "h1").await, "Comment pouvons-nous vous aider ?");
    b.close().await.unwrap();
    drop(driver);
    e.stop().await;
}

/// An HTTPS client that trusts the test CA and reaches `localhost` at the portal.
fn https(e: &Env) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(e.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", e.portal_addr)
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .build()
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_cookie_csrf_and_links_hold_from_outside() {
    let mut e = env().await;
    let (login, email) = e.user("webcsrf").await;
    let http = https(&e);
    let home = format!("{}/", e.portal);

    let r = http.get(&home).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-ssprd="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page = r.text().await.unwrap();
    let csrf = csrf_of(&page);
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "nothing inline"
    );

    // A forged Host changes no link.
    let forged = http
        .get(&home)
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!forged.contains("evil.example"), "{forged}");

    let mails = e.smtp.messages_to(&email).len();
    let post = |form: Vec<(&'static str, String)>, cookie: Option<String>, origin: Option<&str>| {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http
            .post(format!("{}/reset", e.portal))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    // Without a token, with a wrong one, without the session, from another site: refused.
    for (form, cookie, origin) in [
        (vec![("login", login.clone())], Some(session.clone()), None),
        (
            vec![("login", login.clone()), ("csrf", "x".repeat(43))],
            Some(session.clone()),
            None,
        ),
        (
            vec![("login", login.clone()), ("csrf", csrf.clone())],
            None,
            None,
        ),
        (
            vec![("login", login.clone()), ("csrf", csrf.clone())],
            Some(session.clone()),
            Some("https://evil.example"),
        ),
    ] {
        let r = post(form, cookie, origin).await.unwrap();
        assert_eq!(r.status(), 403);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("expired or did not come from this site"),
            "{body}"
        );
    }
    // Refused forms started nothing: the session has no flow.
    let r = http
        .get(format!("{}/verify", e.portal))
        .header("cookie", session.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(e.smtp.messages_to(&email).len(), mails);

    // With the session's token and from the portal itself, the same form works.
    let r = post(
        vec![("login", login.clone()), ("csrf", csrf.clone())],
        Some(session.clone()),
        Some(e.portal.as_str()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/verify");
    let verify = http
        .get(format!("{}/verify", e.portal))
        .header("cookie", session.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(verify.contains("Prove it is you"), "{verify}");
    // No flow id or token in any URL of the page.
    for url in verify
        .split("href=\"")
        .skip(1)
        .chain(verify.split("action=\"").skip(1))
    {
        let url = url.split('"').next().unwrap();
        assert!(!url.contains('?'), "{url}");
    }

    // An unknown user gets the same pages.
    let r = post(
        vec![("login", unique("nobody")), ("csrf", csrf.clone())],
        Some(session.clone()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["location"], "/verify");
    e.stop().await;
}
