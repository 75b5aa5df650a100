//! The `one_time_tokens` table: hashed single-use tokens behind email links.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::NewOneTimeToken;
use super::schema::one_time_tokens;
use super::{DbConn, now};
use crate::error::ApiResult;
use crate::ids::UserId;

/// What a one-time token proves.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// A stored token as its checks need it.
#[derive(Debug, Clone, Copy)]
pub struct TokenRow {
    pub id: i64,
    pub used_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
}

/// Stores a token of `user_id` for `purpose` by its hash, valid for `ttl` from now.
pub fn insert(conn: &mut DbConn, user_id: UserId, purpose: Purpose, token_hash: &str, ttl: std::time::Duration) -> ApiResult<()> {
    let now = now();
    diesel::insert_into(one_time_tokens::table)
        .values(NewOneTimeToken {
            user_id,
            purpose: purpose.as_str(),
            token_hash,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(ttl.as_secs() as i64),
        })
        .execute(conn)?;
    Ok(())
}

/// The token of `user_id` for `purpose` with this hash, if there is one.
pub fn find(conn: &mut DbConn, user_id: UserId, purpose: Purpose, token_hash: &str) -> ApiResult<Option<TokenRow>> {
    let row: Option<(i64, Option<NaiveDateTime>, NaiveDateTime)> = one_time_tokens::table
        .filter(one_time_tokens::token_hash.eq(token_hash))
        .filter(one_time_tokens::user_id.eq(user_id))
        .filter(one_time_tokens::purpose.eq(purpose.as_str()))
        .select((one_time_tokens::id, one_time_tokens::used_at, one_time_tokens::expires_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, used_at, expires_at)| TokenRow { id, used_at, expires_at }))
}

/// Marks token `id` used if nobody did first; `false` when it was already used.
pub fn consume(conn: &mut DbConn, id: i64) -> ApiResult<bool> {
    let updated = diesel::update(one_time_tokens::table.find(id).filter(one_time_tokens::used_at.is_null()))
        .set(one_time_tokens::used_at.eq(now()))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Marks every unused token of `user_id` for `purpose` used.
pub fn use_up_all(conn: &mut DbConn, user_id: UserId, purpose: Purpose) -> ApiResult<()> {
    diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user_id))
            .filter(one_time_tokens::purpose.eq(purpose.as_str()))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(now()))
    .execute(conn)?;
    Ok(())
}
