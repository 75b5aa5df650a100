//! Password hashing: bcrypt over a SHA-256 pre-hash. Blocking and slow (tens of
//! milliseconds): call it through [`on_hashing_thread`], never on the async executor nor the
//! workers' small blocking pools (which database work needs).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// bcrypt reads only the first 72 bytes of its input; the pre-hash lets every character of a
/// long password count. Base64 keeps NUL bytes out of bcrypt's input.
fn prehash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// Runs `work` (a bcrypt hash or check) on a thread of its own, at most two per CPU at once:
/// a burst of logins waits here instead of starving the database work of the blocking pools.
pub async fn on_hashing_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()) * 2));
    let _slot = slots.acquire().await.map_err(ApiError::internal)?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("password-hash".into())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(ApiError::internal)?;
    result.await.map_err(ApiError::internal)
}

pub fn hash_password(password: &str, cost: u32) -> ApiResult<String> {
    bcrypt::hash(prehash(password), cost).map_err(ApiError::internal)
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(prehash(password), hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_long_passwords_differ_past_72_bytes() {
        let base = "p".repeat(80);
        let hash = hash_password(&format!("{base}A"), 4).unwrap();
        assert!(verify_password(&format!("{base}A"), &hash));
        assert!(!verify_password(&format!("{base}B"), &hash));
        assert!(!verify_password("anything", "not a bcrypt hash"));
    }
}
