//! The `room_members` table: who belongs to which room.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::DbConn;
use super::models::PublicUserRow;
use super::schema::{messages, room_members, users};
use crate::domain::MemberRole;
use crate::error::ApiResult;
use crate::ids::{RoomId, Seq, UserId};
use crate::on_backend;

/// The user ids of a room's members.
pub fn ids(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Vec<UserId>> {
    Ok(on_backend!(conn, c => room_members::table.filter(room_members::room_id.eq(room_id)).select(room_members::user_id).load(c))?)
}

/// Whether `user` is a member of `room_id`.
pub fn is_member(conn: &mut DbConn, room_id: RoomId, user: UserId) -> ApiResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(room_members::table.find((room_id, user)))).get_result(conn)?)
}

/// Rooms `user` belongs to, among `room_ids`.
pub fn rooms_among(conn: &mut DbConn, user: UserId, room_ids: &[RoomId]) -> ApiResult<HashSet<RoomId>> {
    Ok(room_members::table
        .filter(room_members::user_id.eq(user))
        .filter(room_members::room_id.eq_any(room_ids))
        .select(room_members::room_id)
        .load::<RoomId>(conn)?
        .into_iter()
        .collect())
}

/// Moves `user`'s read receipt in `room_id` up to `seq`, never down; whether it moved.
pub fn raise_read_receipt(conn: &mut DbConn, room_id: RoomId, user: UserId, seq: Seq) -> ApiResult<bool> {
    let moved = diesel::update(room_members::table.find((room_id, user)).filter(room_members::last_read_seq.lt(seq)))
        .set(room_members::last_read_seq.eq(seq))
        .execute(conn)?;
    Ok(moved == 1)
}

/// Adds a member, who starts having read everything before joining: earlier history is there
/// to scroll through, not to count as unread.
pub fn add(conn: &mut DbConn, room_id: RoomId, user_id: UserId, role: MemberRole) -> ApiResult<()> {
    let last_seq = super::rooms::last_seq(conn, room_id)?;
    diesel::insert_into(room_members::table)
        .values((
            room_members::room_id.eq(room_id),
            room_members::user_id.eq(user_id),
            room_members::role.eq(role.as_str()),
            room_members::last_read_seq.eq(last_seq),
            room_members::joined_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes `user` from the room.
pub fn remove(conn: &mut DbConn, room_id: RoomId, user: UserId) -> ApiResult<()> {
    diesel::delete(room_members::table.find((room_id, user))).execute(conn)?;
    Ok(())
}

/// The member who joined the room first, if any is left.
pub fn longest_standing(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Option<UserId>> {
    Ok(room_members::table
        .filter(room_members::room_id.eq(room_id))
        .order((room_members::joined_at, room_members::user_id))
        .select(room_members::user_id)
        .first(conn)
        .optional()?)
}

/// Sets a member's role.
pub fn set_role(conn: &mut DbConn, room_id: RoomId, user: UserId, role: MemberRole) -> ApiResult<()> {
    diesel::update(room_members::table.find((room_id, user))).set(room_members::role.eq(role.as_str())).execute(conn)?;
    Ok(())
}

/// Every member of these rooms with their read receipt and public row, by room, in the order
/// they joined.
pub fn with_receipts(conn: &mut DbConn, room_ids: &[RoomId]) -> ApiResult<Vec<(RoomId, Seq, PublicUserRow)>> {
    Ok(room_members::table
        .inner_join(users::table)
        .filter(room_members::room_id.eq_any(room_ids))
        .order((room_members::joined_at, room_members::user_id))
        .select((room_members::room_id, room_members::last_read_seq, PublicUserRow::as_select()))
        .load(conn)?)
}

/// Messages from others above each member's read receipt, by (room, member); only `viewer`'s
/// when given. Members with nothing unread are absent.
pub fn unread_counts(conn: &mut DbConn, room_ids: &[RoomId], viewer: Option<UserId>) -> ApiResult<HashMap<(RoomId, UserId), i64>> {
    let unread_query = messages::table
        .inner_join(
            room_members::table.on(room_members::room_id
                .eq(messages::room_id)
                .and(messages::seq.gt(room_members::last_read_seq))
                .and(messages::sender_id.ne(room_members::user_id))),
        )
        .filter(room_members::room_id.eq_any(room_ids))
        .group_by((room_members::room_id, room_members::user_id))
        .select((room_members::room_id, room_members::user_id, diesel::dsl::count_star()));
    let counts: Vec<(RoomId, UserId, i64)> = match viewer {
        Some(viewer) => unread_query.filter(room_members::user_id.eq(viewer)).load(conn)?,
        None => unread_query.load(conn)?,
    };
    Ok(counts.into_iter().map(|(room, user, count)| ((room, user), count)).collect())
}
