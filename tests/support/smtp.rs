//! A real SMTP server on loopback: aiosmtpd (Debian's python3-aiosmtpd) with STARTTLS
//! (certificate from a harness CA) delivering into a Maildir the tests read. Stopped by PID.

use super::BoxError;
use ssprd::testbed::{TestCa, free_port, terminate, write_private};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    dir: tempfile::TempDir,
    pub port: u16,
    pub ca_file: PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    pub async fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new().prefix("ssprd-smtp.").tempdir()?;
        let ca = TestCa::new("ssprd test SMTP CA")?;
        let cert = ca.server_cert(&[])?;
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem())?;
        std::fs::write(dir.path().join("smtp.crt"), &cert.cert_pem)?;
        write_private(&dir.path().join("smtp.key"), &cert.key_pem)?;
        let mut s = Self {
            port: free_port()?,
            ca_file,
            child: None,
            dir,
        };
        s.launch().await?;
        Ok(s)
    }

    async fn launch(&mut self) -> Result<(), BoxError> {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("aiosmtpd.log"))?;
        // Debian's python has aiosmtpd; a pyenv/venv python on PATH may not.
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
            ])
            .arg("--tlscert")
            .arg(d.join("smtp.crt"))
            .arg("--tlskey")
            .arg(d.join("smtp.key"))
            .args(["--no-requiretls", "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(d.join("maildir"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::AsyncReadExt;
                let mut b = [0u8; 3];
                if s.read_exact(&mut b).await.is_ok() && &b == b"220" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("aiosmtpd.log")).unwrap_or_default();
                return Err(format!("aiosmtpd not ready: {log}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await.expect("aiosmtpd restarts");
    }

    /// All delivered messages (raw RFC 5322 text), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Messages to `to` (the `X-RcptTo` aiosmtpd records).
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.starts_with("X-RcptTo:") && l.contains(to))
            })
            .collect()
    }

    /// The `len`-digit code in the newest message to `to` (the digits after "code is").
    pub fn last_code(&self, to: &str, len: usize) -> Option<String> {
        let m = self.messages_to(to).pop()?;
        let body = m.replace("=\r\n", "").replace("=\n", "");
        body.match_indices("code is ").find_map(|(i, pat)| {
            let rest = body[i + pat.len()..].trim_start_matches("<b>");
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (digits.len() == len).then_some(digits)
        })
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
