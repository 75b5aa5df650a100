//! The state every handler shares: configuration, database pool, signing keys and mailer.

use crate::ai::Assistant;
use crate::auth::jwt::JwtKeys;
use crate::auth::password;
use crate::config::Config;
use crate::db::Db;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::realtime::Realtime;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub keys: JwtKeys,
    pub mailer: Mailer,
    /// Counters for `/metrics`.
    pub metrics: std::sync::Arc<Metrics>,
    /// Rate limits (shared by every node with Redis).
    pub limits: Limiter,
    /// The AI assistant's provider and settings.
    pub ai: Assistant,
    /// The real-time actors of this node.
    pub realtime: Realtime,
    /// A hash of a random password at the configured cost: login checks against it when the
    /// email is unknown, so both cases take the same time.
    pub dummy_password_hash: String,
}

impl AppState {
    /// Connects to the database (applying migrations), prepares keys and mail, and starts the
    /// real-time actors (needs a running Tokio runtime).
    pub fn build(config: Config) -> anyhow::Result<AppState> {
        let db = Db::connect(&config.database_url)?;
        let keys = JwtKeys::new(&config.jwt_secret, config.access_token_ttl, config.refresh_token_ttl);
        let mailer = Mailer::new(&config)?;
        let dummy_password_hash = password::hash_password(&crate::auth::sessions::random_token(16), config.bcrypt_cost)
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?;
        let metrics = std::sync::Arc::new(Metrics::default());
        let realtime = Realtime::start(&config, db.clone(), db.sibling(1)?, metrics.clone())?;
        let ai = Assistant::new(&config)?;
        let limits = Limiter::new(config.rate_limit_scale, config.redis_url.as_deref().map(|url| (url, config.redis_channel.as_str())))?;
        Ok(AppState { config, db, keys, mailer, metrics, limits, ai, realtime, dummy_password_hash })
    }
}
