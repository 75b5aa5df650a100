//! Rooms: private rooms (one per pair of friends), groups with invites and leaving, the room
//! list with last message and unread counts, and the room event log.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::db::models::{Message, NewRoom, PublicUserRow, Room};
use crate::db::schema::{messages, room_events, room_members, rooms, users};
use crate::db::{self, DbConn, write_tx, write_tx_retrying_conflicts};
use crate::domain::{GroupName, RoomKind};
use crate::dto::{MessageView, RoomView, UserPublic, utc};
use crate::error::{ApiError, ApiResult, Reason};
use crate::ports::DomainEvent;
use crate::services::access::{self, RoomAct};
use crate::services::presence::fill_online;
use crate::state::State;

/// Most members of a group.
pub const GROUP_MAX_MEMBERS: usize = 256;
/// Groups one account may own at once: creating rooms is cheap, storing them is not.
pub const GROUPS_OWNED_MAX: i64 = 100;

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
    let senders = db::users::public_rows(conn, &last_messages.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
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
    let nobody_online = HashSet::new();
    let last_of: HashMap<i64, MessageView> = last_messages
        .into_iter()
        .filter_map(|message| MessageView::assemble(message, &senders, &nobody_online))
        .map(|view| (view.room_id, view))
        .collect();
    let mut result = Vec::new();
    for room in room_list {
        let members = members_of.remove(&room.id).unwrap_or_default();
        let public: Vec<UserPublic> = members.iter().map(|(_, row)| UserPublic::new(row.clone(), false)).collect();
        for (last_read, viewer) in &members {
            if viewers.is_some_and(|v| v != viewer.id) {
                continue;
            }
            let name = match room.kind {
                RoomKind::Group => room.name.clone(),
                RoomKind::Private => public.iter().find(|m| m.id != viewer.id).map(|m| m.username.clone()).unwrap_or_default(),
            };
            result.push((
                viewer.id,
                RoomView {
                    id: room.id,
                    kind: room.kind,
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
        .ok_or_else(|| ApiError::forbidden(Reason::NotMember, "you are not a member of this room"))
}

/// Tells every member of the room (on every node) how the room now looks to them.
async fn announce_room(state: &State, room_id: i64) -> ApiResult<()> {
    let views = state
        .db
        .run(move |conn| {
            let room = load_room(conn, room_id)?;
            views(conn, std::slice::from_ref(&room), None)
        })
        .await?;
    state.live.announce(DomainEvent::RoomChanged { views });
    Ok(())
}

fn with_presence(state: &State, mut view: RoomView) -> RoomView {
    fill_online(state, view.users_mut());
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
                access::may_open_private(conn, caller, other)?;
                let key = format!("{}:{}", caller.min(other), caller.max(other));
                let existing: Option<Room> =
                    rooms::table.filter(rooms::private_key.eq(&key)).select(Room::as_select()).first(conn).optional()?;
                if let Some(room) = existing {
                    return Ok((view_for(conn, &room, caller)?, false, room.id));
                }
                let now = db::now();
                let room_id: i64 = diesel::insert_into(rooms::table)
                    .values(NewRoom {
                        kind: RoomKind::Private,
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
pub async fn create_group(state: &State, caller: i64, name: GroupName, member_ids: Vec<i64>) -> ApiResult<RoomView> {
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
                    access::may_add(conn, caller, *member)?;
                }
                let now = db::now();
                let room_id: i64 = diesel::insert_into(rooms::table)
                    .values(NewRoom {
                        kind: RoomKind::Group,
                        name: name.as_str(),
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
                db::rooms::lock(conn, group_id)?;
                let room = access::readable_room(conn, group_id, caller)?;
                if room.kind != RoomKind::Group {
                    return Err(ApiError::invalid_field("group_id", "only groups take invitations"));
                }
                let members = db::members::ids(conn, group_id)?;
                if members.contains(&user_id) {
                    return Err(ApiError::Conflict("this user is already a member".into()));
                }
                if members.len() >= GROUP_MAX_MEMBERS {
                    return Err(ApiError::Conflict(format!("the group is full ({GROUP_MAX_MEMBERS} members)")));
                }
                access::may_add(conn, caller, user_id)?;
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
                db::rooms::lock(conn, room_id)?;
                let room = access::readable_room(conn, room_id, caller)?;
                if room.kind == RoomKind::Private {
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
                db::members::ids(conn, room_id)
            })
        })
        .await?;
    state.live.announce(DomainEvent::MemberLeft { room_id, user_id: caller });
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
    fill_online(state, list.iter_mut().flat_map(RoomView::users_mut));
    Ok(list)
}

/// The members of a room who hear that the caller is typing (refused as a send would be).
pub async fn typing_audience(state: &State, caller: i64, room_id: i64) -> ApiResult<Vec<i64>> {
    state.db.run(move |conn| Ok(access::room_for(conn, room_id, caller, RoomAct::Typing)?.members.to_vec())).await
}
