//! Password hashing: bcrypt over a SHA-256 pre-hash. Blocking; call through `web::block`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// bcrypt reads only the first 72 bytes of its input; the pre-hash lets every character of a
/// long password count. Base64 keeps NUL bytes out of bcrypt's input.
fn prehash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
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
