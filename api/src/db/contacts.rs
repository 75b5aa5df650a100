//! The `friendships` and `blocks` tables: who is whose friend, and who blocked whom.

use diesel::dsl::exists;
use diesel::prelude::*;

use super::models::PublicUserRow;
use super::schema::{blocks, friendships, users};
use super::{DbConn, now};
use crate::domain::Username;
use crate::error::ApiResult;
use crate::ids::UserId;

/// Whether either of `a` and `b` blocked the other.
pub fn blocked_between(conn: &mut DbConn, a: UserId, b: UserId) -> ApiResult<bool> {
    let either_way = blocks::table
        .filter((blocks::blocker_id.eq(a).and(blocks::blocked_id.eq(b))).or(blocks::blocker_id.eq(b).and(blocks::blocked_id.eq(a))));
    Ok(diesel::select(exists(either_way)).get_result(conn)?)
}

/// Whether `a` and `b` are friends.
pub fn are_friends(conn: &mut DbConn, a: UserId, b: UserId) -> ApiResult<bool> {
    Ok(diesel::select(exists(friendships::table.find((a, b)))).get_result(conn)?)
}

/// The ids of `user`'s friends.
pub fn friend_ids(conn: &mut DbConn, user: UserId) -> ApiResult<Vec<UserId>> {
    Ok(friendships::table.filter(friendships::user_id.eq(user)).select(friendships::friend_id).load(conn)?)
}

/// Which of `ids` are friends of `user`.
pub fn friends_among(conn: &mut DbConn, user: UserId, ids: &[UserId]) -> ApiResult<Vec<UserId>> {
    Ok(friendships::table
        .filter(friendships::user_id.eq(user))
        .filter(friendships::friend_id.eq_any(ids))
        .select(friendships::friend_id)
        .load(conn)?)
}

/// The friendships among `ids`, as (user, friend) pairs (each friendship both ways).
pub fn friendships_among(conn: &mut DbConn, ids: &[UserId]) -> ApiResult<Vec<(UserId, UserId)>> {
    Ok(friendships::table
        .filter(friendships::user_id.eq_any(ids))
        .filter(friendships::friend_id.eq_any(ids))
        .select((friendships::user_id, friendships::friend_id))
        .load(conn)?)
}

/// The public rows of `user`'s friends, by username.
pub fn friends_by_username(conn: &mut DbConn, user: UserId) -> ApiResult<Vec<PublicUserRow>> {
    let mut rows: Vec<PublicUserRow> = crate::on_backend!(conn, c => friendships::table
        .inner_join(users::table.on(users::id.eq(friendships::friend_id)))
        .filter(friendships::user_id.eq(user))
        .select(PublicUserRow::as_select())
        .load(c))?;
    // Sorted here rather than by ORDER BY username_key: SQLite's sorter was a third of
    // the query's cost. The order is the same on both backends (keys compare byte-wise
    // under SQLite's BINARY and the column's "C" collation) and total (keys are unique).
    rows.sort_unstable_by(|a, b| Username::key_order(&a.username, &b.username));
    Ok(rows)
}

/// Stores the friendship in both directions (a no-op if it exists).
pub fn befriend(conn: &mut DbConn, a: UserId, b: UserId) -> ApiResult<()> {
    if are_friends(conn, a, b)? {
        return Ok(());
    }
    let now = now();
    for (user_id, friend_id) in [(a, b), (b, a)] {
        diesel::insert_into(friendships::table)
            .values((friendships::user_id.eq(user_id), friendships::friend_id.eq(friend_id), friendships::created_at.eq(now)))
            .execute(conn)?;
    }
    Ok(())
}

/// Ends the friendship of `a` and `b` in both directions; the number of rows removed.
pub fn unfriend(conn: &mut DbConn, a: UserId, b: UserId) -> ApiResult<usize> {
    let pair = friendships::table.filter(
        (friendships::user_id.eq(a).and(friendships::friend_id.eq(b))).or(friendships::user_id.eq(b).and(friendships::friend_id.eq(a))),
    );
    Ok(diesel::delete(pair).execute(conn)?)
}

/// Whether `blocker` blocked `blocked` (this way only).
pub fn is_blocking(conn: &mut DbConn, blocker: UserId, blocked: UserId) -> ApiResult<bool> {
    Ok(diesel::select(exists(blocks::table.find((blocker, blocked)))).get_result(conn)?)
}

/// Stores that `blocker` blocked `blocked`.
pub fn insert_block(conn: &mut DbConn, blocker: UserId, blocked: UserId) -> ApiResult<()> {
    diesel::insert_into(blocks::table)
        .values((blocks::blocker_id.eq(blocker), blocks::blocked_id.eq(blocked), blocks::created_at.eq(now())))
        .execute(conn)?;
    Ok(())
}

/// Removes `blocker`'s block of `blocked`; the number of rows removed.
pub fn delete_block(conn: &mut DbConn, blocker: UserId, blocked: UserId) -> ApiResult<usize> {
    Ok(diesel::delete(blocks::table.find((blocker, blocked))).execute(conn)?)
}

/// The public rows of the users `blocker` blocked, by username key.
pub fn blocked_by(conn: &mut DbConn, blocker: UserId) -> ApiResult<Vec<PublicUserRow>> {
    Ok(blocks::table
        .inner_join(users::table.on(users::id.eq(blocks::blocked_id)))
        .filter(blocks::blocker_id.eq(blocker))
        .order(users::username_key)
        .select(PublicUserRow::as_select())
        .load(conn)?)
}
