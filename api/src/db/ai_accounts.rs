//! The `ai_accounts` and `ai_reservations` tables: each user's AI token grant and use, and the
//! tokens set aside for provider calls in flight.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{ai_accounts, ai_reservations};
use super::{DbConn, now};
use crate::error::ApiResult;
use crate::ids::UserId;

/// Creates the account with the initial grant on first use. Two first requests racing: the
/// loser's insert fails on the primary key, which aborts its transaction on PostgreSQL, so the
/// callers run in `write_tx_retrying_conflicts` and the retry finds the row.
pub fn ensure(conn: &mut DbConn, user_id: UserId, grant: i64) -> ApiResult<()> {
    let exists: bool = diesel::select(diesel::dsl::exists(ai_accounts::table.find(user_id))).get_result(conn)?;
    if !exists {
        diesel::insert_into(ai_accounts::table)
            .values((ai_accounts::user_id.eq(user_id), ai_accounts::granted.eq(grant), ai_accounts::used.eq(0i64)))
            .execute(conn)?;
    }
    Ok(())
}

/// Locks the account row and reads (granted, used) (row lock on PostgreSQL; SQLite's write
/// transaction already excludes others).
pub fn lock(conn: &mut DbConn, user_id: UserId) -> ApiResult<(i64, i64)> {
    let query = ai_accounts::table.find(user_id).select((ai_accounts::granted, ai_accounts::used));
    Ok(match conn {
        DbConn::Pg(pg) => query.for_update().first(pg)?,
        DbConn::Sqlite(_) => query.first(conn)?,
    })
}

/// Sets the tokens `user_id` used.
pub fn set_used(conn: &mut DbConn, user_id: UserId, used: i64) -> ApiResult<()> {
    diesel::update(ai_accounts::table.find(user_id)).set(ai_accounts::used.eq(used)).execute(conn)?;
    Ok(())
}

/// Sets the tokens `user_id` was granted.
pub fn set_granted(conn: &mut DbConn, user_id: UserId, granted: i64) -> ApiResult<()> {
    diesel::update(ai_accounts::table.find(user_id)).set(ai_accounts::granted.eq(granted)).execute(conn)?;
    Ok(())
}

/// Reserved tokens that still count, after dropping reservations older than `stale_before`
/// (left behind by a crash).
pub fn live_reserved(conn: &mut DbConn, user_id: UserId, stale_before: NaiveDateTime) -> ApiResult<i64> {
    diesel::delete(
        ai_reservations::table.filter(ai_reservations::user_id.eq(user_id)).filter(ai_reservations::created_at.lt(stale_before)),
    )
    .execute(conn)?;
    let amounts: Vec<i64> =
        ai_reservations::table.filter(ai_reservations::user_id.eq(user_id)).select(ai_reservations::amount).load(conn)?;
    Ok(amounts.iter().sum())
}

/// Stores a reservation of `amount` tokens for `user_id`, made now; returns its id.
pub fn insert_reservation(conn: &mut DbConn, user_id: UserId, amount: i64) -> ApiResult<i64> {
    Ok(diesel::insert_into(ai_reservations::table)
        .values((ai_reservations::user_id.eq(user_id), ai_reservations::amount.eq(amount), ai_reservations::created_at.eq(now())))
        .returning(ai_reservations::id)
        .get_result(conn)?)
}

/// Drops reservation `id`.
pub fn delete_reservation(conn: &mut DbConn, id: i64) -> ApiResult<()> {
    diesel::delete(ai_reservations::table.find(id)).execute(conn)?;
    Ok(())
}
