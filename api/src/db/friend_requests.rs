//! The `friend_requests` table: requests between two users, pending until answered.

use diesel::prelude::*;

use super::models::{FriendRequest, NewFriendRequest};
use super::schema::friend_requests;
use super::{DbConn, now};
use crate::domain::RequestStatus;
use crate::error::ApiResult;
use crate::ids::UserId;

/// The request `id`, if it exists.
pub fn find(conn: &mut DbConn, id: i64) -> ApiResult<Option<FriendRequest>> {
    Ok(friend_requests::table.find(id).select(FriendRequest::as_select()).first(conn).optional()?)
}

/// The pending request from `sender` to `receiver`, if there is one.
pub fn pending_from(conn: &mut DbConn, sender: UserId, receiver: UserId) -> ApiResult<Option<FriendRequest>> {
    Ok(friend_requests::table
        .filter(friend_requests::sender_id.eq(sender))
        .filter(friend_requests::receiver_id.eq(receiver))
        .filter(friend_requests::status.eq(RequestStatus::Pending))
        .select(FriendRequest::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a new pending request from `sender` to `receiver` and returns its id. The partial
/// unique index on the pair refuses a second pending request between the same two users.
pub fn insert_pending(conn: &mut DbConn, sender: UserId, receiver: UserId) -> ApiResult<i64> {
    Ok(diesel::insert_into(friend_requests::table)
        .values(NewFriendRequest {
            sender_id: sender,
            receiver_id: receiver,
            user_low: sender.min(receiver),
            user_high: sender.max(receiver),
            status: RequestStatus::Pending,
            created_at: now(),
        })
        .returning(friend_requests::id)
        .get_result(conn)?)
}

/// Moves a pending request to `to`; `false` if it was no longer pending.
pub fn settle(conn: &mut DbConn, id: i64, to: RequestStatus) -> ApiResult<bool> {
    let updated = diesel::update(friend_requests::table.find(id).filter(friend_requests::status.eq(RequestStatus::Pending)))
        .set((friend_requests::status.eq(to), friend_requests::responded_at.eq(now())))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Cancels the pending requests between `a` and `b`, either way.
pub fn cancel_pending_between(conn: &mut DbConn, a: UserId, b: UserId) -> ApiResult<()> {
    diesel::update(
        friend_requests::table
            .filter(friend_requests::user_low.eq(a.min(b)))
            .filter(friend_requests::user_high.eq(a.max(b)))
            .filter(friend_requests::status.eq(RequestStatus::Pending)),
    )
    .set((friend_requests::status.eq(RequestStatus::Cancelled.as_str()), friend_requests::responded_at.eq(now())))
    .execute(conn)?;
    Ok(())
}

/// Pending requests `user` received (`received`) or sent (not `received`), newest first.
fn pending_of(conn: &mut DbConn, user: UserId, received: bool) -> ApiResult<Vec<FriendRequest>> {
    let pending = friend_requests::table
        .filter(friend_requests::status.eq(RequestStatus::Pending))
        .order((friend_requests::created_at.desc(), friend_requests::id.desc()))
        .select(FriendRequest::as_select());
    Ok(if received {
        pending.filter(friend_requests::receiver_id.eq(user)).load(conn)?
    } else {
        pending.filter(friend_requests::sender_id.eq(user)).load(conn)?
    })
}

/// Pending requests `user` received, newest first.
pub fn pending_received(conn: &mut DbConn, user: UserId) -> ApiResult<Vec<FriendRequest>> {
    pending_of(conn, user, true)
}

/// Pending requests `user` sent, newest first.
pub fn pending_sent(conn: &mut DbConn, user: UserId) -> ApiResult<Vec<FriendRequest>> {
    pending_of(conn, user, false)
}

/// Which of `ids` have a pending request from `user`.
pub fn pending_sent_to_any(conn: &mut DbConn, user: UserId, ids: &[UserId]) -> ApiResult<Vec<UserId>> {
    Ok(friend_requests::table
        .filter(friend_requests::status.eq(RequestStatus::Pending))
        .filter(friend_requests::sender_id.eq(user))
        .filter(friend_requests::receiver_id.eq_any(ids))
        .select(friend_requests::receiver_id)
        .load(conn)?)
}

/// Which of `ids` sent `user` a pending request.
pub fn pending_received_from_any(conn: &mut DbConn, user: UserId, ids: &[UserId]) -> ApiResult<Vec<UserId>> {
    Ok(friend_requests::table
        .filter(friend_requests::status.eq(RequestStatus::Pending))
        .filter(friend_requests::receiver_id.eq(user))
        .filter(friend_requests::sender_id.eq_any(ids))
        .select(friend_requests::sender_id)
        .load(conn)?)
}
