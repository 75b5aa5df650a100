//! Rooms: private rooms (one per pair of friends), groups with invites and leaving, the room
//! list with last message and unread counts, and the room event log.

use std::collections::{HashMap, HashSet};

use crate::db::models::{NewRoom, PublicUserRow, Room};
use crate::db::{self, DbConn, write_tx, write_tx_retrying_conflicts};
use crate::domain::{GroupName, MemberRole, RoomKind};
use crate::dto::{MessageView, RoomView, UserPublic, utc};
use crate::error::{ApiError, ApiResult, Reason};
use crate::ids::{RoomId, Seq, UserId};
use crate::ports::DomainEvent;
use crate::services::access::{self, RoomAct};
use crate::services::presence::fill_online_seen_by;
use crate::state::State;

/// Most members of a group.
pub const GROUP_MAX_MEMBERS: usize = 256;
/// Groups one account may own at once: creating rooms is cheap, storing them is not.
pub const GROUPS_OWNED_MAX: i64 = 100;

/// Adds a member and logs who added them.
fn add_member(conn: &mut DbConn, room_id: RoomId, user_id: UserId, role: MemberRole, actor: UserId) -> ApiResult<()> {
    db::members::add(conn, room_id, user_id, role)?;
    db::room_events::append(conn, room_id, Some(actor), "member_added", Some(user_id))
}

/// Each member's view of rooms: members, last message, unread count and read receipt, for
/// `viewers` (every member when `None`). Online flags are left false; see [`fill_online`].
fn views(conn: &mut DbConn, room_list: &[Room], viewers: Option<UserId>) -> ApiResult<Vec<(UserId, RoomView)>> {
    let ids: Vec<RoomId> = room_list.iter().map(|r| r.id).collect();
    let member_rows = db::members::with_receipts(conn, &ids)?;
    let last_messages = db::messages::last_of_rooms(conn, &ids)?;
    let senders = db::users::public_rows(conn, &last_messages.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
    let unread = db::members::unread_counts(conn, &ids, viewers)?;

    let mut members_of: HashMap<RoomId, Vec<(Seq, PublicUserRow)>> = HashMap::new();
    for (room_id, last_read, row) in member_rows {
        members_of.entry(room_id).or_default().push((last_read, row));
    }
    let nobody_online = HashSet::new();
    let last_of: HashMap<RoomId, MessageView> = last_messages
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

fn load_room(conn: &mut DbConn, room_id: RoomId) -> ApiResult<Room> {
    db::rooms::find(conn, room_id)?.ok_or_else(|| ApiError::NotFound("room not found".into()))
}

/// `viewer`'s view of one room.
fn view_for(conn: &mut DbConn, room: &Room, viewer: UserId) -> ApiResult<RoomView> {
    views(conn, std::slice::from_ref(room), Some(viewer))?
        .pop()
        .map(|(_, view)| view)
        .ok_or_else(|| ApiError::forbidden(Reason::NotMember, "you are not a member of this room"))
}

/// Tells every member of the room (on every node) how the room now looks to them.
async fn announce_room(state: &State, room_id: RoomId) -> ApiResult<()> {
    let (mut views, friendships) = state
        .db
        .run(move |conn| {
            let room = load_room(conn, room_id)?;
            let views = views(conn, std::slice::from_ref(&room), None)?;
            let shown: Vec<UserId> = shown_users(views.iter().map(|(_, view)| view));
            Ok((views, db::contacts::friendships_among(conn, &shown)?))
        })
        .await?;
    for (viewer, view) in &mut views {
        let friends: HashSet<UserId> = friendships.iter().filter(|(user, _)| user == viewer).map(|(_, friend)| *friend).collect();
        fill_online_seen_by(state, *viewer, &friends, view.users_mut());
    }
    state.live.announce(DomainEvent::RoomChanged { views });
    Ok(())
}

/// Every user the views show (members, last messages' senders), once.
fn shown_users<'a>(views: impl Iterator<Item = &'a RoomView>) -> Vec<UserId> {
    let mut ids: Vec<UserId> =
        views.flat_map(|view| view.members.iter().map(|m| m.id).chain(view.last_message.iter().map(|m| m.sender.id))).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Fills the online flags of `views` as `viewer` may see them (friends only).
async fn with_presence(state: &State, viewer: UserId, mut views: Vec<RoomView>) -> ApiResult<Vec<RoomView>> {
    let shown = shown_users(views.iter());
    let friends: HashSet<UserId> = state.db.run(move |conn| db::contacts::friends_among(conn, viewer, &shown)).await?.into_iter().collect();
    fill_online_seen_by(state, viewer, &friends, views.iter_mut().flat_map(RoomView::users_mut));
    Ok(views)
}

/// [`with_presence`] of one view.
async fn one_with_presence(state: &State, viewer: UserId, view: RoomView) -> ApiResult<RoomView> {
    Ok(with_presence(state, viewer, vec![view]).await?.pop().expect("one view in, one out"))
}

/// Opens the private room of `caller` and `other` (friends only, no block), creating it on
/// first use. Returns the room and whether it was created.
pub async fn open_private(state: &State, caller: UserId, other: UserId) -> ApiResult<(RoomView, bool)> {
    if caller == other {
        return Err(ApiError::invalid_field("user2_id", "you cannot open a private chat with yourself"));
    }
    let (view, created, room_id) = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 3, |conn| {
                access::may_open_private(conn, caller, other)?;
                let key = format!("{}:{}", caller.min(other), caller.max(other));
                if let Some(room) = db::rooms::find_private(conn, &key)? {
                    return Ok((view_for(conn, &room, caller)?, false, room.id));
                }
                let now = db::now();
                let room_id = db::rooms::create(
                    conn,
                    NewRoom {
                        kind: RoomKind::Private,
                        name: "",
                        owner_id: None,
                        private_key: Some(&key),
                        last_seq: Seq::ZERO,
                        last_activity_at: now,
                        created_at: now,
                    },
                )?;
                db::room_events::append(conn, room_id, Some(caller), "created", None)?;
                add_member(conn, room_id, caller, MemberRole::Member, caller)?;
                add_member(conn, room_id, other, MemberRole::Member, caller)?;
                let room = load_room(conn, room_id)?;
                Ok((view_for(conn, &room, caller)?, true, room_id))
            })
        })
        .await?;
    if created {
        announce_room(state, room_id).await?;
    }
    Ok((one_with_presence(state, caller, view).await?, created))
}

/// Creates a group owned by `caller` with `member_ids` (friends of the caller) in it.
pub async fn create_group(state: &State, caller: UserId, name: GroupName, member_ids: Vec<UserId>) -> ApiResult<RoomView> {
    if member_ids.len() > GROUP_MAX_MEMBERS * 4 {
        return Err(ApiError::invalid_field("member_ids", format!("a group has at most {GROUP_MAX_MEMBERS} members")));
    }
    let mut seen = HashSet::new();
    let unique: Vec<UserId> = member_ids.into_iter().filter(|id| *id != caller && seen.insert(*id)).collect();
    if unique.len() + 1 > GROUP_MAX_MEMBERS {
        return Err(ApiError::invalid_field("member_ids", format!("a group has at most {GROUP_MAX_MEMBERS} members")));
    }
    let (view, room_id) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let owned = db::rooms::groups_owned_by(conn, caller)?;
                if owned >= GROUPS_OWNED_MAX {
                    return Err(ApiError::Conflict(format!(
                        "you own {owned} groups, the most one account may own: leave one (ownership passes on) first"
                    )));
                }
                for member in &unique {
                    access::may_add(conn, caller, *member)?;
                }
                let now = db::now();
                let room_id = db::rooms::create(
                    conn,
                    NewRoom {
                        kind: RoomKind::Group,
                        name: name.as_str(),
                        owner_id: Some(caller),
                        private_key: None,
                        last_seq: Seq::ZERO,
                        last_activity_at: now,
                        created_at: now,
                    },
                )?;
                db::room_events::append(conn, room_id, Some(caller), "created", None)?;
                add_member(conn, room_id, caller, MemberRole::Owner, caller)?;
                for member in &unique {
                    add_member(conn, room_id, *member, MemberRole::Member, caller)?;
                }
                let room = load_room(conn, room_id)?;
                Ok((view_for(conn, &room, caller)?, room_id))
            })
        })
        .await?;
    announce_room(state, room_id).await?;
    one_with_presence(state, caller, view).await
}

/// A member of a group adds a friend to it.
pub async fn invite(state: &State, caller: UserId, group_id: RoomId, user_id: UserId) -> ApiResult<RoomView> {
    let view = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 2, |conn| {
                db::rooms::lock(conn, group_id)?;
                let room = access::room_for(conn, group_id, caller, RoomAct::Invite)?;
                let members = db::members::ids(conn, group_id)?;
                if members.contains(&user_id) {
                    return Err(ApiError::Conflict("this user is already a member".into()));
                }
                if members.len() >= GROUP_MAX_MEMBERS {
                    return Err(ApiError::Conflict(format!("the group is full ({GROUP_MAX_MEMBERS} members)")));
                }
                access::may_add(conn, caller, user_id)?;
                add_member(conn, group_id, user_id, MemberRole::Member, caller)?;
                view_for(conn, &room, caller)
            })
        })
        .await?;
    announce_room(state, group_id).await?;
    one_with_presence(state, caller, view).await
}

/// The caller leaves a group. An owner who leaves hands the group to the longest-standing
/// member. Private rooms cannot be left.
pub async fn leave(state: &State, caller: UserId, room_id: RoomId) -> ApiResult<()> {
    let remaining = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                db::rooms::lock(conn, room_id)?;
                let room = access::room_for(conn, room_id, caller, RoomAct::Leave)?;
                if room.kind == RoomKind::Private {
                    return Err(ApiError::Conflict("private chats cannot be left".into()));
                }
                db::members::remove(conn, room_id, caller)?;
                db::room_events::append(conn, room_id, Some(caller), "member_left", Some(caller))?;
                if room.owner_id == Some(caller) {
                    let heir = db::members::longest_standing(conn, room_id)?;
                    db::rooms::set_owner(conn, room_id, heir)?;
                    if let Some(heir) = heir {
                        db::members::set_role(conn, room_id, heir, MemberRole::Owner)?;
                        db::room_events::append(conn, room_id, Some(caller), "owner_changed", Some(heir))?;
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
pub async fn list(state: &State, caller: UserId) -> ApiResult<Vec<RoomView>> {
    let list: Vec<RoomView> = state
        .db
        .run(move |conn| {
            let room_list = db::rooms::of_member_newest_first(conn, caller)?;
            Ok(views(conn, &room_list, Some(caller))?.into_iter().map(|(_, view)| view).collect())
        })
        .await?;
    with_presence(state, caller, list).await
}

/// The members of a room who hear that the caller is typing (refused as a send would be).
pub async fn typing_audience(state: &State, caller: UserId, room_id: RoomId) -> ApiResult<Vec<UserId>> {
    state.db.run(move |conn| Ok(access::facts_for(conn, room_id, caller, RoomAct::Typing)?.members.to_vec())).await
}
