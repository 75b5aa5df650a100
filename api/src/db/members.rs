//! The `room_members` table: who belongs to which room.

use std::collections::HashSet;

use diesel::prelude::*;

use super::DbConn;
use super::schema::room_members;
use crate::error::ApiResult;
use crate::on_backend;

/// The user ids of a room's members.
pub fn ids(conn: &mut DbConn, room_id: i64) -> ApiResult<Vec<i64>> {
    Ok(on_backend!(conn, c => room_members::table.filter(room_members::room_id.eq(room_id)).select(room_members::user_id).load(c))?)
}

/// Whether `user` is a member of `room_id`.
pub fn is_member(conn: &mut DbConn, room_id: i64, user: i64) -> ApiResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(room_members::table.find((room_id, user)))).get_result(conn)?)
}

/// Rooms `user` belongs to, among `room_ids`.
pub fn rooms_among(conn: &mut DbConn, user: i64, room_ids: &[i64]) -> ApiResult<HashSet<i64>> {
    Ok(room_members::table
        .filter(room_members::user_id.eq(user))
        .filter(room_members::room_id.eq_any(room_ids))
        .select(room_members::room_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}
