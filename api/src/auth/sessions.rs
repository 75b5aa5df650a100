//! Login sessions. Each is one refresh-token family: starting one issues a token pair, rotating
//! swaps the one valid refresh jti for a new one (compare-and-swap in the database), and any
//! other jti of the family presented again revokes the whole family.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::jwt::{Claims, JwtKeys, TokenKind};
use crate::db::models::NewSession;
use crate::db::schema::{sessions, users};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// Short-lived bearer token for `Authorization: Bearer …`.
    pub access: String,
    /// Long-lived, single-use token for `POST /api/account/token/refresh/`.
    pub refresh: String,
}

/// Why a session ended, as recorded in `sessions.revoke_reason`.
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    Logout,
    RefreshReuse,
    PasswordChange,
    PasswordReset,
    Deactivated,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::RefreshReuse => "refresh_reuse",
            RevokeReason::PasswordChange => "password_change",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::Deactivated => "deactivated",
        }
    }
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

fn issue_pair(keys: &JwtKeys, user_id: i64, sid: &str, refresh_jti: &str) -> ApiResult<TokenPair> {
    Ok(TokenPair {
        access: keys.issue(TokenKind::Access, user_id, sid, &random_token(12))?,
        refresh: keys.issue(TokenKind::Refresh, user_id, sid, refresh_jti)?,
    })
}

/// Starts a new session for `user_id` and returns its first token pair.
pub fn start(conn: &mut DbConn, keys: &JwtKeys, user_id: i64) -> ApiResult<TokenPair> {
    let sid = random_token(16);
    let jti = random_token(16);
    let now = db::now();
    diesel::insert_into(sessions::table)
        .values(NewSession { id: &sid, user_id, refresh_jti: &jti, created_at: now, last_used_at: now, expires_at: expiry(keys, now) })
        .execute(conn)?;
    issue_pair(keys, user_id, &sid, &jti)
}

/// Exchanges the refresh token described by `claims` for a new pair. A refresh token that was
/// already exchanged revokes its whole family.
pub fn rotate(conn: &mut DbConn, keys: &JwtKeys, claims: &Claims) -> ApiResult<TokenPair> {
    let user_id = claims.user_id()?;
    let now = db::now();
    let session: Option<(i64, String, Option<NaiveDateTime>, NaiveDateTime, bool)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(&claims.sid))
        .select((sessions::user_id, sessions::refresh_jti, sessions::revoked_at, sessions::expires_at, users::is_active))
        .first(conn)
        .optional()?;
    let Some((owner, current_jti, revoked_at, expires_at, active)) = session else {
        return Err(ApiError::not_authenticated("session not found"));
    };
    if owner != user_id || revoked_at.is_some() || !active {
        return Err(ApiError::not_authenticated("session has been revoked"));
    }
    if expires_at <= now {
        return Err(ApiError::not_authenticated("session has expired"));
    }
    let new_jti = random_token(16);
    let swapped = if current_jti == claims.jti {
        diesel::update(
            sessions::table
                .filter(sessions::id.eq(&claims.sid))
                .filter(sessions::refresh_jti.eq(&claims.jti))
                .filter(sessions::revoked_at.is_null()),
        )
        .set((sessions::refresh_jti.eq(&new_jti), sessions::last_used_at.eq(now), sessions::expires_at.eq(expiry(keys, now))))
        .execute(conn)?
    } else {
        0
    };
    if swapped == 0 {
        // Either an old token of the family, or the same token racing itself: both are reuse.
        revoke(conn, &claims.sid, RevokeReason::RefreshReuse)?;
        tracing::warn!(user_id, "refresh token reuse detected; session revoked");
        return Err(ApiError::not_authenticated("refresh token was already used; the session has been revoked"));
    }
    issue_pair(keys, user_id, &claims.sid, &new_jti)
}

/// Ends one session; its tokens stop working at once.
pub fn revoke(conn: &mut DbConn, sid: &str, reason: RevokeReason) -> ApiResult<()> {
    diesel::update(sessions::table.filter(sessions::id.eq(sid)).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(db::now()), sessions::revoke_reason.eq(reason.as_str())))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of `user_id` except `keep`.
pub fn revoke_all(conn: &mut DbConn, user_id: i64, keep: Option<&str>, reason: RevokeReason) -> ApiResult<()> {
    let targets = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    diesel::update(targets).set((sessions::revoked_at.eq(db::now()), sessions::revoke_reason.eq(reason.as_str()))).execute(conn)?;
    Ok(())
}

/// Which of `sids` are still live sessions of active users.
pub fn live_among(conn: &mut DbConn, sids: &[String]) -> ApiResult<std::collections::HashSet<String>> {
    let mut live = std::collections::HashSet::new();
    for chunk in sids.chunks(500) {
        let found: Vec<String> = sessions::table
            .inner_join(users::table)
            .filter(sessions::id.eq_any(chunk))
            .filter(sessions::revoked_at.is_null())
            .filter(users::is_active.eq(true))
            .select(sessions::id)
            .load(conn)?;
        live.extend(found);
    }
    Ok(live)
}

/// For a live session of an active user, whether that user is an admin; `None` otherwise.
pub fn active_user_is_admin(conn: &mut DbConn, sid: &str, user_id: i64) -> ApiResult<Option<bool>> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(sid))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(users::is_active.eq(true))
        .select(users::is_admin)
        .first(conn)
        .optional()?)
}
