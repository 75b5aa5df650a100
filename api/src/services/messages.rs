//! Messages: storing a batch of sends in one transaction (membership, blocks, idempotency and
//! per-room `seq`), history pages, sync after a reconnect, and read receipts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;

use crate::db::models::{Message, NewMessage, Room};
use crate::db::schema::{messages, room_members, rooms};
use crate::db::{self, Cached, DbConn, write_tx};
use crate::dto::{PublicUserRow, RoomKind};
use crate::error::{ApiError, ApiResult};
use crate::on_backend;
use crate::services::contacts::blocked_between;

/// Longest message body, in characters.
pub const BODY_MAX_CHARS: usize = 4000;
/// Longest client id, in characters.
pub const CLIENT_ID_MAX_CHARS: usize = 64;
/// Most messages one `sync` sends per room; beyond it the client pages through history.
pub const SYNC_MAX_PER_ROOM: i64 = 500;
/// Most messages one `sync` sends in all.
pub const SYNC_MAX_TOTAL: i64 = 5000;

/// A message someone wants stored.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub room_id: i64,
    pub sender_id: i64,
    pub body: String,
    pub client_id: String,
}

/// Checks a body and client id against the contract's limits.
pub fn validate_send(body: &str, client_id: &str) -> ApiResult<()> {
    let length = body.chars().count();
    if body.trim().is_empty() {
        return Err(ApiError::invalid_field("body", "a message may not be blank"));
    }
    if length > BODY_MAX_CHARS {
        return Err(ApiError::PayloadTooLarge(format!("a message is at most {BODY_MAX_CHARS} characters long")));
    }
    if body.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(ApiError::invalid_field("body", "a message may not contain control characters"));
    }
    let id_length = client_id.chars().count();
    if id_length == 0 || id_length > CLIENT_ID_MAX_CHARS || client_id.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("client_id", format!("must be 1 to {CLIENT_ID_MAX_CHARS} printable characters")));
    }
    Ok(())
}

/// What happened to one request of a batch.
#[derive(Debug)]
pub enum Outcome {
    /// Newly stored.
    Stored(Message),
    /// Stored before (same room, sender and client id): the stored message.
    Duplicate(Message),
    Rejected(ApiError),
}

/// The result of storing a batch: an outcome per request, in request order, plus what fan-out
/// needs (members per room, read in the same transaction, and the senders' public rows).
#[derive(Debug)]
pub struct StoredBatch {
    pub outcomes: Vec<Outcome>,
    pub members: HashMap<i64, Arc<[i64]>>,
    pub senders: HashMap<i64, PublicUserRow>,
}

/// A room's kind and members, as one batch sees them.
struct RoomInfo {
    kind: RoomKind,
    members: Arc<[i64]>,
}

fn room_info(conn: &mut DbConn, room_id: i64) -> ApiResult<Option<RoomInfo>> {
    let kind: Option<String> = on_backend!(conn, c => rooms::table.find(room_id).select(rooms::kind).first(c).optional())?;
    let Some(kind) = kind else { return Ok(None) };
    Ok(Some(RoomInfo { kind: RoomKind::parse(&kind), members: member_ids(conn, room_id)?.into() }))
}

/// The user ids of a room's members.
pub fn member_ids(conn: &mut DbConn, room_id: i64) -> ApiResult<Vec<i64>> {
    Ok(on_backend!(conn, c => room_members::table.filter(room_members::room_id.eq(room_id)).select(room_members::user_id).load(c))?)
}

/// Why `sender` may not write in the room, if anything stops it.
fn refusal(conn: &mut DbConn, info: &RoomInfo, sender: i64) -> ApiResult<Option<ApiError>> {
    if !info.members.contains(&sender) {
        return Ok(Some(ApiError::Forbidden("you are not a member of this room".into())));
    }
    if info.kind == RoomKind::Private {
        for other in info.members.iter().copied().filter(|m| *m != sender) {
            if blocked_between(conn, sender, other)? {
                return Ok(Some(ApiError::Forbidden("you cannot message this user".into())));
            }
        }
    }
    Ok(None)
}

/// Stores every acceptable request of the batch in one transaction (group commit). Each room's
/// `seq`s are taken from `rooms.last_seq` inside the transaction, in request order, so they
/// are strictly increasing without gaps; on PostgreSQL the row lock orders concurrent writers.
pub fn store_batch(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<StoredBatch> {
    write_tx(conn, |conn| {
        lock_rooms(conn, requests)?;
        let now = db::now();
        let mut infos: HashMap<i64, Option<RoomInfo>> = HashMap::new();
        let mut refusals: HashMap<(i64, i64), Option<String>> = HashMap::new();
        let mut first_in_batch: HashMap<(i64, i64, &str), usize> = HashMap::new();
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(requests.len());
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut accepted: Vec<usize> = Vec::new();

        let stored_before = stored_before(conn, requests)?;

        for (index, request) in requests.iter().enumerate() {
            if !infos.contains_key(&request.room_id) {
                let info = room_info(conn, request.room_id)?;
                infos.insert(request.room_id, info);
            }
            let Some(Some(info)) = infos.get(&request.room_id) else {
                outcomes.push(Some(Outcome::Rejected(ApiError::NotFound("room not found".into()))));
                continue;
            };
            let key = (request.room_id, request.sender_id);
            if !refusals.contains_key(&key) {
                let refusal = refusal(conn, info, request.sender_id)?.map(|e| e.to_string());
                refusals.insert(key, refusal);
            }
            if let Some(Some(reason)) = refusals.get(&key) {
                outcomes.push(Some(Outcome::Rejected(ApiError::Forbidden(reason.clone()))));
                continue;
            }
            if let Some(first) = first_in_batch.get(&(request.room_id, request.sender_id, request.client_id.as_str())) {
                repeats.push((index, *first));
                outcomes.push(None);
                continue;
            }
            if let Some(stored) = stored_before.get(&(request.room_id, request.sender_id, request.client_id.clone())) {
                outcomes.push(Some(Outcome::Duplicate(stored.clone())));
                continue;
            }
            first_in_batch.insert((request.room_id, request.sender_id, request.client_id.as_str()), index);
            accepted.push(index);
            outcomes.push(None);
        }

        let mut per_room: Vec<(i64, i64)> = Vec::new();
        for index in &accepted {
            let room = requests[*index].room_id;
            match per_room.iter_mut().find(|(r, _)| *r == room) {
                Some((_, count)) => *count += 1,
                None => per_room.push((room, 1)),
            }
        }
        let mut next_seq: HashMap<i64, i64> = HashMap::new();
        for (room, count) in per_room {
            let bump = diesel::update(rooms::table.find(room))
                .set((rooms::last_seq.eq(rooms::last_seq + count), rooms::last_activity_at.eq(now)))
                .returning(rooms::last_seq);
            let last: i64 = on_backend!(conn, c => Cached(bump).get_result(c))?;
            next_seq.insert(room, last - count + 1);
        }
        let mut rows = Vec::with_capacity(accepted.len());
        for index in &accepted {
            let request = &requests[*index];
            let seq = next_seq.get_mut(&request.room_id).map(|s| {
                *s += 1;
                *s - 1
            });
            let seq = seq.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no seq for room {}", request.room_id)))?;
            rows.push(NewMessage {
                room_id: request.room_id,
                seq,
                sender_id: request.sender_id,
                body: &request.body,
                client_id: &request.client_id,
                created_at: now,
            });
        }
        let ids = insert_messages(conn, &rows)?;
        for (index, row) in accepted.into_iter().zip(&rows) {
            let request = &requests[index];
            let id = *ids
                .get(&(row.room_id, row.seq))
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no id returned for room {} seq {}", row.room_id, row.seq)))?;
            outcomes[index] = Some(Outcome::Stored(Message {
                id,
                room_id: request.room_id,
                seq: row.seq,
                sender_id: request.sender_id,
                body: request.body.clone(),
                client_id: request.client_id.clone(),
                created_at: now,
                edited_at: None,
                deleted: false,
            }));
        }
        for (index, first) in repeats {
            let original = match &outcomes[first] {
                Some(Outcome::Stored(message)) => message.clone(),
                _ => return Err(ApiError::internal(anyhow::anyhow!("repeat of an unstored send"))),
            };
            outcomes[index] = Some(Outcome::Duplicate(original));
        }

        let sender_ids: Vec<i64> = requests.iter().map(|r| r.sender_id).collect::<HashSet<_>>().into_iter().collect();
        let senders = PublicUserRow::load_many(conn, &sender_ids)?;
        let members = infos.into_iter().filter_map(|(room, info)| Some((room, info?.members))).collect();
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Rejected(ApiError::internal(anyhow::anyhow!("send left without outcome")))))
            .collect();
        Ok(StoredBatch { outcomes, members, senders })
    })
}

/// The sends of `requests` stored before (retries), by (room, sender, client id), read on the
/// unique `(room_id, sender_id, client_id)` index. SQLite runs in this process: a point look-up
/// per send reuses one prepared statement, where a list of client ids would be parsed anew for
/// every sender of every batch. PostgreSQL is a round trip away: one query per room, its senders
/// and client ids as two array parameters (`= ANY`), keeping only exact matches.
fn stored_before(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<HashMap<(i64, i64, String), Message>> {
    let key = |m: &Message| (m.room_id, m.sender_id, m.client_id.clone());
    let mut found = HashMap::new();
    match conn {
        DbConn::Sqlite(c) => {
            for request in requests {
                let message: Option<Message> = messages::table
                    .filter(messages::room_id.eq(request.room_id))
                    .filter(messages::sender_id.eq(request.sender_id))
                    .filter(messages::client_id.eq(&request.client_id))
                    .select(Message::as_select())
                    .first(c)
                    .optional()?;
                found.extend(message.map(|m| (key(&m), m)));
            }
        }
        DbConn::Pg(c) => {
            let mut by_room: HashMap<i64, (Vec<i64>, Vec<&str>)> = HashMap::new();
            for request in requests {
                let (senders, client_ids) = by_room.entry(request.room_id).or_default();
                senders.push(request.sender_id);
                client_ids.push(&request.client_id);
            }
            let wanted: HashSet<(i64, i64, &str)> = requests.iter().map(|r| (r.room_id, r.sender_id, r.client_id.as_str())).collect();
            for (room, (senders, client_ids)) in by_room {
                let rows: Vec<Message> = messages::table
                    .filter(messages::room_id.eq(room))
                    .filter(messages::sender_id.eq_any(senders))
                    .filter(messages::client_id.eq_any(client_ids))
                    .select(Message::as_select())
                    .load(c)?;
                // A sender's client id may match another sender's send: keep exact triples.
                found.extend(
                    rows.into_iter().filter(|m| wanted.contains(&(m.room_id, m.sender_id, m.client_id.as_str()))).map(|m| (key(&m), m)),
                );
            }
        }
    }
    Ok(found)
}

/// Takes the row locks of the batch's rooms first, in id order. On PostgreSQL this orders
/// writers on several nodes (no deadlock between batches naming the same rooms), and every
/// check that follows (members, blocks, earlier sends) sees what the previous holder
/// committed. SQLite's `BEGIN IMMEDIATE` already serialises writers.
fn lock_rooms(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        let mut ids: Vec<i64> = requests.iter().map(|r| r.room_id).collect();
        ids.sort_unstable();
        ids.dedup();
        rooms::table.filter(rooms::id.eq_any(&ids)).order(rooms::id).select(rooms::id).for_update().load::<i64>(pg)?;
    }
    Ok(())
}

/// Locks one room's row (PostgreSQL), so membership changes and message batches on it take
/// turns.
pub fn lock_room(conn: &mut DbConn, room_id: i64) -> ApiResult<()> {
    if let DbConn::Pg(pg) = conn {
        rooms::table.find(room_id).select(rooms::id).for_update().load::<i64>(pg)?;
    }
    Ok(())
}

diesel::define_sql_function! {
    /// SQLite's rowid of the connection's latest insert.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// Inserts `rows` and returns their ids by (room, seq). SQLite runs in this process: a row per
/// statement, without `RETURNING`, reuses one prepared statement. A multi-row insert would be
/// parsed anew for every batch (its SQL varies with the row count), and SQLite runs
/// `RETURNING` as a trigger, for which it first copies every page the statement changes to a
/// statement journal. PostgreSQL is a round trip away: one multi-row statement per thousand
/// rows. Diesel's connection enum cannot build multi-row inserts, hence the concrete
/// connections.
fn insert_messages(conn: &mut DbConn, rows: &[NewMessage<'_>]) -> ApiResult<HashMap<(i64, i64), i64>> {
    let mut ids = HashMap::with_capacity(rows.len());
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                // Owned values: the query's type is then 'static, the key of its cached statement.
                let values = (
                    messages::room_id.eq(row.room_id),
                    messages::seq.eq(row.seq),
                    messages::sender_id.eq(row.sender_id),
                    messages::body.eq(row.body.to_owned()),
                    messages::client_id.eq(row.client_id.to_owned()),
                    messages::created_at.eq(row.created_at),
                );
                Cached(diesel::insert_into(messages::table).values(values)).execute(c)?;
                let id: i64 = Cached(diesel::select(last_insert_rowid())).get_result(c)?;
                ids.insert((row.room_id, row.seq), id);
            }
        }
        DbConn::Pg(c) => {
            let returning = (messages::id, messages::room_id, messages::seq);
            // 6 bound values a row: well within PostgreSQL's 65,535.
            for chunk in rows.chunks(1000) {
                let returned: Vec<(i64, i64, i64)> =
                    diesel::insert_into(messages::table).values(chunk).returning(returning).get_results(c)?;
                ids.extend(returned.into_iter().map(|(id, room, seq)| ((room, seq), id)));
            }
        }
    }
    Ok(ids)
}

/// The room, if `user` may read it: 404 when it does not exist, 403 when not a member.
pub fn room_for_member(conn: &mut DbConn, room_id: i64, user: i64) -> ApiResult<Room> {
    let room: Room = rooms::table
        .find(room_id)
        .select(Room::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound("room not found".into()))?;
    let member: bool = diesel::select(diesel::dsl::exists(room_members::table.find((room_id, user)))).get_result(conn)?;
    if !member {
        return Err(ApiError::Forbidden("you are not a member of this room".into()));
    }
    Ok(room)
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Just below this seq.
    Before(i64),
    /// Just above this seq.
    After(i64),
}

/// A page of messages, oldest first, and whether more lie beyond it in the direction read.
/// One range scan of the `(room_id, seq)` index.
pub fn history(conn: &mut DbConn, room_id: i64, cursor: Cursor, limit: i64) -> ApiResult<(Vec<Message>, bool)> {
    let mut page: Vec<Message> = on_backend!(conn, c => {
        let in_room = messages::table.filter(messages::room_id.eq(room_id)).select(Message::as_select()).limit(limit + 1);
        match cursor {
            Cursor::Latest => in_room.order(messages::seq.desc()).load(c),
            Cursor::Before(seq) => in_room.filter(messages::seq.lt(seq)).order(messages::seq.desc()).load(c),
            Cursor::After(seq) => in_room.filter(messages::seq.gt(seq)).order(messages::seq.asc()).load(c),
        }
    })?;
    let has_more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    if !matches!(cursor, Cursor::After(_)) {
        page.reverse();
    }
    Ok((page, has_more))
}

/// Which messages of a room another node's fan-out needs: seqs above `after` (and below
/// `before`), created at or after `since`, oldest first, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct FanoutRange {
    pub room_id: i64,
    pub after: i64,
    pub before: Option<i64>,
    pub since: Option<chrono::NaiveDateTime>,
    pub limit: i64,
}

/// What [`for_fanout`] read.
pub struct FanoutRows {
    pub messages: Vec<Message>,
    /// The room's members (empty when no message was found).
    pub members: Vec<i64>,
    pub senders: HashMap<i64, PublicUserRow>,
}

/// Messages for [`FanoutRange`], with the room's members and the senders' public rows.
pub fn for_fanout(conn: &mut DbConn, range: &FanoutRange) -> ApiResult<FanoutRows> {
    let mut query = messages::table
        .filter(messages::room_id.eq(range.room_id))
        .filter(messages::seq.gt(range.after))
        .select(Message::as_select())
        .order(messages::seq.asc())
        .limit(range.limit)
        .into_boxed();
    if let Some(before) = range.before {
        query = query.filter(messages::seq.lt(before));
    }
    if let Some(since) = range.since {
        query = query.filter(messages::created_at.ge(since));
    }
    let list: Vec<Message> = query.load(conn)?;
    let members = if list.is_empty() { Vec::new() } else { member_ids(conn, range.room_id)? };
    let senders =
        PublicUserRow::load_many(conn, &list.iter().map(|m| m.sender_id).collect::<HashSet<_>>().into_iter().collect::<Vec<_>>())?;
    Ok(FanoutRows { messages: list, members, senders })
}

/// Rooms with a message at or after `since`.
pub fn rooms_active_since(conn: &mut DbConn, since: chrono::NaiveDateTime) -> ApiResult<Vec<i64>> {
    Ok(rooms::table.filter(rooms::last_activity_at.ge(since)).filter(rooms::last_seq.gt(0)).select(rooms::id).load(conn)?)
}

/// Moves `user`'s read receipt in `room_id` up to `seq` (never down). Returns the room's
/// members and whether the receipt moved.
pub fn mark_read(conn: &mut DbConn, room_id: i64, user: i64, seq: i64) -> ApiResult<(Vec<i64>, bool)> {
    write_tx(conn, |conn| {
        let room = room_for_member(conn, room_id, user)?;
        if seq < 0 || seq > room.last_seq {
            return Err(ApiError::invalid_field("seq", format!("must be between 0 and the room's last seq ({})", room.last_seq)));
        }
        let moved = diesel::update(room_members::table.find((room_id, user)).filter(room_members::last_read_seq.lt(seq)))
            .set(room_members::last_read_seq.eq(seq))
            .execute(conn)?;
        let mut members = member_ids(conn, room_id)?;
        if RoomKind::parse(&room.kind) == RoomKind::Private {
            // Across a block, the other side is not told.
            let mut visible = Vec::new();
            for member in members {
                if member == user || !blocked_between(conn, user, member)? {
                    visible.push(member);
                }
            }
            members = visible;
        }
        Ok((members, moved == 1))
    })
}

type State = actix_web::web::Data<crate::state::AppState>;

/// Builds views of stored messages with their senders (online flags from the registry).
async fn message_views(state: &State, list: Vec<Message>, senders: HashMap<i64, PublicUserRow>) -> Vec<crate::dto::MessageView> {
    use crate::dto::{MessageView, UserPublic};
    let mut views: Vec<MessageView> = list
        .into_iter()
        .filter_map(|m| {
            let sender = senders.get(&m.sender_id)?.clone();
            Some(MessageView::new(m, UserPublic::new(sender, false)))
        })
        .collect();
    crate::realtime::fill_online(&state.realtime.registry, views.iter_mut().map(|v| &mut v.sender));
    views
}

/// Stores a message sent over REST, through the same writer as WebSocket sends.
pub async fn send(state: &State, caller: i64, room_id: i64, body: String, client_id: Option<String>) -> ApiResult<crate::dto::MessageView> {
    let client_id = client_id.unwrap_or_else(|| format!("http-{}", crate::auth::sessions::random_token(12)));
    validate_send(&body, &client_id)?;
    state.realtime.writer.send(SendRequest { room_id, sender_id: caller, body, client_id }).await
}

/// A page of a room's history for a member.
pub async fn history_page(state: &State, caller: i64, room_id: i64, cursor: Cursor, limit: i64) -> ApiResult<crate::dto::MessagePage> {
    let (list, has_more, senders) = state
        .db
        .run(move |conn| {
            room_for_member(conn, room_id, caller)?;
            let (list, has_more) = history(conn, room_id, cursor, limit)?;
            let senders = PublicUserRow::load_many(conn, &list.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
            Ok((list, has_more, senders))
        })
        .await?;
    Ok(crate::dto::MessagePage { messages: message_views(state, list, senders).await, has_more })
}

/// Moves the caller's read receipt and tells the room's members (the caller's other devices
/// too) when it moved.
pub async fn read(state: &State, caller: i64, room_id: i64, seq: i64) -> ApiResult<()> {
    let (members, moved) = state.db.run(move |conn| mark_read(conn, room_id, caller, seq)).await?;
    if moved {
        let frame = crate::realtime::protocol::encode(&crate::realtime::protocol::ServerFrame::Read { room_id, user_id: caller, seq });
        state.realtime.registry.to_users(members, frame, None);
    }
    Ok(())
}

/// What a `sync` found for one room.
pub struct SyncedRoom {
    pub room_id: i64,
    pub messages: Vec<crate::dto::MessageView>,
    pub has_more: bool,
}

/// Every message after each cursor, for the rooms of `cursors` the caller belongs to: up to
/// [`SYNC_MAX_PER_ROOM`] per room and [`SYNC_MAX_TOTAL`] in all (rooms cut short are marked
/// `has_more`). Rooms the caller is not in are returned separately.
pub async fn sync(state: &State, caller: i64, cursors: Vec<(i64, i64)>) -> ApiResult<(Vec<SyncedRoom>, Vec<i64>)> {
    let (found, refused, senders) = state
        .db
        .run(move |conn| {
            let ids: Vec<i64> = cursors.iter().map(|(room, _)| *room).collect();
            let member_of = crate::services::rooms::memberships(conn, caller, &ids)?;
            let mut found = Vec::new();
            let mut refused = Vec::new();
            let mut sender_ids = HashSet::new();
            let mut budget = SYNC_MAX_TOTAL;
            for (room_id, after) in cursors {
                if !member_of.contains(&room_id) {
                    refused.push(room_id);
                    continue;
                }
                if budget == 0 {
                    found.push((room_id, Vec::new(), true));
                    continue;
                }
                let limit = SYNC_MAX_PER_ROOM.min(budget);
                let (list, has_more) = history(conn, room_id, Cursor::After(after.max(0)), limit)?;
                budget -= list.len() as i64;
                sender_ids.extend(list.iter().map(|m| m.sender_id));
                found.push((room_id, list, has_more));
            }
            let senders = PublicUserRow::load_many(conn, &sender_ids.into_iter().collect::<Vec<_>>())?;
            Ok((found, refused, senders))
        })
        .await?;
    let mut order = Vec::with_capacity(found.len());
    let mut all = Vec::new();
    for (room_id, list, has_more) in found {
        order.push((room_id, has_more));
        all.extend(list);
    }
    let mut by_room: HashMap<i64, Vec<crate::dto::MessageView>> = HashMap::new();
    for view in message_views(state, all, senders).await {
        by_room.entry(view.room_id).or_default().push(view);
    }
    let rooms = order
        .into_iter()
        .map(|(room_id, has_more)| SyncedRoom { room_id, messages: by_room.remove(&room_id).unwrap_or_default(), has_more })
        .collect();
    Ok((rooms, refused))
}
