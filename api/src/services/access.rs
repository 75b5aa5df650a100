//! The one access policy: may this user do this in this room, or with this person? REST and
//! WebSocket ask here alike, and every refusal carries a typed [`Reason`]. Roles, bans, public
//! rooms and direct-message policy belong here as they arrive.

use std::collections::HashSet;
use std::sync::Arc;

use crate::db::models::Room;
use crate::db::{self, DbConn};
use crate::domain::RoomKind;
use crate::error::{ApiError, ApiResult, Reason};
use crate::ids::{RoomId, UserId};

/// What one may do inside a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAct {
    /// Read history, sync, open the room's Channels socket.
    Read,
    /// Send a message.
    Send,
    /// Say one is typing.
    Typing,
    /// Move one's read receipt.
    MarkRead,
    /// Bring someone into the room (whom: [`may_add`]).
    Invite,
    /// Leave the room.
    Leave,
}

/// What the policy needs to know of a room, read once (a batch of sends asks many times).
#[derive(Debug, Clone)]
pub struct RoomFacts {
    pub id: RoomId,
    pub kind: RoomKind,
    pub members: Arc<[UserId]>,
}

impl RoomFacts {
    /// The facts of `room_id`, or `None` when there is no such room.
    pub fn load(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Option<RoomFacts>> {
        let Some(kind) = db::rooms::kind(conn, room_id)? else { return Ok(None) };
        Ok(Some(RoomFacts { id: room_id, kind, members: db::members::ids(conn, room_id)?.into() }))
    }

    pub fn is_member(&self, user: UserId) -> bool {
        self.members.contains(&user)
    }
}

/// A refusal: its reason and what to tell the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: &'static str,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::forbidden(refusal.reason, refusal.message)
    }
}

const NOT_MEMBER: Refusal = Refusal { reason: Reason::NotMember, message: "you are not a member of this room" };
const BLOCKED_IN_PRIVATE: Refusal = Refusal { reason: Reason::Blocked, message: "you cannot message this user" };

/// Why `user` may not do `act` in the room, if anything stops them.
pub fn refusal(conn: &mut DbConn, room: &RoomFacts, user: UserId, act: RoomAct) -> ApiResult<Option<Refusal>> {
    if !room.is_member(user) {
        return Ok(Some(NOT_MEMBER));
    }
    match act {
        RoomAct::Read | RoomAct::MarkRead | RoomAct::Invite | RoomAct::Leave => Ok(None),
        // In a private room, a block in either direction silences both sides.
        RoomAct::Send | RoomAct::Typing if room.kind == RoomKind::Private => {
            for other in room.members.iter().copied().filter(|m| *m != user) {
                if db::contacts::blocked_between(conn, user, other)? {
                    return Ok(Some(BLOCKED_IN_PRIVATE));
                }
            }
            Ok(None)
        }
        RoomAct::Send | RoomAct::Typing => Ok(None),
    }
}

/// `Ok` when `user` may do `act` in the room; 403 with the reason otherwise.
pub fn require(conn: &mut DbConn, room: &RoomFacts, user: UserId, act: RoomAct) -> ApiResult<()> {
    match refusal(conn, room, user, act)? {
        Some(refusal) => Err(refusal.into()),
        None => Ok(()),
    }
}

/// The room's row, if `user` may do `act` in it: 404 when there is no such room, 403 with the
/// reason otherwise (400 for an invitation into a private room).
pub fn room_for(conn: &mut DbConn, room_id: RoomId, user: UserId, act: RoomAct) -> ApiResult<Room> {
    let room = db::rooms::find(conn, room_id)?.ok_or_else(|| ApiError::NotFound("room not found".into()))?;
    match act {
        // Membership is all these ask: one point look-up, not the member list.
        RoomAct::Read | RoomAct::MarkRead | RoomAct::Leave | RoomAct::Invite => {
            if !db::members::is_member(conn, room_id, user)? {
                return Err(NOT_MEMBER.into());
            }
        }
        RoomAct::Send | RoomAct::Typing => {
            let facts = RoomFacts { id: room.id, kind: room.kind, members: db::members::ids(conn, room_id)?.into() };
            require(conn, &facts, user, act)?;
        }
    }
    if act == RoomAct::Invite && room.kind != RoomKind::Group {
        return Err(ApiError::invalid_field("group_id", "only groups take invitations"));
    }
    Ok(room)
}

/// Which of `room_ids` `user` may read (a `sync` names many rooms at once).
pub fn readable_among(conn: &mut DbConn, user: UserId, room_ids: &[RoomId]) -> ApiResult<HashSet<RoomId>> {
    db::members::rooms_among(conn, user, room_ids)
}

/// The refusal of a room `user` may not read, for a request that named several.
pub fn not_member_of(room_id: RoomId) -> ApiError {
    ApiError::forbidden(NOT_MEMBER.reason, format!("you are not a member of room {room_id}"))
}

/// The room's facts, if `user` may do `act` in it: 404 when there is no such room, 403 with the
/// reason otherwise.
pub fn facts_for(conn: &mut DbConn, room_id: RoomId, user: UserId, act: RoomAct) -> ApiResult<RoomFacts> {
    let room = RoomFacts::load(conn, room_id)?.ok_or_else(|| ApiError::NotFound("room not found".into()))?;
    require(conn, &room, user, act)?;
    Ok(room)
}

/// Who may see `user`'s read receipt in the room: every member, but in a private room no one
/// across a block.
pub fn receipt_audience(conn: &mut DbConn, room: &RoomFacts, user: UserId) -> ApiResult<Vec<UserId>> {
    if room.kind != RoomKind::Private {
        return Ok(room.members.to_vec());
    }
    let mut audience = Vec::new();
    for member in room.members.iter().copied() {
        if member == user || !db::contacts::blocked_between(conn, user, member)? {
            audience.push(member);
        }
    }
    Ok(audience)
}

/// Whether `actor` may bring `target` into a room (a group, or a private room with them): an
/// active user (404 otherwise), no block between them, and friends.
pub fn may_add(conn: &mut DbConn, actor: UserId, target: UserId) -> ApiResult<()> {
    if !db::users::active_exists(conn, target)? {
        return Err(ApiError::NotFound(format!("user {target} not found")));
    }
    if db::contacts::blocked_between(conn, actor, target)? {
        return Err(ApiError::forbidden(Reason::Blocked, format!("you cannot add user {target}")));
    }
    if !db::contacts::are_friends(conn, actor, target)? {
        return Err(ApiError::forbidden(Reason::NotFriends, format!("you can only add friends (user {target} is not your friend)")));
    }
    Ok(())
}

/// Whether `caller` may open a private room with `other`: the same rule as [`may_add`], told
/// in the words of a private chat.
pub fn may_open_private(conn: &mut DbConn, caller: UserId, other: UserId) -> ApiResult<()> {
    if !db::users::active_exists(conn, other)? {
        return Err(ApiError::NotFound("user not found".into()));
    }
    if db::contacts::blocked_between(conn, caller, other)? {
        return Err(ApiError::forbidden(Reason::Blocked, "you cannot chat with this user"));
    }
    if !db::contacts::are_friends(conn, caller, other)? {
        return Err(ApiError::forbidden(Reason::NotFriends, "private chats are for friends"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::ids::{RoomId as R, UserId as U};

    /// ann (1) and bob (2) share private room 1 and group 2 with cat (3); bob blocked ann; dan (4)
    /// is in neither.
    fn world() -> (tempfile::TempDir, db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = db::Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap();
        let mut conn = db.get().unwrap();
        conn.batch_execute(
            "INSERT INTO users (username, username_key, email, password_hash, date_joined) VALUES
                 ('ann', 'ann', 'ann@example.com', 'x', '2026-01-01 00:00:00'),
                 ('bob', 'bob', 'bob@example.com', 'x', '2026-01-01 00:00:00'),
                 ('cat', 'cat', 'cat@example.com', 'x', '2026-01-01 00:00:00'),
                 ('dan', 'dan', 'dan@example.com', 'x', '2026-01-01 00:00:00');
             INSERT INTO rooms (kind, private_key, last_activity_at, created_at) VALUES
                 ('private', '1:2', '2026-01-01 00:00:00', '2026-01-01 00:00:00'),
                 ('group', NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
             INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES
                 (1, 1, 'member', '2026-01-01 00:00:00'), (1, 2, 'member', '2026-01-01 00:00:00'),
                 (2, 1, 'owner', '2026-01-01 00:00:00'), (2, 2, 'member', '2026-01-01 00:00:00'),
                 (2, 3, 'member', '2026-01-01 00:00:00');
             INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (2, 1, '2026-01-01 00:00:00');",
        )
        .unwrap();
        (dir, db)
    }

    fn reason(result: ApiResult<impl std::fmt::Debug>) -> Option<Reason> {
        match result {
            Err(ApiError::Forbidden { reason, .. }) => Some(reason),
            Ok(_) => None,
            Err(other) => panic!("expected a refusal or success, got {other:?}"),
        }
    }

    #[test]
    fn a_block_silences_a_private_room_both_ways_but_leaves_it_readable() {
        let (_dir, db) = world();
        let mut conn = db.get().unwrap();
        for (user, act) in [(1, RoomAct::Send), (2, RoomAct::Send), (1, RoomAct::Typing), (2, RoomAct::Typing)] {
            assert_eq!(reason(room_for(&mut conn, R(1), U(user), act)), Some(Reason::Blocked), "user {user} {act:?}");
        }
        for act in [RoomAct::Read, RoomAct::MarkRead] {
            assert_eq!(reason(room_for(&mut conn, R(1), U(1), act)), None, "{act:?} stays allowed");
        }
        let private = RoomFacts::load(&mut conn, R(1)).unwrap().unwrap();
        assert_eq!(receipt_audience(&mut conn, &private, U(1)).unwrap(), [U(1)], "no receipt crosses the block");
    }

    #[test]
    fn in_a_group_a_block_does_not_silence_anyone_and_strangers_are_not_members() {
        let (_dir, db) = world();
        let mut conn = db.get().unwrap();
        assert_eq!(reason(room_for(&mut conn, R(2), U(1), RoomAct::Send)), None);
        assert_eq!(reason(facts_for(&mut conn, R(2), U(2), RoomAct::Typing)), None);
        for act in [RoomAct::Read, RoomAct::Send, RoomAct::Typing, RoomAct::MarkRead, RoomAct::Invite, RoomAct::Leave] {
            assert_eq!(reason(room_for(&mut conn, R(2), U(4), act)), Some(Reason::NotMember), "{act:?}");
        }
        let group = RoomFacts::load(&mut conn, R(2)).unwrap().unwrap();
        assert_eq!(receipt_audience(&mut conn, &group, U(1)).unwrap(), [U(1), U(2), U(3)]);
        assert!(matches!(room_for(&mut conn, R(99), U(1), RoomAct::Read), Err(ApiError::NotFound(_))));
    }

    #[test]
    fn invitations_go_to_groups_and_bring_only_friends_across_no_block() {
        let (_dir, db) = world();
        let mut conn = db.get().unwrap();
        assert!(matches!(room_for(&mut conn, R(1), U(1), RoomAct::Invite), Err(ApiError::Validation { .. })), "not into a private room");
        assert!(room_for(&mut conn, R(2), U(3), RoomAct::Invite).is_ok(), "any member invites");
        assert_eq!(reason(may_add(&mut conn, U(1), U(2))), Some(Reason::Blocked));
        assert_eq!(reason(may_add(&mut conn, U(1), U(4))), Some(Reason::NotFriends));
        assert!(matches!(may_add(&mut conn, U(1), U(99)), Err(ApiError::NotFound(_))));
        conn.batch_execute(
            "INSERT INTO friendships (user_id, friend_id, created_at) VALUES (1, 4, '2026-01-01 00:00:00'), (4, 1, '2026-01-01 00:00:00')",
        )
        .unwrap();
        assert_eq!(reason(may_add(&mut conn, U(1), U(4))), None);
        assert_eq!(reason(may_open_private(&mut conn, U(4), U(1))), None);
        assert_eq!(reason(may_open_private(&mut conn, U(2), U(1))), Some(Reason::Blocked));
    }
}
