//! Signing and checking JWTs: HS256 only, issuer and token type checked on every decode.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;

const ISSUER: &str = "chat-api";

/// Which of the two tokens a JWT is; an access token is never accepted where a refresh token is
/// expected, nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// The claims of both token kinds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The session (refresh-token family) this token belongs to.
    pub sid: String,
    pub typ: TokenKind,
    /// Unique per token; for refresh tokens it is what rotation compares.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

impl Claims {
    pub fn user_id(&self) -> ApiResult<UserId> {
        self.sub.parse().map(UserId).map_err(|_| ApiError::not_authenticated("malformed token"))
    }
}

/// The signing key and lifetimes.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // One cluster issues and checks tokens on synchronised clocks: no grace period.
        validation.leeway = 0;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// Signs a token of `kind` for `user_id` in session `sid`.
    pub fn issue(&self, kind: TokenKind, user_id: UserId, sid: &str, jti: &str) -> ApiResult<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user_id.to_string(),
            sid: sid.to_owned(),
            typ: kind,
            jti: jti.to_owned(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Checks signature, algorithm, expiry, issuer and kind.
    pub fn verify(&self, token: &str, expected: TokenKind) -> ApiResult<Claims> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::not_authenticated("token has expired"),
                _ => ApiError::not_authenticated("token is invalid"),
            })?
            .claims;
        if claims.typ != expected {
            let wanted = match expected {
                TokenKind::Access => "an access token",
                TokenKind::Refresh => "a refresh token",
            };
            return Err(ApiError::not_authenticated(format!("{wanted} is required")));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> JwtKeys {
        JwtKeys::new(secret, Duration::from_secs(60), Duration::from_secs(600))
    }

    #[test]
    fn a_token_verifies_only_as_its_own_kind() {
        let keys = keys(b"0123456789abcdef0123456789abcdef");
        let access = keys.issue(TokenKind::Access, UserId(7), "s1", "j1").unwrap();
        let claims = keys.verify(&access, TokenKind::Access).unwrap();
        assert_eq!((claims.user_id().unwrap(), claims.sid.as_str()), (UserId(7), "s1"));
        assert!(keys.verify(&access, TokenKind::Refresh).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let token = keys(b"another key, another key, another").issue(TokenKind::Access, UserId(1), "s", "j").unwrap();
        assert!(keys(b"0123456789abcdef0123456789abcdef").verify(&token, TokenKind::Access).is_err());
    }
}
