//! Rate limits: a GCRA (token bucket without a timer) per (rule, key), in memory on this node.
//! Each key costs one timestamp; buckets refill continuously, so no limit locks anybody out for
//! longer than its window. `RATE_LIMIT_SCALE` multiplies every allowance; 0 turns limits off.

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
/// AI requests of one user.
pub const AI_PER_USER: Rule = per_minute("AI requests per user", 20, 5);
/// Messages sent over REST by one user.
pub const MESSAGES_PER_USER: Rule = Rule { name: "messages per user", count: 20, period: Duration::from_secs(1), burst: 50 };
/// Messages sent on one WebSocket connection.
pub const MESSAGES_PER_CONNECTION: Rule = Rule { name: "messages per connection", count: 20, period: Duration::from_secs(1), burst: 50 };

/// Keys kept before expired ones are swept.
const SWEEP_AT: usize = 100_000;

/// The node's limiter. Shared by every worker; each check holds the lock for a few
/// nanoseconds and never across an await.
pub struct Limiter {
    scale: f64,
    /// Theoretical arrival time of the next request, per (rule, key).
    next: Mutex<HashMap<(&'static str, String), Instant>>,
}

impl Limiter {
    pub fn new(scale: f64) -> Limiter {
        Limiter { scale, next: Mutex::new(HashMap::new()) }
    }

    /// Counts a request against `rule` for `key`; `429` with the wait when over the limit.
    pub fn check(&self, rule: Rule, key: &str) -> Result<(), ApiError> {
        self.decide(rule, key, true)
    }

    /// Whether a request would pass, without counting it.
    pub fn peek(&self, rule: Rule, key: &str) -> Result<(), ApiError> {
        self.decide(rule, key, false)
    }

    fn decide(&self, rule: Rule, key: &str, count: bool) -> Result<(), ApiError> {
        if self.scale <= 0.0 {
            return Ok(());
        }
        let interval = rule.period.div_f64(f64::from(rule.count) * self.scale);
        let tolerance = interval * rule.burst.saturating_sub(1);
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if next.len() >= SWEEP_AT {
            next.retain(|_, at| *at > now);
        }
        let at = next.get(&(rule.name, key.to_owned())).copied().unwrap_or(now).max(now);
        if at.duration_since(now) > tolerance {
            let wait = at.duration_since(now) - tolerance;
            return Err(ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) });
        }
        if count {
            next.insert((rule.name, key.to_owned()), at + interval);
        }
        Ok(())
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

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_keys_are_separate() {
        let limiter = Limiter::new(1.0);
        for _ in 0..3 {
            limiter.check(RULE, "a").unwrap();
        }
        match limiter.check(RULE, "a") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        limiter.check(RULE, "b").unwrap();
    }

    #[test]
    fn peeking_does_not_count_and_scale_zero_turns_limits_off() {
        let limiter = Limiter::new(1.0);
        for _ in 0..10 {
            limiter.peek(RULE, "a").unwrap();
        }
        let off = Limiter::new(0.0);
        for _ in 0..1000 {
            off.check(RULE, "a").unwrap();
        }
        let mut local = LocalLimit::new(RULE, 1.0);
        for _ in 0..3 {
            local.check().unwrap();
        }
        assert!(local.check().is_err());
    }
}
