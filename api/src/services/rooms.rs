//! Rooms: private rooms (one per pair of friends), groups with invites and leaving, the room
//! list with last message and unread counts, and the room event log.

use std::collections::{HashMap, HashSet};

use actix_web::web;
use diesel::prelude::*;

use crate::db::models::{Message, NewRoom, Room};
use crate::db::schema::{messages, room_events, room_members, rooms, users};
use crate::db::{self, DbConn, write_tx, write_tx_retrying_conflicts};
use crate::dto::{MessageView, PublicUserRow, RoomKind, RoomView, UserPublic, utc};
use crate::error::{ApiError, ApiResult};
use crate::realtime::fill_online;
use crate::realtime::protocol::{ServerFrame, encode};
use crate::services::contacts::{are_friends, blocked_between};
use crate::services::messages::{lock_room, member_ids, room_for_member};
use crate::state::AppState;

type State = web::Data<AppState>;

/// Most members of a group.
pub const GROUP_MAX_MEMBERS: usize = 256;
/// Groups one account may own at once: creating rooms is cheap, storing them is not.
pub const GROUPS_OWNED_MAX: i64 = 100;
/// Longest group name, in characters.
pub const GROUP_NAME_MAX_CHARS: usize = 100;

/// Appends to the room event log.
fn log_event(conn: &mut DbConn, room_id: i64, actor: Option<i64>, kind: &str, subject: Option<i64>) -> ApiResult<()> {
    diesel::insert_into(room_events::table)
        .values((
            room_events::room_id.eq(room_id),
            room_events::actor_id.eq(actor),
            room_events::kind.eq(kind),
            room_events::subject_id.eq(subject),
            room_events::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds a member, who starts having read everything before joining: earlier history is there
/// to scroll through, not to count as unread.
fn add_member(conn: &mut DbConn, room_id: i64, user_id: i64, role: &str, actor: Option<i64>) -> ApiResult<()> {
    let last_seq: i64 = rooms::table.find(room_id).select(rooms::last_seq).first(conn)?;
    diesel::insert_into(room_members::table)
        .values((
            room_members::room_id.eq(room_id),
            room_members::user_id.eq(user_id),
            room_members::role.eq(role),
            room_members::last_read_seq.eq(last_seq),
            room_members::joined_at.eq(db::now()),
        ))
        .execute(conn)?;
    log_event(conn, room_id, actor, "member_added", Some(user_id))
}

fn active_user_exists(conn: &mut DbConn, id: i64) -> ApiResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(users::table.filter(users::id.eq(id)).filter(users::is_active.eq(true)))).get_result(conn)?)
}

/// Checks that `actor` may bring `target` into a room: an active user, a friend, no block.
fn check_addable(conn: &mut DbConn, actor: i64, target: i64) -> ApiResult<()> {
    if !active_user_exists(conn, target)? {
        return Err(ApiError::NotFound(format!("user {target} not found")));
    }
    if blocked_between(conn, actor, target)? {
        return Err(ApiError::Forbidden(format!("you cannot add user {target}")));
    }
    if !are_friends(conn, actor, target)? {
        return Err(ApiError::Forbidden(format!("you can only add friends (user {target} is not your friend)")));
    }
    Ok(())
}

/// Each member's view of rooms: members, last message, unread count and read receipt, for
/// `viewers` (every member when `None`). Online flags are left false; see [`fill_online`].
fn views(conn: &mut DbConn, room_list: &[Room], viewers: Option<i64>) -> ApiResult<Vec<(i64, RoomView)>> {
    let ids: Vec<i64> = room_list.iter().map(|r| r.id).collect();
    let member_rows: Vec<(i64, i64, PublicUserRow)> = room_members::table
        .inner_join(users::table)
        .filter(room_members::room_id.eq_any(&ids))
        .order((room_members::joined_at, room_members::user_id))
        .select((room_members::room_id, room_members::last_read_seq, PublicUserRow::as_select()))
        .load(conn)?;
    let last_messages: Vec<Message> = messages::table
        .inner_join(rooms::table.on(rooms::id.eq(messages::room_id).and(rooms::last_seq.eq(messages::seq))))
        .filter(messages::room_id.eq_any(&ids))
        .select(Message::as_select())
        .load(conn)?;
    let senders = PublicUserRow::load_many(conn, &last_messages.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
    let unread_query = messages::table
        .inner_join(
            room_members::table.on(room_members::room_id
                .eq(messages::room_id)
                .and(messages::seq.gt(room_members::last_read_seq))
                .and(messages::sender_id.ne(room_members::user_id))),
        )
        .filter(room_members::room_id.eq_any(&ids))
        .group_by((room_members::room_id, room_members::user_id))
        .select((room_members::room_id, room_members::user_id, diesel::dsl::count_star()));
    let counts: Vec<(i64, i64, i64)> = match viewers {
        Some(viewer) => unread_query.filter(room_members::user_id.eq(viewer)).load(conn)?,
        None => unread_query.load(conn)?,
    };
    let unread: HashMap<(i64, i64), i64> = counts.into_iter().map(|(r, u, n)| ((r, u), n)).collect();

    let mut members_of: HashMap<i64, Vec<(i64, PublicUserRow)>> = HashMap::new();
    for (room_id, last_read, row) in member_rows {
        members_of.entry(room_id).or_default().push((last_read, row));
    }
    let mut last_of: HashMap<i64, MessageView> = HashMap::new();
    for message in last_messages {
        if let Some(sender) = senders.get(&message.sender_id) {
            last_of.insert(message.room_id, MessageView::new(message, UserPublic::new(sender.clone(), false)));
        }
    }
    let mut result = Vec::new();
    for room in room_list {
        let members = members_of.remove(&room.id).unwrap_or_default();
        let public: Vec<UserPublic> = members.iter().map(|(_, row)| UserPublic::new(row.clone(), false)).collect();
        let kind = RoomKind::parse(&room.kind);
        for (last_read, viewer) in &members {
            if viewers.is_some_and(|v| v != viewer.id) {
                continue;
            }
            let name = match kind {
                RoomKind::Group => room.name.clone(),
                RoomKind::Private => public.iter().find(|m| m.id != viewer.id).map(|m| m.username.clone()).unwrap_or_default(),
            };
            result.push((
                viewer.id,
                RoomView {
                    id: room.id,
                    kind,
                    name,
                    owner_id: room.owner_id,
                    members: public.clone(),
                    last_message: last_of.get(&room.id).cloned(),
                    unread_count: unread.get(&(room.id, viewer.id)).copied().unwrap_or(0),
                    last_read_seq: *last_read,
                    created_at: utc(room.created_at),
                },
            ));
        }
    }
    Ok(result)
}

fn load_room(conn: &mut DbConn, room_id: i64) -> ApiResult<Room> {
    rooms::table.find(room_id).select(Room::as_select()).first(conn).optional()?.ok_or_else(|| ApiError::NotFound("room not found".into()))
}

/// `viewer`'s view of one room.
fn view_for(conn: &mut DbConn, room: &Room, viewer: i64) -> ApiResult<RoomView> {
    views(conn, std::slice::from_ref(room), Some(viewer))?
        .pop()
        .map(|(_, view)| view)
        .ok_or_else(|| ApiError::Forbidden("you are not a member of this room".into()))
}

/// Sends every member its own `room` frame (presence filled in).
async fn announce_room(state: &State, room_id: i64) -> ApiResult<()> {
    let mut member_views = state
        .db
        .run(move |conn| {
            let room = load_room(conn, room_id)?;
            views(conn, std::slice::from_ref(&room), None)
        })
        .await?;
    fill_online(&state.realtime.registry, member_views.iter_mut().flat_map(|(_, v)| room_users(v)));
    let frames = member_views.iter().map(|(user, view)| (*user, encode(&ServerFrame::Room { room: view }))).collect();
    state.realtime.registry.to_each(frames);
    Ok(())
}

/// Every `UserPublic` inside a room view.
pub fn room_users(view: &mut RoomView) -> impl Iterator<Item = &mut UserPublic> {
    view.members.iter_mut().chain(view.last_message.as_mut().map(|m| &mut m.sender))
}

fn with_presence(state: &State, mut view: RoomView) -> RoomView {
    fill_online(&state.realtime.registry, room_users(&mut view));
    view
}

/// Opens the private room of `caller` and `other` (friends only, no block), creating it on
/// first use. Returns the room and whether it was created.
pub async fn open_private(state: &State, caller: i64, other: i64) -> ApiResult<(RoomView, bool)> {
    if caller == other {
        return Err(ApiError::invalid_field("user2_id", "you cannot open a private chat with yourself"));
    }
    let (view, created, room_id) = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 3, |conn| {
                if !active_user_exists(conn, other)? {
                    return Err(ApiError::NotFound("user not found".into()));
                }
                if blocked_between(conn, caller, other)? {
                    return Err(ApiError::Forbidden("you cannot chat with this user".into()));
                }
                if !are_friends(conn, caller, other)? {
                    return Err(ApiError::Forbidden("private chats are for friends".into()));
                }
                let key = format!("{}:{}", caller.min(other), caller.max(other));
                let existing: Option<Room> =
                    rooms::table.filter(rooms::private_key.eq(&key)).select(Room::as_select()).first(conn).optional()?;
                if let Some(room) = existing {
                    return Ok((view_for(conn, &room, caller)?, false, room.id));
                }
                let now = db::now();
                let room_id: i64 = diesel::insert_into(rooms::table)
                    .values(NewRoom {
                        kind: RoomKind::Private.as_str(),
                        name: "",
                        owner_id: None,
                        private_key: Some(&key),
                        last_seq: 0,
                        last_activity_at: now,
                        created_at: now,
                    })
                    .returning(rooms::id)
                    .get_result(conn)?;
                log_event(conn, room_id, Some(caller), "created", None)?;
                add_member(conn, room_id, caller, "member", Some(caller))?;
                add_member(conn, room_id, other, "member", Some(caller))?;
                let room = load_room(conn, room_id)?;
                Ok((view_for(conn, &room, caller)?, true, room_id))
            })
        })
        .await?;
    if created {
        announce_room(state, room_id).await?;
    }
    Ok((with_presence(state, view), created))
}

/// Creates a group owned by `caller` with `member_ids` (friends of the caller) in it.
pub async fn create_group(state: &State, caller: i64, name: String, member_ids: Vec<i64>) -> ApiResult<RoomView> {
    if member_ids.len() > GROUP_MAX_MEMBERS * 4 {
        return Err(ApiError::invalid_field("member_ids", format!("a group has at most {GROUP_MAX_MEMBERS} members")));
    }
    let mut seen = HashSet::new();
    let unique: Vec<i64> = member_ids.into_iter().filter(|id| *id != caller && seen.insert(*id)).collect();
    if unique.len() + 1 > GROUP_MAX_MEMBERS {
        return Err(ApiError::invalid_field("member_ids", format!("a group has at most {GROUP_MAX_MEMBERS} members")));
    }
    let (view, room_id) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let owned: i64 = rooms::table
                    .filter(rooms::owner_id.eq(caller))
                    .filter(rooms::kind.eq(RoomKind::Group.as_str()))
                    .count()
                    .get_result(conn)?;
                if owned >= GROUPS_OWNED_MAX {
                    return Err(ApiError::Conflict(format!(
                        "you own {owned} groups, the most one account may own: leave one (ownership passes on) first"
                    )));
                }
                for member in &unique {
                    check_addable(conn, caller, *member)?;
                }
                let now = db::now();
                let room_id: i64 = diesel::insert_into(rooms::table)
                    .values(NewRoom {
                        kind: RoomKind::Group.as_str(),
                        name: &name,
                        owner_id: Some(caller),
                        private_key: None,
                        last_seq: 0,
                        last_activity_at: now,
                        created_at: now,
                    })
                    .returning(rooms::id)
                    .get_result(conn)?;
                log_event(conn, room_id, Some(caller), "created", None)?;
                add_member(conn, room_id, caller, "owner", Some(caller))?;
                for member in &unique {
                    add_member(conn, room_id, *member, "member", Some(caller))?;
                }
                let room = load_room(conn, room_id)?;
                Ok((view_for(conn, &room, caller)?, room_id))
            })
        })
        .await?;
    announce_room(state, room_id).await?;
    Ok(with_presence(state, view))
}

/// A member of a group adds a friend to it.
pub async fn invite(state: &State, caller: i64, group_id: i64, user_id: i64) -> ApiResult<RoomView> {
    let view = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 2, |conn| {
                lock_room(conn, group_id)?;
                let room = room_for_member(conn, group_id, caller)?;
                if RoomKind::parse(&room.kind) != RoomKind::Group {
                    return Err(ApiError::invalid_field("group_id", "only groups take invitations"));
                }
                let members = member_ids(conn, group_id)?;
                if members.contains(&user_id) {
                    return Err(ApiError::Conflict("this user is already a member".into()));
                }
                if members.len() >= GROUP_MAX_MEMBERS {
                    return Err(ApiError::Conflict(format!("the group is full ({GROUP_MAX_MEMBERS} members)")));
                }
                check_addable(conn, caller, user_id)?;
                add_member(conn, group_id, user_id, "member", Some(caller))?;
                view_for(conn, &room, caller)
            })
        })
        .await?;
    announce_room(state, group_id).await?;
    Ok(with_presence(state, view))
}

/// The caller leaves a group. An owner who leaves hands the group to the longest-standing
/// member. Private rooms cannot be left.
pub async fn leave(state: &State, caller: i64, room_id: i64) -> ApiResult<()> {
    let remaining = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                lock_room(conn, room_id)?;
                let room = room_for_member(conn, room_id, caller)?;
                if RoomKind::parse(&room.kind) == RoomKind::Private {
                    return Err(ApiError::Conflict("private chats cannot be left".into()));
                }
                diesel::delete(room_members::table.find((room_id, caller))).execute(conn)?;
                log_event(conn, room_id, Some(caller), "member_left", Some(caller))?;
                if room.owner_id == Some(caller) {
                    let heir: Option<i64> = room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .order((room_members::joined_at, room_members::user_id))
                        .select(room_members::user_id)
                        .first(conn)
                        .optional()?;
                    diesel::update(rooms::table.find(room_id)).set(rooms::owner_id.eq(heir)).execute(conn)?;
                    if let Some(heir) = heir {
                        diesel::update(room_members::table.find((room_id, heir))).set(room_members::role.eq("owner")).execute(conn)?;
                        log_event(conn, room_id, Some(caller), "owner_changed", Some(heir))?;
                    }
                }
                member_ids(conn, room_id)
            })
        })
        .await?;
    state.realtime.registry.to_users(vec![caller], encode(&ServerFrame::RoomLeft { room_id }), None);
    if !remaining.is_empty() {
        announce_room(state, room_id).await?;
    }
    Ok(())
}

/// The caller's rooms, newest activity first.
pub async fn list(state: &State, caller: i64) -> ApiResult<Vec<RoomView>> {
    let mut list: Vec<RoomView> = state
        .db
        .run(move |conn| {
            let room_list: Vec<Room> = rooms::table
                .inner_join(room_members::table)
                .filter(room_members::user_id.eq(caller))
                .order((rooms::last_activity_at.desc(), rooms::id.desc()))
                .select(Room::as_select())
                .load(conn)?;
            Ok(views(conn, &room_list, Some(caller))?.into_iter().map(|(_, view)| view).collect())
        })
        .await?;
    fill_online(&state.realtime.registry, list.iter_mut().flat_map(room_users));
    Ok(list)
}

/// The members of a room the caller belongs to, for typing notices; in a private room, no
/// one across a block.
pub async fn typing_audience(state: &State, caller: i64, room_id: i64) -> ApiResult<Vec<i64>> {
    state
        .db
        .run(move |conn| {
            let room = room_for_member(conn, room_id, caller)?;
            let members = member_ids(conn, room_id)?;
            if RoomKind::parse(&room.kind) == RoomKind::Private {
                for other in members.iter().filter(|m| **m != caller) {
                    if blocked_between(conn, caller, *other)? {
                        return Err(ApiError::Forbidden("you cannot message this user".into()));
                    }
                }
            }
            Ok(members)
        })
        .await
}

/// Rooms `user` belongs to, among `room_ids`.
pub fn memberships(conn: &mut DbConn, user: i64, room_ids: &[i64]) -> ApiResult<HashSet<i64>> {
    Ok(room_members::table
        .filter(room_members::user_id.eq(user))
        .filter(room_members::room_id.eq_any(room_ids))
        .select(room_members::room_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}
