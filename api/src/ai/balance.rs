//! AI token accounts: reserve before a provider call, settle after it. The check and the
//! reservation happen under the account's lock (row lock on PostgreSQL, `BEGIN IMMEDIATE` on
//! SQLite), so concurrent requests of one user can never reserve more than it has; a charge is
//! capped by its reservation, so the balance never goes below zero. The rows are kept by
//! `db::ai_accounts`.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::ai_accounts as accounts;
use crate::db::{DbConn, write_tx, write_tx_retrying_conflicts};
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;

/// A user's tokens (`GET /api/contact/token_balance/`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Balance {
    /// Tokens available now: granted - used - reserved by requests in flight.
    pub balance: i64,
    pub used: i64,
    pub granted: i64,
}

pub fn balance(conn: &mut DbConn, user_id: UserId, grant: i64, stale_before: NaiveDateTime) -> ApiResult<Balance> {
    // The account is created on first use; a racing first insert fails on the primary key, and
    // the retry finds the row.
    write_tx_retrying_conflicts(conn, 3, |conn| {
        accounts::ensure(conn, user_id, grant)?;
        let (granted, used) = accounts::lock(conn, user_id)?;
        let reserved = accounts::live_reserved(conn, user_id, stale_before)?;
        Ok(Balance { balance: (granted - used - reserved).max(0), used, granted })
    })
}

/// Sets aside up to `wanted` tokens, and at least `minimum`, or fails with 402.
/// Returns the reservation's id and size.
pub fn reserve(
    conn: &mut DbConn,
    user_id: UserId,
    grant: i64,
    wanted: i64,
    minimum: i64,
    stale_before: NaiveDateTime,
) -> ApiResult<(i64, i64)> {
    write_tx_retrying_conflicts(conn, 3, |conn| {
        accounts::ensure(conn, user_id, grant)?;
        let (granted, used) = accounts::lock(conn, user_id)?;
        let available = granted - used - accounts::live_reserved(conn, user_id, stale_before)?;
        if available <= 0 {
            return Err(ApiError::InsufficientTokens("your AI token balance is empty".into()));
        }
        if available < minimum {
            return Err(ApiError::InsufficientTokens(format!(
                "this request needs about {minimum} tokens and {available} are available; start a new conversation or ask an admin for more"
            )));
        }
        let amount = wanted.min(available);
        let id = accounts::insert_reservation(conn, user_id, amount)?;
        Ok((id, amount))
    })
}

/// Releases a reservation and charges `tokens` (capped by what was reserved, and by what is
/// left). Returns the charge and the balance after it.
pub fn settle(
    conn: &mut DbConn,
    user_id: UserId,
    reservation: (i64, i64),
    tokens: i64,
    stale_before: NaiveDateTime,
) -> ApiResult<(i64, Balance)> {
    let (reservation_id, reserved_amount) = reservation;
    write_tx(conn, |conn| {
        let (granted, used) = accounts::lock(conn, user_id)?;
        accounts::delete_reservation(conn, reservation_id)?;
        let charge = tokens.clamp(0, reserved_amount).min(granted - used);
        accounts::set_used(conn, user_id, used + charge)?;
        let reserved = accounts::live_reserved(conn, user_id, stale_before)?;
        Ok((charge, Balance { balance: (granted - used - charge - reserved).max(0), used: used + charge, granted }))
    })
}

/// Adds `tokens` to a user's grant (admin).
pub fn grant(conn: &mut DbConn, user_id: UserId, initial: i64, tokens: i64, stale_before: NaiveDateTime) -> ApiResult<Balance> {
    write_tx_retrying_conflicts(conn, 3, |conn| {
        accounts::ensure(conn, user_id, initial)?;
        let (granted, used) = accounts::lock(conn, user_id)?;
        accounts::set_granted(conn, user_id, granted + tokens)?;
        let reserved = accounts::live_reserved(conn, user_id, stale_before)?;
        Ok(Balance { balance: (granted + tokens - used - reserved).max(0), used, granted: granted + tokens })
    })
}
