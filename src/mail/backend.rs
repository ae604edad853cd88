//! Where mail goes: Django's `EMAIL_BACKEND`, chosen by one URL,
//! `EMAIL_URL`, and sent with lettre.
//!
//! | `EMAIL_URL` | what happens to a mail |
//! | ----------- | ---------------------- |
//! | `console:` | printed on standard output, readable (Django's console backend; the default) |
//! | `file:///dir` | written to `dir` as one `.eml` file per mail (Django's file backend) |
//! | `smtp://user:pass@host:port` | sent over SMTP, upgraded with STARTTLS when the server offers it (port 25 by default) |
//! | `smtp+starttls://…` | the same, refusing to send unless STARTTLS succeeds (port 587) |
//! | `smtps://…` | sent over TLS from the first byte (port 465) |
//!
//! A user name or password in the URL is percent-decoded; neither is ever
//! shown (see [`EmailUrl::describe`]).

use std::{
    fmt,
    io::Write,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType},
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use thiserror::Error;

use super::Mail;

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How an SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS when the server offers it, plain otherwise (`smtp://`).
    Opportunistic,
    /// STARTTLS or nothing (`smtp+starttls://`).
    StartTls,
    /// TLS from the start (`smtps://`).
    Tls,
}

/// A parsed `EMAIL_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum EmailUrl {
    /// Print each mail.
    Console,
    /// Write each mail to a file in this folder.
    File(PathBuf),
    /// Send over SMTP.
    Smtp {
        /// The server's host name.
        host: String,
        /// Its port.
        port: u16,
        /// How the connection is encrypted.
        security: SmtpSecurity,
        /// User name and password, when the server wants them.
        credentials: Option<(String, String)>,
    },
}

impl fmt::Debug for EmailUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl EmailUrl {
    /// Reads an `EMAIL_URL`; the error says what is wrong in words.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value == "console:" || value == "console://" {
            return Ok(Self::Console);
        }
        if let Some(path) = value.strip_prefix("file://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(
                    "a file: URL names an absolute folder, as file:///var/mail/porter".into(),
                );
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        let url = url::Url::parse(value).map_err(|_| {
            "is not a URL; use console:, file:///dir, smtp://host:port, smtp+starttls://… or smtps://…"
                .to_owned()
        })?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::Opportunistic, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::Tls, 465),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}; use console:, file:///dir, smtp://, smtp+starttls:// or smtps://"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("names no SMTP host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| {
                    "the user name or password is not valid percent-encoded UTF-8".to_owned()
                })
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or_default())?)),
        };
        Ok(Self::Smtp {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }

    /// The URL as it may be shown: no password.
    pub fn describe(&self) -> String {
        match self {
            Self::Console => "console:".into(),
            Self::File(dir) => format!("file://{}", dir.display()),
            Self::Smtp {
                host,
                port,
                security,
                credentials,
            } => {
                let scheme = match security {
                    SmtpSecurity::Opportunistic => "smtp",
                    SmtpSecurity::StartTls => "smtp+starttls",
                    SmtpSecurity::Tls => "smtps",
                };
                let user = credentials
                    .as_ref()
                    .map(|(user, _)| format!("{user}:***@"))
                    .unwrap_or_default();
                format!("{scheme}://{user}{host}:{port}")
            }
        }
    }

    /// Whether mail sent this way reaches no one (console and file).
    pub fn stays_local(&self) -> bool {
        matches!(self, Self::Console | Self::File(_))
    }
}

/// Why a mail was not sent.
#[derive(Debug, Error)]
pub enum SendError {
    /// Sending again will not help: the server refused the mail for good
    /// (a 5xx answer), or the mail cannot be built (a bad address).
    #[error("refused for good: {0}")]
    Permanent(String),
    /// Worth another try later: the server is down, busy or unreachable.
    #[error("failed for now: {0}")]
    Transient(String),
}

/// The configured way of sending, and the `From` address.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

enum Transport {
    Console,
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.transport {
            Transport::Console => "console",
            Transport::File(_) => "file",
            Transport::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer")
            .field("transport", &kind)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// Reads `EMAIL_FROM`: an address, with or without a name
/// (`Porter <noreply@example.com>`).
pub fn parse_from(value: &str) -> Result<Mailbox, String> {
    Mailbox::from_str(value.trim()).map_err(|err| {
        format!("{value:?} is not an address, as noreply@example.com or \"Porter <noreply@example.com>\" ({err})")
    })
}

impl Mailer {
    /// The mailer `url` describes, sending as `from`.
    pub fn new(url: &EmailUrl, from: Mailbox) -> Result<Self, SendError> {
        let transport = match url {
            EmailUrl::Console => Transport::Console,
            EmailUrl::File(dir) => Transport::File(dir.clone()),
            EmailUrl::Smtp {
                host,
                port,
                security,
                credentials,
            } => {
                let tls = || {
                    TlsParameters::new(host.clone())
                        .map_err(|err| SendError::Permanent(format!("TLS set-up failed: {err}")))
                };
                let tls = match security {
                    SmtpSecurity::Opportunistic => Tls::Opportunistic(tls()?),
                    SmtpSecurity::StartTls => Tls::Required(tls()?),
                    SmtpSecurity::Tls => Tls::Wrapper(tls()?),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(SMTP_TIMEOUT));
                if let Some((user, password)) = credentials {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self { transport, from })
    }

    /// The `From` address.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Builds the MIME message for `mail`, with `Message-ID: <{message_id}@{domain of From}>`.
    pub fn message(&self, mail: &Mail, message_id: &str) -> Result<Message, SendError> {
        let to = Mailbox::from_str(&mail.to)
            .map_err(|err| SendError::Permanent(format!("bad recipient: {err}")))?;
        let part = |content_type: ContentType, body: &str| {
            // Quoted-printable keeps every line short and every byte
            // 7-bit, whatever the server; the text stays readable.
            SinglePart::builder()
                .header(content_type)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(body.to_owned())
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(format!("<{message_id}@{}>", self.from.email.domain())))
            .multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, &mail.text))
                    .singlepart(part(ContentType::TEXT_HTML, &mail.html)),
            )
            .map_err(|err| SendError::Permanent(format!("the mail cannot be built: {err}")))
    }

    /// Sends `mail` now. `message_id` stays the same across retries of one
    /// mail, so a receiving server can drop a duplicate.
    pub async fn send(&self, mail: &Mail, message_id: &str) -> Result<(), SendError> {
        let message = self.message(mail, message_id)?;
        match &self.transport {
            Transport::Console => {
                print_readable(&self.from, mail);
                Ok(())
            }
            Transport::File(dir) => {
                let (dir, id) = (dir.clone(), message_id.to_owned());
                let bytes = message.formatted();
                actix_web::rt::task::spawn_blocking(move || write_eml(&dir, &id, &bytes))
                    .await
                    .map_err(|err| SendError::Transient(err.to_string()))?
                    .map_err(|err| SendError::Transient(format!("cannot write the mail: {err}")))
            }
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_permanent() => Err(SendError::Permanent(err.to_string())),
                Err(err) => Err(SendError::Transient(err.to_string())),
            },
        }
    }
}

/// The console backend: the mail as a person reads it, not as MIME encodes
/// it, so that a link can be copied from the terminal. Written to standard
/// output, not to the log: a mail may hold a reset link, and logs travel.
fn print_readable(from: &Mailbox, mail: &Mail) {
    let rule = "-".repeat(72);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{rule}\nFrom: {from}\nTo: {}\nSubject: {}\n\n{}\n{rule}",
        mail.to, mail.subject, mail.text
    );
}

/// The file backend: `{dir}/{message_id}.eml`, written under another name
/// first and then renamed, so that a reader never sees half a mail.
fn write_eml(dir: &Path, message_id: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{message_id}.eml.part"));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, dir.join(format!("{message_id}.eml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_a_url() {
        assert_eq!(EmailUrl::parse("console:"), Ok(EmailUrl::Console));
        assert_eq!(
            EmailUrl::parse("file:///tmp/mail"),
            Ok(EmailUrl::File("/tmp/mail".into()))
        );
        assert_eq!(
            EmailUrl::parse("smtp://mail.example.com"),
            Ok(EmailUrl::Smtp {
                host: "mail.example.com".into(),
                port: 25,
                security: SmtpSecurity::Opportunistic,
                credentials: None,
            })
        );
        assert_eq!(
            EmailUrl::parse("smtp+starttls://me%40example.com:p%3Ass@mail.example.com"),
            Ok(EmailUrl::Smtp {
                host: "mail.example.com".into(),
                port: 587,
                security: SmtpSecurity::StartTls,
                credentials: Some(("me@example.com".into(), "p:ss".into())),
            })
        );
        let smtps = EmailUrl::parse("smtps://u:secret@mail.example.com:2465").expect("valid");
        assert!(!format!("{smtps:?}").contains("secret"));
        assert_eq!(smtps.describe(), "smtps://u:***@mail.example.com:2465");
        for bad in [
            "",
            "smtp://",
            "imap://mail.example.com",
            "file://relative",
            "mail.example.com",
        ] {
            assert!(EmailUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_mail_is_multipart_text_and_html_with_a_stable_message_id() {
        let mailer = Mailer::new(
            &EmailUrl::Console,
            parse_from("Porter <noreply@example.com>").expect("valid"),
        )
        .expect("a mailer");
        let mail = Mail {
            to: "alice@example.com".into(),
            subject: "Hello".into(),
            text: "plain words".into(),
            html: "<p>html words</p>".into(),
        };
        let formatted =
            String::from_utf8(mailer.message(&mail, "abc123").expect("built").formatted())
                .expect("ASCII");
        assert!(formatted.contains("Message-ID: <abc123@example.com>"));
        assert!(formatted.contains("multipart/alternative"));
        assert!(formatted.contains("plain words") && formatted.contains("html words"));
        let header_injection = Mail {
            to: "alice@example.com\r\nBcc: eve@example.com".into(),
            ..mail
        };
        assert!(matches!(
            mailer.message(&header_injection, "x"),
            Err(SendError::Permanent(_))
        ));
    }
}
