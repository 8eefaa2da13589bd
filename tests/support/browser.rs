//! A real headless Chromium driven over WebDriver (fantoccini): a session per test, the
//! steps the portal tests take (find, fill, click and wait for the next page), screenshots
//! kept under `target/tmp/portal-screenshots/`, the browser console, and axe-core scans.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use ssprd_testbed::Chromedriver;
use std::path::PathBuf;

/// A WebDriver session: headless, this language first, JavaScript on or off.
pub async fn browser(driver: &Chromedriver, lang: &str, javascript: bool) -> Client {
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
pub struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    pub fn new(test: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("portal-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, n: 0 }
    }

    pub async fn take(&mut self, b: &Client, step: &str) {
        self.n += 1;
        let png = b.screenshot().await.expect("screenshot");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let path = self.dir.join(format!("{:02}-{step}.png", self.n));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
    }
}

/// The element at `css`; the page's source when there is none.
pub async fn find(b: &Client, css: &str) -> fantoccini::elements::Element {
    match b.find(Locator::Css(css)).await {
        Ok(el) => el,
        Err(e) => panic!("{css}: {e}; page: {}", b.source().await.unwrap_or_default()),
    }
}

pub async fn text(b: &Client, css: &str) -> String {
    find(b, css).await.text().await.unwrap()
}

/// The current value of the form field at `css`.
pub async fn value_of(b: &Client, css: &str) -> String {
    find(b, css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

pub async fn fill(b: &Client, css: &str, value: &str) {
    find(b, css).await.send_keys(value).await.unwrap();
}

/// Clicks a link or submit button and waits for the next page to load (every click in
/// these tests navigates): the old document's root goes stale, the new one is complete.
pub async fn click(b: &Client, css: &str) {
    let old = find(b, "html").await;
    find(b, css).await.click().await.unwrap();
    let started = std::time::Instant::now();
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed().as_secs() < 15,
            "{css}: no new page after the click"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    loop {
        let state = b
            .execute("return document.readyState", vec![])
            .await
            .unwrap_or_default();
        if state == "complete" {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 15,
            "{css}: the page did not load"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The browser console since the last call (a chromedriver extension: `/se/log`).
pub async fn console(driver: &Chromedriver, b: &Client) -> Vec<String> {
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

/// axe-core (the accessibility engine), fetched once with npm into the target dir.
pub fn axe_source() -> String {
    static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("axe-core");
        let file = dir.join("node_modules/axe-core/axe.min.js");
        if !file.exists() {
            let out = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
                .args(["--loglevel=error", "--prefix"])
                .arg(&dir)
                .arg("axe-core@4.14")
                .output()
                .expect("npm runs (scripts/install-test-deps.sh installs it)");
            assert!(
                out.status.success(),
                "npm install axe-core: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::read_to_string(file).expect("axe.min.js")
    })
    .clone()
}

/// axe-core's serious and critical violations of WCAG 2.1 A and AA (and its best
/// practices) on the current page: (axe's version, the violations).
pub async fn violations(b: &Client) -> (Value, Value) {
    let version = b
        .execute(&format!("{}\n;return axe.version;", axe_source()), vec![])
        .await
        .unwrap();
    let found = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations'],
                                runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})
               .then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.map(n => n.html)}))),
                     e => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    (version, found)
}

/// The current page has no serious or critical accessibility violation.
pub async fn accessible(b: &Client, page: &str) {
    let (version, found) = violations(b).await;
    assert_eq!(
        found,
        json!([]),
        "axe-core {version} on {page}: serious or critical violations"
    );
    println!("axe-core {version}: {page}: no serious or critical violation");
}

/// The current page fits the window's width: nothing scrolls sideways (at 320 px: a small
/// phone, or 400 % zoom — WCAG 1.4.10). On failure, the elements that stick out.
pub async fn fits_width(b: &Client, page: &str) {
    let fits = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    if fits != json!(true) {
        let why = b
            .execute(
                "return [window.innerWidth, document.documentElement.scrollWidth,
                  [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                    .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))
                    .slice(0, 8)]",
                vec![],
            )
            .await
            .unwrap();
        panic!("{page} does not fit the width: {why}");
    }
}

pub fn driver_or_fail() {
    assert!(
        Chromedriver::available(),
        "chromium and chromium-driver are not installed: run scripts/install-test-deps.sh"
    );
}

/// Fills the Change password form on the current page and submits it.
pub async fn submit_change(b: &Client, login: &str, current: &str, new: &str) {
    fill(b, "#login", login).await;
    fill(b, "#current_password", current).await;
    fill(b, "#new_password", new).await;
    fill(b, "#confirm_password", new).await;
    click(b, "#change-password").await;
}
