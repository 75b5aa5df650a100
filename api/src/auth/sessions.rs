//! Login sessions. Each is one refresh-token family: starting one issues a token pair, rotating
//! swaps the one valid refresh jti for a new one (compare-and-swap in the database), and any
//! other jti of the family presented again revokes the whole family — except the one just
//! replaced, within `REFRESH_REUSE_GRACE`, which gets the current pair (a retry whose first
//! answer was lost). The rows are kept by `db::sessions`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::jwt::{Claims, JwtKeys, TokenKind};
use crate::db::sessions::RevokeReason;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// Short-lived bearer token for `Authorization: Bearer …`.
    pub access: String,
    /// Long-lived, single-use token for `POST /api/account/token/refresh/`.
    pub refresh: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// A random, URL-safe identifier or secret with `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::fill(&mut buffer[..]);
    URL_SAFE_NO_PAD.encode(buffer)
}

fn expiry(keys: &JwtKeys, from: NaiveDateTime) -> NaiveDateTime {
    from + chrono::Duration::seconds(keys.refresh_ttl.as_secs() as i64)
}

fn issue_pair(keys: &JwtKeys, user_id: UserId, sid: &str, refresh_jti: &str) -> ApiResult<TokenPair> {
    Ok(TokenPair {
        access: keys.issue(TokenKind::Access, user_id, sid, &random_token(12))?,
        refresh: keys.issue(TokenKind::Refresh, user_id, sid, refresh_jti)?,
        expires_in: keys.access_ttl.as_secs(),
        refresh_expires_in: keys.refresh_ttl.as_secs(),
    })
}

/// Starts a new session for `user_id` and returns its first token pair.
pub fn start(conn: &mut DbConn, keys: &JwtKeys, user_id: UserId) -> ApiResult<TokenPair> {
    let sid = random_token(16);
    let jti = random_token(16);
    let now = db::now();
    db::sessions::insert(conn, &sid, user_id, &jti, now, expiry(keys, now))?;
    issue_pair(keys, user_id, &sid, &jti)
}

/// Exchanges the refresh token described by `claims` for a new pair. A refresh token that was
/// already exchanged revokes its whole family — unless it is the one the last rotation replaced,
/// presented again within `grace` of it (a client whose answer was lost, or two requests of
/// one client racing): that gets the session's current pair instead.
pub fn rotate(conn: &mut DbConn, keys: &JwtKeys, claims: &Claims, grace: std::time::Duration) -> ApiResult<TokenPair> {
    let user_id = claims.user_id()?;
    let now = db::now();
    let Some(session) = db::sessions::refresh_state(conn, &claims.sid)? else {
        return Err(ApiError::not_authenticated("session not found"));
    };
    if session.user_id != user_id || session.revoked_at.is_some() || !session.user_active {
        return Err(ApiError::not_authenticated("session has been revoked"));
    }
    if session.expires_at <= now {
        return Err(ApiError::not_authenticated("session has expired"));
    }
    let new_jti = random_token(16);
    let swapped = session.refresh_jti == claims.jti
        && db::sessions::swap_refresh_jti(conn, &claims.sid, &claims.jti, &new_jti, now, expiry(keys, now))?;
    if swapped {
        return issue_pair(keys, user_id, &claims.sid, &new_jti);
    }
    // Read again: a rotation racing this one may have just replaced this very jti.
    let current = db::sessions::refresh_state(conn, &claims.sid)?;
    if let Some(current) = current.filter(|current| current.revoked_at.is_none())
        && current.previous_refresh_jti.as_deref() == Some(claims.jti.as_str())
        && current.rotated_at.is_some_and(|at| now <= at + chrono::Duration::from_std(grace).unwrap_or_default())
    {
        return issue_pair(keys, user_id, &claims.sid, &current.refresh_jti);
    }
    // An older token of the family, or this one after the grace: reuse.
    db::sessions::revoke(conn, &claims.sid, RevokeReason::RefreshReuse)?;
    tracing::warn!(user_id = %user_id, "refresh token reuse detected; session revoked");
    Err(ApiError::not_authenticated("refresh token was already used; the session has been revoked"))
}
