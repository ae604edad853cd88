//! What Porter's mails say: Django's `registration/password_reset_email.html`
//! and friends. Each mail is plain text plus HTML, from the two askama
//! templates `templates/mail/message.txt` and `message.html`; each says what
//! happened and what to do if it was not you.
//!
//! Links are built from the site's public address (`SITE_URL`), never
//! from a request's `Host` header, which the client chooses: a forged
//! `Host` must not point a reset link at another site.

use std::time::Duration;

use askama::Template;

use super::Mail;

/// One mail's words, before they are rendered.
struct Letter<'a> {
    /// Who it greets.
    username: &'a str,
    paragraphs: Vec<String>,
    /// The button: its label and its link.
    action: Option<(&'a str, String)>,
    /// What to do if the reader did not ask for this.
    not_you: String,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextBody<'a> {
    letter: &'a Letter<'a>,
    site: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlBody<'a> {
    subject: &'a str,
    letter: &'a Letter<'a>,
    site: &'a str,
}

/// Writes Porter's mails for one site.
#[derive(Debug, Clone)]
pub struct Letters {
    /// The public base URL, without a trailing slash.
    base_url: String,
}

impl Letters {
    /// Mails whose links start with `base_url` (`https://example.com`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of `path` on this site.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `letter` to `to`, in plain text and HTML.
    fn write(&self, to: &str, subject: &str, letter: Letter<'_>) -> Result<Mail, askama::Error> {
        let site = self.base_url.as_str();
        Ok(Mail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: TextBody {
                letter: &letter,
                site,
            }
            .render()?,
            html: HtmlBody {
                subject,
                letter: &letter,
                site,
            }
            .render()?,
        })
    }

    /// The reset link, valid for `ttl`.
    pub fn password_reset(
        &self,
        to: &str,
        username: &str,
        path: &str,
        ttl: Duration,
    ) -> Result<Mail, askama::Error> {
        let paragraphs = vec![
            format!(
                "Someone asked to reset the password of your account, {username}, on {}.",
                self.base_url
            ),
            format!(
                "To choose a new password, follow the link below within {}. It works once.",
                in_words(ttl)
            ),
        ];
        let letter = Letter {
            username,
            paragraphs,
            action: Some(("Choose a new password", self.link(path))),
            not_you: "If you did not ask for this, ignore this mail: your password stays as it is."
                .into(),
        };
        self.write(to, "Reset your password", letter)
    }

    /// The confirmation link for `to`, the address being confirmed.
    pub fn confirm_address(
        &self,
        to: &str,
        username: &str,
        path: &str,
    ) -> Result<Mail, askama::Error> {
        let paragraphs = vec![
            format!(
                "Please confirm that {to} is the email address of your account, {username}, on {}.",
                self.base_url
            ),
            "Password reset links and security notices go to a confirmed address only.".into(),
        ];
        let letter = Letter {
            username,
            paragraphs,
            action: Some(("Confirm this address", self.link(path))),
            not_you: "If you did not sign up or ask for this, ignore this mail: nothing changes until the link is followed.".into(),
        };
        self.write(to, "Confirm your email address", letter)
    }

    /// To the old address: a change to `new_address` was asked for.
    pub fn address_change_requested(
        &self,
        to: &str,
        username: &str,
        new_address: &str,
    ) -> Result<Mail, askama::Error> {
        let paragraphs = vec![
            format!(
                "Someone signed in as {username} asked to change the email address of your account to {new_address}."
            ),
            "The address changes when the link sent to the new address is followed; until then mail keeps coming here.".into(),
        ];
        let letter = Letter {
            username,
            paragraphs,
            action: None,
            not_you: "If this was not you, sign in, change your password at once and check your sessions: someone else knows it.".into(),
        };
        self.write(to, "Your email address is being changed", letter)
    }

    /// The password was changed (or reset).
    pub fn password_changed(&self, to: &str, username: &str) -> Result<Mail, askama::Error> {
        let paragraphs = vec![format!(
            "The password of your account, {username}, on {} was just changed. Every other session was signed out.",
            self.base_url
        )];
        let letter = Letter {
            username,
            paragraphs,
            action: None,
            not_you: format!(
                "If this was not you, reset your password at once from {}.",
                self.link("/password/reset")
            ),
        };
        self.write(to, "Your password was changed", letter)
    }

    /// A sign-in from a browser that had not signed in as this user before.
    pub fn new_device(
        &self,
        to: &str,
        username: &str,
        when: &str,
        address: &str,
        browser: &str,
    ) -> Result<Mail, askama::Error> {
        let paragraphs = vec![
            format!(
                "Your account, {username}, was just signed in to from a new device or browser."
            ),
            format!("When: {when}. From: {address}. Browser: {browser}."),
        ];
        let letter = Letter {
            username,
            paragraphs,
            action: None,
            not_you: format!(
                "If this was you, there is nothing to do. If not, change your password now and sign that session out at {}.",
                self.link("/sessions")
            ),
        };
        self.write(to, "New sign-in to your account", letter)
    }
}

/// `3600 s` → "1 hour"; `90 min` → "90 minutes".
fn in_words(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_mail_has_the_link_in_both_parts_and_escapes_html() {
        let letters = Letters::new("https://example.com/");
        let mail = letters
            .password_reset(
                "alice@example.com",
                "<alice>",
                "/password/reset/1/abc-def",
                Duration::from_secs(3600),
            )
            .expect("renders");
        let link = "https://example.com/password/reset/1/abc-def";
        assert!(mail.text.contains(link), "{}", mail.text);
        assert!(mail.html.contains(&format!("href=\"{link}\"")));
        assert!(mail.text.contains("within 1 hour"));
        assert!(
            mail.text.contains("Hello <alice>"),
            "plain text is not escaped"
        );
        assert!(mail.html.contains("&#60;alice&#62;") || mail.html.contains("&lt;alice&gt;"));
        assert!(!mail.html.contains("<alice>"));
    }
}
