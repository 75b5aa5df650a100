//! The `friendships` and `blocks` tables: who is whose friend, and who blocked whom.

use diesel::dsl::exists;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{blocks, friendships};
use crate::error::ApiResult;

/// Whether either of `a` and `b` blocked the other.
pub fn blocked_between(conn: &mut DbConn, a: i64, b: i64) -> ApiResult<bool> {
    let either_way = blocks::table
        .filter((blocks::blocker_id.eq(a).and(blocks::blocked_id.eq(b))).or(blocks::blocker_id.eq(b).and(blocks::blocked_id.eq(a))));
    Ok(diesel::select(exists(either_way)).get_result(conn)?)
}

pub fn are_friends(conn: &mut DbConn, a: i64, b: i64) -> ApiResult<bool> {
    Ok(diesel::select(exists(friendships::table.find((a, b)))).get_result(conn)?)
}

/// The ids of `user`'s friends.
pub fn friend_ids(conn: &mut DbConn, user: i64) -> ApiResult<Vec<i64>> {
    Ok(friendships::table.filter(friendships::user_id.eq(user)).select(friendships::friend_id).load(conn)?)
}
