//! The state every service shares: configuration, database pool, signing keys, mailer, limits,
//! the assistant's provider, and the port to the real-time layer (which it does not know).

use std::sync::Arc;

use crate::ai::Assistant;
use crate::auth::SessionTrust;
use crate::auth::jwt::JwtKeys;
use crate::auth::password;
use crate::config::Config;
use crate::db::Db;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::ports::RealtimePort;
use crate::ratelimit::Limiter;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub keys: JwtKeys,
    pub mailer: Mailer,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Rate limits (shared by every node with Redis).
    pub limits: Limiter,
    /// The AI assistant's provider and settings.
    pub ai: Assistant,
    /// Whether cached token checks may be trusted (revocations bump it).
    pub trust: Arc<SessionTrust>,
    /// The real-time layer, as the services see it.
    pub live: Arc<dyn RealtimePort>,
    /// A hash of a random password at the configured cost: login checks against it when the
    /// email is unknown, so both cases take the same time.
    pub dummy_password_hash: String,
}

/// How services and handlers hold the state (actix's `web::Data` derefs to it).
pub type State = Arc<AppState>;

impl AppState {
    /// Prepares keys, mail, limits and the assistant around an open database and a started
    /// real-time layer.
    pub fn build(
        config: Config,
        db: Db,
        metrics: Arc<Metrics>,
        trust: Arc<SessionTrust>,
        live: Arc<dyn RealtimePort>,
    ) -> anyhow::Result<AppState> {
        let keys = JwtKeys::new(&config.jwt_secret, config.access_token_ttl, config.refresh_token_ttl);
        let mailer = Mailer::new(&config)?;
        let dummy_password_hash = password::hash_password(&crate::auth::sessions::random_token(16), config.bcrypt_cost)
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?;
        let ai = Assistant::new(&config)?;
        let limits = Limiter::new(config.rate_limit_scale, config.redis_url.as_deref().map(|url| (url, config.redis_channel.as_str())))?;
        Ok(AppState { config, db, keys, mailer, metrics, limits, ai, trust, live, dummy_password_hash })
    }
}
