//! Server configuration, read once from the environment (and `.env`), every value defaulted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Everything the server needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address (`CHAT_BIND`); port 0 picks a free port.
    pub bind: String,
    /// `sqlite://PATH` or `postgres://…` (`DATABASE_URL`).
    pub database_url: String,
    /// Where the SQLite file, the generated JWT key and the mail outbox live (`DATA_DIR`).
    pub data_dir: PathBuf,
    /// Cross-node fan-out through Redis when set (`REDIS_URL`).
    pub redis_url: Option<String>,
    /// The Redis pub/sub channel the nodes of one deployment share (`REDIS_CHANNEL`).
    pub redis_channel: String,
    /// HMAC key for JWTs (`JWT_SECRET`, or generated once into `DATA_DIR/jwt_secret`).
    pub jwt_secret: Vec<u8>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a rotated refresh token still gets the session's current pair (`REFRESH_REUSE_GRACE`).
    pub refresh_reuse_grace: Duration,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    pub bcrypt_cost: u32,
    /// `smtp://host:port` (lettre URL form); `None` writes mails to `DATA_DIR/outbox/`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Base of links in emails, and the allowed browser origin.
    pub public_url: String,
    /// Browser origins allowed besides `PUBLIC_URL`'s (`CORS_ORIGINS`, comma-separated).
    pub cors_origins: Vec<String>,
    /// The built SPA, served at `/` (`STATIC_DIR`; `frontend/dist` when it exists).
    pub static_dir: Option<PathBuf>,
    /// Largest accepted JSON body, in bytes.
    pub json_body_limit: usize,
    /// HTTP worker threads.
    pub workers: usize,
    /// Frames a WebSocket connection may have waiting; past it the connection is dropped.
    pub ws_inbox_capacity: usize,
    /// WebSocket connections one user may hold on one node; past it an upgrade answers 429.
    pub ws_max_per_user: usize,
    /// Seconds between server pings; a connection silent for three intervals is dropped.
    pub ws_heartbeat: Duration,
    /// Sends the writer stores in one transaction, at most (1: one message per transaction).
    pub writer_max_batch: usize,
    /// The AI provider; `None` when neither `OPENAI_API_KEY` nor `OPENAI_BASE_URL` is set.
    pub ai: Option<AiProvider>,
    /// Tokens a new account starts with (`AI_TOKEN_GRANT`).
    pub ai_token_grant: i64,
    /// Most tokens one reply may use (`AI_MAX_REPLY_TOKENS`).
    pub ai_max_reply_tokens: u32,
    /// Budget of the conversation context sent with a request, in tokens (`AI_CONTEXT_TOKENS`).
    pub ai_context_tokens: usize,
    /// The assistant's instructions (`AI_SYSTEM_PROMPT`).
    pub ai_system_prompt: String,
    /// Seconds an upstream call may take; for streams, the longest silence (`AI_TIMEOUT_SECS`).
    pub ai_timeout: Duration,
    /// A JSON object of exact prompts and their fixed replies (`AI_PREDEFINED_REPLIES`, a path).
    pub ai_predefined_replies: Option<PathBuf>,
    /// Multiplies every rate limit's allowance; 0 turns rate limiting off.
    pub rate_limit_scale: f64,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// `json` for one JSON object per log line, anything else for human-readable text.
    pub log_format: String,
}

/// An OpenAI-compatible provider.
#[derive(Clone)]
pub struct AiProvider {
    pub api_key: String,
    /// Base URL including `/v1`.
    pub base_url: String,
    /// Whether `OPENAI_BASE_URL` named another provider than OpenAI.
    pub custom_base: bool,
    pub model: String,
}

impl std::fmt::Debug for AiProvider {
    /// The key stays out of any printed configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiProvider").field("base_url", &self.base_url).field("model", &self.model).finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the environment. Fails with a message naming the variable that is wrong.
    pub fn from_env() -> anyhow::Result<Config> {
        let data_dir = PathBuf::from(var_or("DATA_DIR", "data"));
        let database_url = var("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", data_dir.join("chat.db").display()));
        let jwt_secret = match var("JWT_SECRET") {
            Some(secret) if secret.len() >= 32 => secret.into_bytes(),
            Some(_) => bail!("JWT_SECRET must be at least 32 characters long"),
            None => load_or_create_secret(&data_dir.join("jwt_secret"))?,
        };
        let bcrypt_cost = parse_var("BCRYPT_COST", 11u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            bail!("BCRYPT_COST must be between 4 and 31");
        }
        let public_url = var_or("PUBLIC_URL", "http://127.0.0.1:8000").trim_end_matches('/').to_owned();
        Ok(Config {
            bind: var_or("CHAT_BIND", "127.0.0.1:8000"),
            database_url,
            data_dir,
            redis_url: var("REDIS_URL"),
            redis_channel: var_or("REDIS_CHANNEL", "chat:events"),
            jwt_secret,
            access_token_ttl: Duration::from_secs(parse_var("ACCESS_TOKEN_TTL", 900)?),
            refresh_token_ttl: Duration::from_secs(parse_var("REFRESH_TOKEN_TTL", 604_800)?),
            refresh_reuse_grace: Duration::from_secs(parse_var("REFRESH_REUSE_GRACE", 30)?),
            reset_token_ttl: Duration::from_secs(parse_var("RESET_TOKEN_TTL", 3_600)?),
            verify_token_ttl: Duration::from_secs(parse_var("VERIFY_TOKEN_TTL", 259_200)?),
            bcrypt_cost,
            smtp_url: var("SMTP_URL"),
            mail_from: var_or("MAIL_FROM", "Chat <no-reply@localhost>"),
            public_url,
            cors_origins: var("CORS_ORIGINS")
                .map(|list| list.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            static_dir: var("STATIC_DIR").map(PathBuf::from).or_else(|| {
                let built = PathBuf::from("frontend/dist");
                built.join("index.html").exists().then_some(built)
            }),
            json_body_limit: parse_var("JSON_BODY_LIMIT", 64 * 1024)?,
            workers: parse_var("WORKERS", std::thread::available_parallelism().map_or(2, |n| n.get()))?,
            ws_inbox_capacity: parse_var("WS_INBOX_CAPACITY", 1024usize)?.max(1),
            ws_max_per_user: parse_var("WS_MAX_CONNECTIONS_PER_USER", 20usize)?.max(1),
            ws_heartbeat: Duration::from_secs(parse_var("WS_HEARTBEAT_SECS", 15u64)?.max(1)),
            writer_max_batch: parse_var("WRITER_MAX_BATCH", 512usize)?.max(1),
            ai: match (var("OPENAI_API_KEY"), var("OPENAI_BASE_URL")) {
                (None, None) => None,
                (key, base) => Some(AiProvider {
                    // Local servers (Ollama, llama.cpp) need no key; the client sends one anyway.
                    api_key: key.unwrap_or_else(|| "none".into()),
                    custom_base: base.is_some(),
                    base_url: base.unwrap_or_else(|| "https://api.openai.com/v1".into()).trim_end_matches('/').to_owned(),
                    model: var_or("OPENAI_MODEL", "gpt-4o-mini"),
                }),
            },
            ai_token_grant: parse_var("AI_TOKEN_GRANT", 10_000i64)?.max(0),
            ai_max_reply_tokens: parse_var("AI_MAX_REPLY_TOKENS", 1024u32)?.max(16),
            ai_context_tokens: parse_var("AI_CONTEXT_TOKENS", 3000usize)?.max(100),
            ai_system_prompt: var_or("AI_SYSTEM_PROMPT", "You are a helpful assistant inside a chat app. Answer clearly and briefly."),
            ai_timeout: Duration::from_secs(parse_var("AI_TIMEOUT_SECS", 60u64)?.max(1)),
            ai_predefined_replies: var("AI_PREDEFINED_REPLIES").map(PathBuf::from),
            rate_limit_scale: parse_var("RATE_LIMIT_SCALE", 1.0)?,
            trust_forwarded_for: parse_var("TRUST_FORWARDED_FOR", false)?,
            log_format: var_or("LOG_FORMAT", "text"),
        })
    }
}

impl Config {
    /// Whether a browser page from `origin` may use the API, asked of a request to `host` over
    /// `scheme`: the same origin (scheme and host: a page from `http://` may not use a server
    /// reached over `https://`), `PUBLIC_URL`'s origin, or one of `CORS_ORIGINS`.
    pub fn origin_allowed_for(&self, origin: &str, host: Option<&str>, scheme: &str) -> bool {
        let same_origin = host.is_some_and(|host| origin.trim_end_matches('/') == format!("{scheme}://{host}"));
        same_origin || self.origin_allowed(origin)
    }

    /// Whether `origin` is `PUBLIC_URL`'s origin or one of `CORS_ORIGINS`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        origin_of(&self.public_url) == origin || self.cors_origins.iter().any(|allowed| allowed == origin || allowed == "*")
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// A set, non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn var_or(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

fn parse_var<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e| anyhow::anyhow!("{name}={raw:?} is not valid: {e}")),
    }
}

/// The signing key kept in `path`, created (64 random bytes, owner-only) on first start.
fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 64]>());
    write_private(path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
