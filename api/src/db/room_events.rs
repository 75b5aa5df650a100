//! The `room_events` table: the log of what happened to a room (created, members added and
//! leaving, owners changed).

use diesel::prelude::*;

use super::DbConn;
use super::schema::room_events;
use crate::error::ApiResult;
use crate::ids::{RoomId, UserId};

/// Appends to a room's event log.
pub fn append(conn: &mut DbConn, room_id: RoomId, actor: Option<UserId>, kind: &str, subject: Option<UserId>) -> ApiResult<()> {
    diesel::insert_into(room_events::table)
        .values((
            room_events::room_id.eq(room_id),
            room_events::actor_id.eq(actor),
            room_events::kind.eq(kind),
            room_events::subject_id.eq(subject),
            room_events::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}
