//! A real HTTPS server on loopback standing in for an SMS/voice provider behind ssprd's
//! webhook: Python's http.server with TLS (certificate from a harness CA). It checks the
//! HMAC signature and timestamp, answers 401 when they are wrong, 503 while a `fail_next`
//! counter is positive, 400 for numbers ending in 99 ("refused recipient"), else 200, and
//! records every request as JSON for the test to read. A `delay` makes it answer slowly
//! (a provider under load). Stopped by PID.

use super::BoxError;
use ssprd_testbed::{TestCa, free_port, terminate, write_private};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = r#"
import http.server, ssl, json, hmac, hashlib, os, sys, time, threading
root, port = sys.argv[1], int(sys.argv[2])
secret = open(os.path.join(root, "secret"), "rb").read().strip()
lock = threading.Lock()
count = [len([n for n in os.listdir(root) if n.startswith("req-")])]

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Ssprd-Timestamp", "")
        sig = self.headers.get("X-Ssprd-Signature", "")
        want = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        status = 200
        df = os.path.join(root, "delay_ms")
        if os.path.exists(df):
            time.sleep(int(open(df).read() or 0) / 1000)
        with lock:
            if not (hmac.compare_digest(want, sig) and fresh):
                status = 401
            else:
                ff = os.path.join(root, "fail_next")
                n = int(open(ff).read() or 0) if os.path.exists(ff) else 0
                if n > 0:
                    open(ff, "w").write(str(n - 1))
                    status = 503
                elif json.loads(body).get("to", "").endswith("99"):
                    status = 400
            i = count[0]
            count[0] += 1
            with open(os.path.join(root, "req-%06d.json" % i), "w") as f:
                json.dump({"status": status, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}, f)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(root, "server.crt"), os.path.join(root, "server.key"))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    pub headers: serde_json::Value,
    pub body: serde_json::Value,
    pub raw_body: String,
}

pub struct WebhookServer {
    dir: tempfile::TempDir,
    pub port: u16,
    pub ca_file: PathBuf,
    pub secret: String,
    child: Option<Child>,
}

impl WebhookServer {
    pub async fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("ssprd-webhook.")
            .tempdir()?;
        let ca = TestCa::new("ssprd test webhook CA")?;
        let cert = ca.server_cert(&[])?;
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem())?;
        std::fs::write(dir.path().join("server.crt"), &cert.cert_pem)?;
        write_private(&dir.path().join("server.key"), &cert.key_pem)?;
        let secret = format!("webhook-{}", ssprd::service::new_token());
        write_private(&dir.path().join("secret"), &secret)?;
        std::fs::write(dir.path().join("server.py"), SERVER)?;
        let mut s = Self {
            port: free_port()?,
            ca_file,
            secret,
            child: None,
            dir,
        };
        s.launch().await?;
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/sms", self.port)
    }

    pub fn secret_file(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    async fn launch(&mut self) -> Result<(), BoxError> {
        let d = self.dir.path();
        let out = std::fs::File::create(d.join("server.out"))?;
        let child = Command::new("/usr/bin/python3")
            .arg(d.join("server.py"))
            .arg(d)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::fs::read_to_string(d.join("server.out")).is_ok_and(|s| s.contains("ready")) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("webhook server not ready".into())
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await.expect("webhook server restarts");
    }

    /// Answer 503 to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        std::fs::write(self.dir.path().join("fail_next"), n.to_string()).unwrap();
    }

    /// Answers every request `ms` milliseconds late from now on (0: at once).
    pub fn delay(&self, ms: u64) {
        std::fs::write(self.dir.path().join("delay_ms"), ms.to_string()).unwrap();
    }

    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("req-"))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                let raw_body = v["body"].as_str().unwrap().to_string();
                Received {
                    status: v["status"].as_u64().unwrap() as u16,
                    headers: v["headers"].clone(),
                    body: serde_json::from_str(&raw_body).unwrap_or_default(),
                    raw_body,
                }
            })
            .collect()
    }

    /// The code of the newest accepted message to `to` that carries one (a notification,
    /// whose `code` is empty, may come after it).
    pub fn last_code(&self, to: &str) -> Option<String> {
        self.received().iter().rev().find_map(|r| r.code_to(to))
    }

    /// The code of the first accepted message to `to` that carries one, after the first
    /// `seen` messages: the outbox sends notifications in their own time, before or after it.
    pub fn code_since(&self, to: &str, seen: usize) -> Option<String> {
        self.received()
            .iter()
            .skip(seen)
            .find_map(|r| r.code_to(to))
    }
}

impl Received {
    /// The code this message carries, when it was accepted, went to `to` and has one.
    fn code_to(&self, to: &str) -> Option<String> {
        let code = self.body["code"].as_str().filter(|c| !c.is_empty())?;
        (self.status == 200 && self.body["to"] == to).then(|| code.to_string())
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.stop();
    }
}
