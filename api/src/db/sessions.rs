//! The `sessions` table: login sessions (refresh-token families), read with their user's flags.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::NewSession;
use super::schema::{sessions, users};
use super::{DbConn, now};
use crate::error::ApiResult;
use crate::ids::UserId;

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

/// What a refresh checks of a session: its owner, current refresh jti, revocation, expiry, and
/// whether its user is active.
#[derive(Debug, Clone)]
pub struct RefreshState {
    pub user_id: UserId,
    pub refresh_jti: String,
    /// The jti the last rotation replaced, and when.
    pub previous_refresh_jti: Option<String>,
    pub rotated_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
    pub user_active: bool,
}

/// Stores a new session `id` of `user_id` with its first refresh jti, used now.
pub fn insert(
    conn: &mut DbConn,
    id: &str,
    user_id: UserId,
    refresh_jti: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> ApiResult<()> {
    diesel::insert_into(sessions::table)
        .values(NewSession { id, user_id, refresh_jti, created_at: now, last_used_at: now, expires_at })
        .execute(conn)?;
    Ok(())
}

/// The refresh state of session `id`, if it exists.
pub fn refresh_state(conn: &mut DbConn, id: &str) -> ApiResult<Option<RefreshState>> {
    type Row = (UserId, String, Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>, NaiveDateTime, bool);
    let session: Option<Row> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((
            sessions::user_id,
            sessions::refresh_jti,
            sessions::previous_refresh_jti,
            sessions::rotated_at,
            sessions::revoked_at,
            sessions::expires_at,
            users::is_active,
        ))
        .first(conn)
        .optional()?;
    Ok(session.map(|(user_id, refresh_jti, previous_refresh_jti, rotated_at, revoked_at, expires_at, user_active)| RefreshState {
        user_id,
        refresh_jti,
        previous_refresh_jti,
        rotated_at,
        revoked_at,
        expires_at,
        user_active,
    }))
}

/// Swaps session `id`'s refresh jti from `old_jti` to `new_jti` (compare-and-swap) and extends
/// it; `false` when the session no longer had `old_jti` or was revoked.
pub fn swap_refresh_jti(
    conn: &mut DbConn,
    id: &str,
    old_jti: &str,
    new_jti: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> ApiResult<bool> {
    let swapped = diesel::update(
        sessions::table.filter(sessions::id.eq(id)).filter(sessions::refresh_jti.eq(old_jti)).filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::refresh_jti.eq(new_jti),
        sessions::previous_refresh_jti.eq(old_jti),
        sessions::rotated_at.eq(now),
        sessions::last_used_at.eq(now),
        sessions::expires_at.eq(expires_at),
    ))
    .execute(conn)?;
    Ok(swapped != 0)
}

/// Ends one session; its tokens stop working at once.
pub fn revoke(conn: &mut DbConn, id: &str, reason: RevokeReason) -> ApiResult<()> {
    diesel::update(sessions::table.filter(sessions::id.eq(id)).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(now()), sessions::revoke_reason.eq(reason.as_str())))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of `user_id` except `keep`.
pub fn revoke_all(conn: &mut DbConn, user_id: UserId, keep: Option<&str>, reason: RevokeReason) -> ApiResult<()> {
    let targets = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    diesel::update(targets).set((sessions::revoked_at.eq(now()), sessions::revoke_reason.eq(reason.as_str()))).execute(conn)?;
    Ok(())
}

/// Which of `sids` are still live sessions of active users.
pub fn live_among(conn: &mut DbConn, sids: &[String]) -> ApiResult<HashSet<String>> {
    let mut live = HashSet::new();
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
pub fn active_user_is_admin(conn: &mut DbConn, sid: &str, user_id: UserId) -> ApiResult<Option<bool>> {
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
