//! Rate limits: a GCRA (token bucket without a timer) per (rule, key). Each key costs one
//! timestamp; buckets refill continuously, so no limit locks anybody out for longer than its
//! window. `RATE_LIMIT_SCALE` multiplies every allowance; 0 turns limits off.
//!
//! One node keeps its buckets in memory. With Redis (several nodes) the buckets live in Redis,
//! updated by one script per check, so a client spreading its attempts over nodes gains
//! nothing; while Redis is unreachable each node falls back to its own buckets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// `count` requests per `period`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub name: &'static str,
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

const fn per_minute(name: &'static str, count: u32, burst: u32) -> Rule {
    Rule { name, count, period: Duration::from_secs(60), burst }
}

const fn per_hour(name: &'static str, count: u32, burst: u32) -> Rule {
    Rule { name, count, period: Duration::from_secs(3600), burst }
}

/// Login attempts from one address.
pub const LOGIN_PER_ADDRESS: Rule = per_minute("login per address", 20, 10);
/// Failed logins of one account (from anywhere).
pub const LOGIN_FAILURES_PER_ACCOUNT: Rule = per_minute("failed logins per account", 5, 5);
/// Registrations from one address.
pub const REGISTER_PER_ADDRESS: Rule = per_hour("registrations per address", 20, 5);
/// Reset mails requested from one address.
pub const RESET_MAIL_PER_ADDRESS: Rule = per_minute("reset mails per address", 5, 3);
/// Reset mails sent to one account.
pub const RESET_MAIL_PER_ACCOUNT: Rule = per_hour("reset mails per account", 5, 2);
/// Uses of emailed links (reset, verify) from one address.
pub const EMAIL_LINKS_PER_ADDRESS: Rule = per_minute("email links per address", 20, 10);
/// Password changes and verification mails of one user.
pub const ACCOUNT_CHANGES_PER_USER: Rule = per_minute("account changes per user", 5, 5);
/// Friend requests one user sends.
pub const FRIEND_REQUESTS_PER_USER: Rule = per_hour("friend requests per user", 60, 20);
/// A new friend request to the same user after a reject or a cancel: one an hour (a request
/// notifies its receiver, and send/cancel cycles would otherwise notify without end).
pub const FRIEND_REQUEST_AFTER_CLOSE: Rule = per_hour("friend requests to one user after a reject or cancel", 1, 1);
/// AI requests of one user.
pub const AI_PER_USER: Rule = per_minute("AI requests per user", 20, 5);
/// Messages one user sends, over REST and every socket together.
pub const MESSAGES_PER_USER: Rule = Rule { name: "messages per user", count: 20, period: Duration::from_secs(1), burst: 50 };

/// Frames other than `send` on one WebSocket connection (`read`, `typing`, `sync`, `ping`):
/// each may cost a database transaction.
pub const FRAMES_PER_CONNECTION: Rule = Rule { name: "frames per connection", count: 20, period: Duration::from_secs(1), burst: 40 };

/// Keys kept before expired ones are swept.
const SWEEP_AT: usize = 100_000;

/// What a decision does to the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Peek,
    Take,
    GiveBack,
}

/// The limiter. Shared by every worker; a local check holds the lock for a few nanoseconds and
/// never across an await.
pub struct Limiter {
    scale: f64,
    /// Theoretical arrival time of the next request, per (rule, key), on this node.
    next: Mutex<HashMap<(&'static str, String), Instant>>,
    shared: Option<SharedBuckets>,
}

impl Limiter {
    /// `redis`: (URL, key prefix) to share buckets with the other nodes.
    pub fn new(scale: f64, redis: Option<(&str, &str)>) -> anyhow::Result<Limiter> {
        let shared = match redis {
            Some((url, prefix)) => Some(SharedBuckets {
                client: redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL {url:?}: {e}"))?,
                prefix: format!("{prefix}:limit"),
                connection: tokio::sync::Mutex::new(None),
            }),
            None => None,
        };
        Ok(Limiter { scale, next: Mutex::new(HashMap::new()), shared })
    }

    /// Counts a request against `rule` for `key`; `429` with the wait when over the limit.
    pub async fn check(&self, rule: Rule, key: &str) -> Result<(), ApiError> {
        self.decide(rule, key, Count::Take).await
    }

    /// Whether a request would pass, without counting it.
    pub async fn peek(&self, rule: Rule, key: &str) -> Result<(), ApiError> {
        self.decide(rule, key, Count::Peek).await
    }

    /// Gives back a request counted by [`Limiter::check`] that turned out not to count (a
    /// login that succeeded, under the failed-login rule): the slot is taken first so that
    /// parallel attempts cannot all pass, and returned when it should not have been spent.
    pub async fn give_back(&self, rule: Rule, key: &str) {
        let _ = self.decide(rule, key, Count::GiveBack).await;
    }

    async fn decide(&self, rule: Rule, key: &str, count: Count) -> Result<(), ApiError> {
        if self.scale <= 0.0 {
            return Ok(());
        }
        let interval = rule.period.div_f64(f64::from(rule.count) * self.scale);
        let tolerance = interval * rule.burst.saturating_sub(1);
        let wait = match &self.shared {
            Some(shared) => match shared.decide(rule.name, key, interval, tolerance, count).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(error = %error, "shared rate limits unreachable; this node counts alone");
                    self.decide_locally(rule.name, key, interval, tolerance, count)
                }
            },
            None => self.decide_locally(rule.name, key, interval, tolerance, count),
        };
        match wait {
            Some(wait) => Err(ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }),
            None => Ok(()),
        }
    }

    /// The wait before a request would pass, if any.
    fn decide_locally(&self, rule: &'static str, key: &str, interval: Duration, tolerance: Duration, count: Count) -> Option<Duration> {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if next.len() >= SWEEP_AT {
            next.retain(|_, at| *at > now);
        }
        let at = next.get(&(rule, key.to_owned())).copied().unwrap_or(now).max(now);
        if count == Count::GiveBack {
            next.insert((rule, key.to_owned()), at.checked_sub(interval).unwrap_or(now).max(now));
            return None;
        }
        if at.duration_since(now) > tolerance {
            return Some(at.duration_since(now) - tolerance);
        }
        if count == Count::Take {
            next.insert((rule, key.to_owned()), at + interval);
        }
        None
    }
}

/// GCRA in Redis, on Redis's clock: the key holds the theoretical arrival time in
/// microseconds and expires once the bucket is full again. Returns the wait in microseconds,
/// or -1 when the request passes.
const GCRA_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if at < now then at = now end
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == 'give back' then
  local back = at - interval
  if back <= now then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], string.format('%d', back), 'PX', math.ceil((back - now) / 1000) + 1000) end
  return -1
end
if at - now > tolerance then return at - now - tolerance end
if ARGV[3] == 'take' then
  local next = at + interval
  redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1000)
end
return -1
";

/// Buckets every node shares, in Redis.
struct SharedBuckets {
    client: redis::Client,
    prefix: String,
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl SharedBuckets {
    async fn decide(
        &self,
        rule: &str,
        key: &str,
        interval: Duration,
        tolerance: Duration,
        count: Count,
    ) -> anyhow::Result<Option<Duration>> {
        const TIMEOUT: Duration = Duration::from_millis(500);
        let mut connection = {
            let mut slot = self.connection.lock().await;
            if slot.is_none() {
                let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(TIMEOUT)).set_response_timeout(Some(TIMEOUT));
                *slot = Some(self.client.get_multiplexed_async_connection_with_config(&config).await?);
            }
            slot.clone().expect("just connected")
        };
        let answer: Result<i64, _> = redis::cmd("EVAL")
            .arg(GCRA_SCRIPT)
            .arg(1)
            .arg(format!("{}:{rule}:{key}", self.prefix))
            .arg(interval.as_micros() as u64)
            .arg(tolerance.as_micros() as u64)
            .arg(match count {
                Count::Peek => "peek",
                Count::Take => "take",
                Count::GiveBack => "give back",
            })
            .query_async(&mut connection)
            .await;
        match answer {
            Ok(wait) if wait >= 0 => Ok(Some(Duration::from_micros(wait as u64))),
            Ok(_) => Ok(None),
            Err(error) => {
                *self.connection.lock().await = None;
                Err(error.into())
            }
        }
    }
}

/// A rate limit local to one owner (a WebSocket connection): the same rule, no sharing.
pub struct LocalLimit {
    rule: Rule,
    interval: Option<Duration>,
    next: Instant,
}

impl LocalLimit {
    pub fn new(rule: Rule, scale: f64) -> LocalLimit {
        let interval = (scale > 0.0).then(|| rule.period.div_f64(f64::from(rule.count) * scale));
        LocalLimit { rule, interval, next: Instant::now() }
    }

    pub fn check(&mut self) -> Result<(), ApiError> {
        let Some(interval) = self.interval else { return Ok(()) };
        let now = Instant::now();
        let at = self.next.max(now);
        let tolerance = interval * self.rule.burst.saturating_sub(1);
        if at.duration_since(now) > tolerance {
            return Err(ApiError::RateLimited { retry_after_secs: (at.duration_since(now) - tolerance).as_secs().max(1) });
        }
        self.next = at + interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = per_minute("test", 60, 3);

    #[tokio::test]
    async fn a_burst_passes_then_the_rate_holds_and_keys_are_separate() {
        let limiter = Limiter::new(1.0, None).unwrap();
        for _ in 0..3 {
            limiter.check(RULE, "a").await.unwrap();
        }
        match limiter.check(RULE, "a").await {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        limiter.check(RULE, "b").await.unwrap();
    }

    #[tokio::test]
    async fn a_slot_given_back_can_be_taken_again_and_giving_back_never_banks_credit() {
        let limiter = Limiter::new(1.0, None).unwrap();
        for _ in 0..10 {
            limiter.check(RULE, "a").await.unwrap();
            limiter.give_back(RULE, "a").await;
        }
        for _ in 0..5 {
            limiter.give_back(RULE, "b").await;
        }
        for _ in 0..3 {
            limiter.check(RULE, "b").await.unwrap();
        }
        assert!(limiter.check(RULE, "b").await.is_err(), "the burst is the burst, however much was given back");
    }

    #[tokio::test]
    async fn peeking_does_not_count_and_scale_zero_turns_limits_off() {
        let limiter = Limiter::new(1.0, None).unwrap();
        for _ in 0..10 {
            limiter.peek(RULE, "a").await.unwrap();
        }
        let off = Limiter::new(0.0, None).unwrap();
        for _ in 0..1000 {
            off.check(RULE, "a").await.unwrap();
        }
        let mut local = LocalLimit::new(RULE, 1.0);
        for _ in 0..3 {
            local.check().unwrap();
        }
        assert!(local.check().is_err());
    }
}
