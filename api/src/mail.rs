//! Outgoing email: SMTP through lettre when `SMTP_URL` is set, otherwise one `.eml` file per
//! mail in `DATA_DIR/outbox/`. Mail goes out in the background with retries: no request waits
//! on a mail server, and one that is down does not fail the request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// Delays before the second and third delivery attempts.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

/// Sends mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    public_url: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// A mail ready to send.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mailer {
    pub fn new(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = config.mail_from.parse().with_context(|| format!("MAIL_FROM {:?} is not a valid mailbox", config.mail_from))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .with_context(|| "SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => Transport::Outbox(config.data_dir.join("outbox")),
        };
        Ok(Mailer { inner: Arc::new(Inner { transport, from, public_url: config.public_url.clone() }) })
    }

    /// An absolute link to `path` under `PUBLIC_URL`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.inner.public_url, path)
    }

    /// Queues `mail` for delivery and returns at once. Failures are retried, then logged.
    pub fn send(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let subject = mail.subject.clone();
            let message = match mailer.build(mail) {
                Ok(message) => message,
                Err(error) => return tracing::error!(error = format!("{error:#}"), "could not build mail"),
            };
            for attempt in 0..=RETRY_DELAYS.len() {
                if attempt > 0 {
                    tokio::time::sleep(RETRY_DELAYS[attempt - 1]).await;
                }
                match mailer.deliver(&message).await {
                    Ok(()) => return,
                    Err(error) => tracing::warn!(attempt, subject, error = format!("{error:#}"), "mail delivery failed"),
                }
            }
            tracing::error!(subject, "mail could not be delivered; giving up");
        });
    }

    fn build(&self, mail: Mail) -> anyhow::Result<Message> {
        Ok(Message::builder()
            .from(self.inner.from.clone())
            .to(mail.to.parse().context("recipient address")?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?)
    }

    async fn deliver(&self, message: &Message) -> anyhow::Result<()> {
        match &self.inner.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message.clone()).await?;
            }
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let name = format!("{}-{}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), crate::auth::sessions::random_token(6));
                let path = dir.join(name);
                tokio::fs::write(&path, message.formatted()).await?;
                tracing::info!(path = %path.display(), "mail written to the outbox (SMTP_URL is unset)");
            }
        }
        Ok(())
    }
}

/// The mail that asks a new user to confirm their address.
pub fn verification_mail(to: &str, username: &str, link: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Confirm your email address".into(),
        body: format!(
            "Hello {username},\n\nplease confirm your email address by opening this link:\n\n{link}\n\n\
             If you did not create an account, you can ignore this mail.\n"
        ),
    }
}

/// The mail with a password-reset link.
pub fn reset_mail(to: &str, username: &str, link: &str, valid_minutes: u64) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Reset your password".into(),
        body: format!(
            "Hello {username},\n\nsomeone asked to reset the password of your account. To choose a new \
             password, open this link within {valid_minutes} minutes:\n\n{link}\n\n\
             If it was not you, ignore this mail: your password stays as it is.\n"
        ),
    }
}
