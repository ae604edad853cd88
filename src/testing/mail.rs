//! Reading the mail an app sent, as a person's mail client would: from the
//! `file:` backend's folder, or from a real SMTP server on loopback
//! ([`SmtpServer`], Python's `aiosmtpd` writing to a maildir).

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::services;

/// A mail as its reader sees it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The `To` header.
    pub to: String,
    /// The `Subject` header.
    pub subject: String,
    /// The `Message-ID` header.
    pub message_id: String,
    /// The plain text part, decoded.
    pub text: String,
    /// The HTML part, decoded.
    pub html: String,
}

impl ReceivedMail {
    /// The first link in the plain text part that starts with `prefix`
    /// (an absolute URL, as `http://localhost:8080/password/reset/`).
    pub fn link(&self, prefix: &str) -> Option<String> {
        let start = self.text.find(prefix)?;
        let link: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Some(link)
    }

    /// The path of the first link to this site's `path_prefix`
    /// (`/password/reset/`), whatever the host, for a test client.
    pub fn path(&self, path_prefix: &str) -> Option<String> {
        let link = self.text.split_whitespace().find(|word| {
            word.starts_with("http")
                && word
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                    .is_some_and(|path| path.starts_with(path_prefix))
        })?;
        let rest = link.split_once("://")?.1;
        Some(rest[rest.find('/')?..].to_owned())
    }
}

/// Parses a MIME message as Porter writes it (multipart/alternative,
/// quoted-printable parts).
pub fn parse_mail(raw: &[u8]) -> ReceivedMail {
    let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let header = |head: &str, name: &str| -> String {
        // Unfold continuation lines first.
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        unfolded
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let content_type = header(head, "Content-Type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .map(|b| {
            b.trim_matches('"')
                .split(['"', ';'])
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    let mut text = String::new();
    let mut html = String::new();
    for part in body.split(&format!("--{boundary}")) {
        let part = part.trim_start_matches('\n');
        let Some((part_head, part_body)) = part.split_once("\n\n") else {
            continue;
        };
        let kind = header(part_head, "Content-Type").to_ascii_lowercase();
        let encoding = header(part_head, "Content-Transfer-Encoding").to_ascii_lowercase();
        let decoded = if encoding == "quoted-printable" {
            decode_quoted_printable(part_body)
        } else {
            part_body.to_owned()
        };
        if kind.starts_with("text/plain") {
            text = decoded;
        } else if kind.starts_with("text/html") {
            html = decoded;
        }
    }
    ReceivedMail {
        to: header(head, "To"),
        subject: header(head, "Subject"),
        message_id: header(head, "Message-ID"),
        text,
        html,
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mail in a folder of `.eml` files, or in a maildir's `new/` and
/// `cur/`, oldest first.
pub fn read_mail_dir(dir: &Path) -> Vec<ReceivedMail> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["", "new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && !path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with('.'))
        })
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, path)| std::fs::read(path).ok())
        .map(|raw| parse_mail(&raw))
        .collect()
}

/// A real SMTP server on loopback: Python's `aiosmtpd`, delivering every
/// mail it accepts into a maildir. Stopped when dropped.
pub struct SmtpServer {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// Whether `aiosmtpd` can be run. Under `CI=true` its absence fails the
    /// test; elsewhere the test says it was skipped.
    pub fn available() -> bool {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if installed {
            return true;
        }
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("aiosmtpd is required under CI=true (pip install aiosmtpd)");
        }
        services::skipped("no SMTP server for the test (pip install aiosmtpd)");
        false
    }

    /// A free port on 127.0.0.1, where no server listens yet.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port")
    }

    /// Starts a server on `port` and waits until it answers.
    pub fn start_on(port: u16) -> Self {
        let maildir = tempfile::tempdir().expect("a maildir");
        let mut server = Self {
            child: None,
            port,
            maildir,
        };
        server.restart();
        server
    }

    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(Self::free_port())
    }

    /// The `EMAIL_URL` that sends to this server.
    pub fn email_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server: the port refuses connections until
    /// [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its port, keeping the mail it received.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            // A path that does not exist yet: Python's Maildir creates it
            // with its tmp/, new/ and cur/ folders.
            .arg(self.maildir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd runs");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the SMTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every mail the server accepted, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        read_mail_dir(&self.maildir.path().join("maildir"))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_is_decoded() {
        assert_eq!(
            decode_quoted_printable("a=3Db and a very long line that was=\nsplit"),
            "a=b and a very long line that wassplit"
        );
        assert_eq!(decode_quoted_printable("caf=C3=A9"), "café");
    }
}
