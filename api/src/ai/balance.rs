//! AI token accounts: reserve before a provider call, settle after it. The check and the
//! reservation happen under the account's lock (row lock on PostgreSQL, `BEGIN IMMEDIATE` on
//! SQLite), so concurrent requests of one user can never reserve more than it has; a charge is
//! capped by its reservation, so the balance never goes below zero.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{ai_accounts, ai_reservations};
use crate::db::{self, DbConn, write_tx, write_tx_retrying_conflicts};
use crate::error::{ApiError, ApiResult};

/// A user's tokens (`GET /api/contact/token_balance/`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Balance {
    /// Tokens available now: granted - used - reserved by requests in flight.
    pub balance: i64,
    pub used: i64,
    pub granted: i64,
}

/// Creates the account with the initial grant on first use. Two first requests racing: the
/// loser's insert fails on the primary key, which aborts its transaction on PostgreSQL, so the
/// callers run in `write_tx_retrying_conflicts` and the retry finds the row.
fn ensure_account(conn: &mut DbConn, user_id: i64, grant: i64) -> ApiResult<()> {
    let exists: bool = diesel::select(diesel::dsl::exists(ai_accounts::table.find(user_id))).get_result(conn)?;
    if !exists {
        diesel::insert_into(ai_accounts::table)
            .values((ai_accounts::user_id.eq(user_id), ai_accounts::granted.eq(grant), ai_accounts::used.eq(0i64)))
            .execute(conn)?;
    }
    Ok(())
}

/// Locks the account row (PostgreSQL; SQLite's write transaction already excludes others).
fn lock_account(conn: &mut DbConn, user_id: i64) -> ApiResult<(i64, i64)> {
    let query = ai_accounts::table.find(user_id).select((ai_accounts::granted, ai_accounts::used));
    Ok(match conn {
        DbConn::Pg(pg) => query.for_update().first(pg)?,
        DbConn::Sqlite(_) => query.first(conn)?,
    })
}

/// Reserved tokens that still count, after dropping reservations older than `stale_before`
/// (left behind by a crash).
fn live_reserved(conn: &mut DbConn, user_id: i64, stale_before: NaiveDateTime) -> ApiResult<i64> {
    diesel::delete(
        ai_reservations::table.filter(ai_reservations::user_id.eq(user_id)).filter(ai_reservations::created_at.lt(stale_before)),
    )
    .execute(conn)?;
    let amounts: Vec<i64> =
        ai_reservations::table.filter(ai_reservations::user_id.eq(user_id)).select(ai_reservations::amount).load(conn)?;
    Ok(amounts.iter().sum())
}

pub fn balance(conn: &mut DbConn, user_id: i64, grant: i64, stale_before: NaiveDateTime) -> ApiResult<Balance> {
    write_tx_retrying_conflicts(conn, 3, |conn| {
        ensure_account(conn, user_id, grant)?;
        let (granted, used) = lock_account(conn, user_id)?;
        let reserved = live_reserved(conn, user_id, stale_before)?;
        Ok(Balance { balance: (granted - used - reserved).max(0), used, granted })
    })
}

/// Sets aside up to `wanted` tokens, and at least `minimum`, or fails with 402.
/// Returns the reservation's id and size.
pub fn reserve(
    conn: &mut DbConn,
    user_id: i64,
    grant: i64,
    wanted: i64,
    minimum: i64,
    stale_before: NaiveDateTime,
) -> ApiResult<(i64, i64)> {
    write_tx_retrying_conflicts(conn, 3, |conn| {
        ensure_account(conn, user_id, grant)?;
        let (granted, used) = lock_account(conn, user_id)?;
        let available = granted - used - live_reserved(conn, user_id, stale_before)?;
        if available <= 0 {
            return Err(ApiError::InsufficientTokens("your AI token balance is empty".into()));
        }
        if available < minimum {
            return Err(ApiError::InsufficientTokens(format!(
                "this request needs about {minimum} tokens and {available} are available; start a new conversation or ask an admin for more"
            )));
        }
        let amount = wanted.min(available);
        let id: i64 = diesel::insert_into(ai_reservations::table)
            .values((ai_reservations::user_id.eq(user_id), ai_reservations::amount.eq(amount), ai_reservations::created_at.eq(db::now())))
            .returning(ai_reservations::id)
            .get_result(conn)?;
        Ok((id, amount))
    })
}

/// Releases a reservation and charges `tokens` (capped by what was reserved, and by what is
/// left). Returns the charge and the balance after it.
pub fn settle(
    conn: &mut DbConn,
    user_id: i64,
    reservation: (i64, i64),
    tokens: i64,
    stale_before: NaiveDateTime,
) -> ApiResult<(i64, Balance)> {
    let (reservation_id, reserved_amount) = reservation;
    write_tx(conn, |conn| {
        let (granted, used) = lock_account(conn, user_id)?;
        diesel::delete(ai_reservations::table.find(reservation_id)).execute(conn)?;
        let charge = tokens.clamp(0, reserved_amount).min(granted - used);
        diesel::update(ai_accounts::table.find(user_id)).set(ai_accounts::used.eq(used + charge)).execute(conn)?;
        let reserved = live_reserved(conn, user_id, stale_before)?;
        Ok((charge, Balance { balance: (granted - used - charge - reserved).max(0), used: used + charge, granted }))
    })
}

/// Adds `tokens` to a user's grant (admin).
pub fn grant(conn: &mut DbConn, user_id: i64, initial: i64, tokens: i64, stale_before: NaiveDateTime) -> ApiResult<Balance> {
    write_tx_retrying_conflicts(conn, 3, |conn| {
        ensure_account(conn, user_id, initial)?;
        let (granted, used) = lock_account(conn, user_id)?;
        diesel::update(ai_accounts::table.find(user_id)).set(ai_accounts::granted.eq(granted + tokens)).execute(conn)?;
        let reserved = live_reserved(conn, user_id, stale_before)?;
        Ok(Balance { balance: (granted + tokens - used - reserved).max(0), used, granted: granted + tokens })
    })
}
