//! A small SMTP server on 127.0.0.1 that keeps every mail it receives, for reading the mails
//! the real server sends.

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// One received mail, as sent on the wire.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub recipients: Vec<String>,
    pub raw: String,
}

impl ReceivedMail {
    fn header_and_body(&self) -> (&str, &str) {
        self.raw.split_once("\r\n\r\n").unwrap_or((&self.raw, ""))
    }

    /// A header's value (first occurrence, case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = self.header_and_body();
        headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    /// The body with its transfer encoding undone.
    pub fn body(&self) -> String {
        let (_, body) = self.header_and_body();
        match self.header("Content-Transfer-Encoding").map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("quoted-printable") => decode_quoted_printable(body),
            Some("base64") => {
                let compact: String = body.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
            }
            _ => body.to_owned(),
        }
    }

    /// The first link in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let body = self.body();
        let start = body.find(prefix)?;
        Some(body[start..].split_whitespace().next()?.to_owned())
    }
}

pub fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
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

/// The listener and the mails it has received.
pub struct SmtpServer {
    pub port: u16,
    inbox: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on(0).await
    }

    /// Listens on `port` (0: any free port).
    pub async fn start_on(port: u16) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_connection(socket, sender.clone()));
            }
        });
        SmtpServer { port, inbox: Mutex::new(inbox) }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next mail, waiting up to 15 seconds.
    pub async fn next_mail(&self) -> ReceivedMail {
        tokio::time::timeout(Duration::from_secs(15), self.inbox.lock().await.recv())
            .await
            .expect("no mail arrived within 15 s")
            .expect("SMTP server stopped")
    }

    /// A mail if one arrives within `wait`.
    pub async fn try_next_mail(&self, wait: Duration) -> Option<ReceivedMail> {
        tokio::time::timeout(wait, self.inbox.lock().await.recv()).await.ok().flatten()
    }
}

async fn serve_connection(socket: tokio::net::TcpStream, sender: mpsc::UnboundedSender<ReceivedMail>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 test-smtp ESMTP ready\r\n").await;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-test-smtp\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") || command.starts_with("RSET") || command.starts_with("NOOP") {
            if command.starts_with("RSET") {
                recipients.clear();
            }
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            recipients.push(line.trim_end()[8..].trim().trim_matches(['<', '>', ':']).to_owned());
            b"250 OK\r\n"
        } else if command == "DATA" {
            let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            let _ = sender.send(ReceivedMail { recipients: std::mem::take(&mut recipients), raw });
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
