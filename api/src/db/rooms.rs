//! The `rooms` table: look-ups and the row locks that order writers on a room.

use diesel::prelude::*;

use super::DbConn;
use super::models::{NewRoom, Room};
use super::schema::{room_members, rooms};
use crate::domain::RoomKind;
use crate::error::ApiResult;
use crate::ids::{RoomId, Seq, UserId};
use crate::on_backend;

/// The room `room_id`, if it exists.
pub fn find(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Option<Room>> {
    Ok(rooms::table.find(room_id).select(Room::as_select()).first(conn).optional()?)
}

/// The room's highest seq.
pub fn last_seq(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Seq> {
    Ok(rooms::table.find(room_id).select(rooms::last_seq).first(conn)?)
}

/// The private room of a pair, by its key (`"low:high"` user ids).
pub fn find_private(conn: &mut DbConn, key: &str) -> ApiResult<Option<Room>> {
    Ok(rooms::table.filter(rooms::private_key.eq(key)).select(Room::as_select()).first(conn).optional()?)
}

/// Stores a new room; its id.
pub fn create(conn: &mut DbConn, room: NewRoom) -> ApiResult<RoomId> {
    Ok(diesel::insert_into(rooms::table).values(room).returning(rooms::id).get_result(conn)?)
}

/// How many groups `owner` owns.
pub fn groups_owned_by(conn: &mut DbConn, owner: UserId) -> ApiResult<i64> {
    Ok(rooms::table.filter(rooms::owner_id.eq(owner)).filter(rooms::kind.eq(RoomKind::Group)).count().get_result(conn)?)
}

/// Hands the room to `owner` (or to nobody).
pub fn set_owner(conn: &mut DbConn, room_id: RoomId, owner: Option<UserId>) -> ApiResult<()> {
    diesel::update(rooms::table.find(room_id)).set(rooms::owner_id.eq(owner)).execute(conn)?;
    Ok(())
}

/// The rooms `user` belongs to, newest activity first.
pub fn of_member_newest_first(conn: &mut DbConn, user: UserId) -> ApiResult<Vec<Room>> {
    Ok(rooms::table
        .inner_join(room_members::table)
        .filter(room_members::user_id.eq(user))
        .order((rooms::last_activity_at.desc(), rooms::id.desc()))
        .select(Room::as_select())
        .load(conn)?)
}

/// The kind of room `room_id`, if it exists (a hot read of the message writer).
pub fn kind(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Option<RoomKind>> {
    Ok(on_backend!(conn, c => rooms::table.find(room_id).select(rooms::kind).first(c).optional())?)
}

/// Locks one room's row (PostgreSQL), so membership changes and message batches on it take
/// turns. SQLite's `BEGIN IMMEDIATE` already serialises writers.
pub fn lock(conn: &mut DbConn, room_id: RoomId) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        rooms::table.find(room_id).select(rooms::id).for_update().load::<RoomId>(pg)?;
    }
    Ok(())
}

/// Takes the row locks of several rooms, in id order. On PostgreSQL this orders writers on
/// several nodes (no deadlock between batches naming the same rooms), and every check that
/// follows (members, blocks, earlier sends) sees what the previous holder committed.
pub fn lock_many(conn: &mut DbConn, room_ids: impl IntoIterator<Item = RoomId>) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        let mut ids: Vec<RoomId> = room_ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        rooms::table.filter(rooms::id.eq_any(&ids)).order(rooms::id).select(rooms::id).for_update().load::<RoomId>(pg)?;
    }
    Ok(())
}
