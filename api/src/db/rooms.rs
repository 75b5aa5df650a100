//! The `rooms` table: look-ups and the row locks that order writers on a room.

use diesel::prelude::*;

use super::DbConn;
use super::models::Room;
use super::schema::rooms;
use crate::domain::RoomKind;
use crate::error::ApiResult;
use crate::on_backend;

/// The room `room_id`, if it exists.
pub fn find(conn: &mut DbConn, room_id: i64) -> ApiResult<Option<Room>> {
    Ok(rooms::table.find(room_id).select(Room::as_select()).first(conn).optional()?)
}

/// The kind of room `room_id`, if it exists (a hot read of the message writer).
pub fn kind(conn: &mut DbConn, room_id: i64) -> ApiResult<Option<RoomKind>> {
    Ok(on_backend!(conn, c => rooms::table.find(room_id).select(rooms::kind).first(c).optional())?)
}

/// Locks one room's row (PostgreSQL), so membership changes and message batches on it take
/// turns. SQLite's `BEGIN IMMEDIATE` already serialises writers.
pub fn lock(conn: &mut DbConn, room_id: i64) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        rooms::table.find(room_id).select(rooms::id).for_update().load::<i64>(pg)?;
    }
    Ok(())
}

/// Takes the row locks of several rooms, in id order. On PostgreSQL this orders writers on
/// several nodes (no deadlock between batches naming the same rooms), and every check that
/// follows (members, blocks, earlier sends) sees what the previous holder committed.
pub fn lock_many(conn: &mut DbConn, room_ids: impl IntoIterator<Item = i64>) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        let mut ids: Vec<i64> = room_ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        rooms::table.filter(rooms::id.eq_any(&ids)).order(rooms::id).select(rooms::id).for_update().load::<i64>(pg)?;
    }
    Ok(())
}
