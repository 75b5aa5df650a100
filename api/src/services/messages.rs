//! Messages: storing a batch of sends in one transaction (membership, blocks, idempotency and
//! per-room `seq`), history pages, sync after a reconnect, and read receipts.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;
use rustc_hash::FxHashMap;

use crate::db::models::{Message, NewMessage, PublicUserRow};
use crate::db::schema::{messages, room_members, rooms};
use crate::db::{self, Cached, DbConn, write_tx};
use crate::domain::{ClientId, MessageBody, SendRequest, SyncCursors};
use crate::dto::{MessagePage, MessageView};
use crate::error::{ApiError, ApiResult};
use crate::on_backend;
use crate::ports::DomainEvent;
use crate::services::access::{self, Refusal, RoomAct, RoomFacts};
use crate::state::State;

/// Most messages one `sync` sends per room; beyond it the client pages through history.
pub const SYNC_MAX_PER_ROOM: i64 = 500;
/// Most messages one `sync` sends in all.
pub const SYNC_MAX_TOTAL: i64 = 5000;

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

/// Stores every acceptable request of the batch in one transaction (group commit), in four
/// phases: [`screen`] decides what each request is (refused, a repeat, stored before, or new);
/// [`reserve_seqs`] takes each room's next seqs from `rooms.last_seq`, in request order, so they
/// are strictly increasing without gaps (on PostgreSQL the row locks order concurrent writers);
/// [`insert_messages`] stores the new ones; [`settle`] answers every request in order.
pub fn store_batch(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<StoredBatch> {
    write_tx(conn, |conn| {
        db::rooms::lock_many(conn, requests.iter().map(|r| r.room_id))?;
        let now = db::now();
        let Screened { verdicts, rooms } = screen(conn, requests)?;
        let accepted: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| matches!(v, Verdict::New)).map(|(i, _)| i).collect();
        let mut seqs = reserve_seqs(conn, requests, &accepted, now)?;
        let inserted = insert_messages(conn, requests, &accepted, &mut seqs, now)?;
        seqs.give_back_unused(conn)?;
        let outcomes = settle(requests, verdicts, inserted, now)?;

        let sender_ids: Vec<i64> = requests.iter().map(|r| r.sender_id).collect::<HashSet<_>>().into_iter().collect();
        let senders = db::users::public_rows(conn, &sender_ids)?;
        let members = rooms.into_iter().filter_map(|(room, facts)| Some((room, facts?.members))).collect();
        Ok(StoredBatch { outcomes, members, senders })
    })
}

/// What one request of a batch turned out to be.
#[derive(Debug)]
enum Verdict {
    /// Not stored: no such room, or the policy refuses the sender.
    Refused(ApiError),
    /// The same send as the earlier request at this index of the batch.
    RepeatOf(usize),
    /// Stored by an earlier batch (a retry).
    StoredBefore(Message),
    /// To be stored now.
    New,
}

/// The verdicts of a batch, and the rooms it names as the policy saw them (`None`: no such room).
struct Screened {
    verdicts: Vec<Verdict>,
    rooms: FxHashMap<i64, Option<RoomFacts>>,
}

/// Phase one: each room is read once and each (room, sender) asked of the policy once.
fn screen(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<Screened> {
    let mut rooms: FxHashMap<i64, Option<RoomFacts>> = FxHashMap::default();
    let mut refusals: FxHashMap<(i64, i64), Option<Refusal>> = FxHashMap::default();
    let mut first_in_batch: FxHashMap<(i64, i64, &str), usize> = FxHashMap::default();
    let stored_before = stored_before(conn, requests)?;
    let mut verdicts = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let room = match rooms.entry(request.room_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(RoomFacts::load(conn, request.room_id)?),
        };
        let Some(room) = room else {
            verdicts.push(Verdict::Refused(ApiError::NotFound("room not found".into())));
            continue;
        };
        let refused = match refusals.entry((request.room_id, request.sender_id)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(access::refusal(conn, room, request.sender_id, RoomAct::Send)?),
        };
        let key = (request.room_id, request.sender_id, request.client_id.as_str());
        let verdict = if let Some(refusal) = refused {
            Verdict::Refused(refusal.clone().into())
        } else if let Some(first) = first_in_batch.get(&key) {
            Verdict::RepeatOf(*first)
        } else if let Some(stored) = stored_before.get(&(key.0, key.1, key.2.to_owned())) {
            Verdict::StoredBefore(stored.clone())
        } else {
            first_in_batch.insert(key, index);
            Verdict::New
        };
        verdicts.push(verdict);
    }
    Ok(Screened { verdicts, rooms })
}

/// Phase two: each room's seqs for the accepted sends, reserved in one update per room.
fn reserve_seqs(conn: &mut DbConn, requests: &[SendRequest], accepted: &[usize], now: chrono::NaiveDateTime) -> ApiResult<RoomSeqs> {
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for index in accepted {
        let room = requests[*index].room_id;
        match counts.iter_mut().find(|(r, _)| *r == room) {
            Some((_, count)) => *count += 1,
            None => counts.push((room, 1)),
        }
    }
    let mut seqs = RoomSeqs::default();
    for (room, count) in counts {
        let bump = diesel::update(rooms::table.find(room))
            .set((rooms::last_seq.eq(rooms::last_seq + count), rooms::last_activity_at.eq(now)))
            .returning(rooms::last_seq);
        let last: i64 = on_backend!(conn, c => Cached(bump).get_result(c))?;
        seqs.reserved(room, last - count + 1, last);
    }
    Ok(seqs)
}

/// Phase four: every request's outcome, in request order. `inserted` follows the order of the
/// requests found new; a repeat answers with what its first occurrence got.
fn settle(
    requests: &[SendRequest],
    verdicts: Vec<Verdict>,
    inserted: Vec<Inserted>,
    now: chrono::NaiveDateTime,
) -> ApiResult<Vec<Outcome>> {
    let mut inserted = inserted.into_iter();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests.len());
    for (request, verdict) in requests.iter().zip(verdicts) {
        let outcome = match verdict {
            Verdict::Refused(error) => Outcome::Rejected(error),
            Verdict::StoredBefore(message) => Outcome::Duplicate(message),
            Verdict::RepeatOf(first) => match outcomes.get(first) {
                Some(Outcome::Stored(message) | Outcome::Duplicate(message)) => Outcome::Duplicate(message.clone()),
                _ => return Err(ApiError::internal(anyhow::anyhow!("repeat of an unstored send"))),
            },
            Verdict::New => match inserted.next() {
                Some(Inserted::New { id, seq }) => Outcome::Stored(Message {
                    id,
                    room_id: request.room_id,
                    seq,
                    sender_id: request.sender_id,
                    body: request.body.as_str().to_owned(),
                    client_id: request.client_id.as_str().to_owned(),
                    created_at: now,
                    edited_at: None,
                    deleted: false,
                }),
                Some(Inserted::Existing(message)) => Outcome::Duplicate(message),
                None => return Err(ApiError::internal(anyhow::anyhow!("a new send left without its insert"))),
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The seqs a batch reserved per room (`rooms.last_seq` already counts them) and the next to
/// hand out.
#[derive(Default, Clone)]
struct RoomSeqs(Vec<RoomSeq>);

#[derive(Clone)]
struct RoomSeq {
    room: i64,
    first: i64,
    next: i64,
    last_reserved: i64,
}

impl RoomSeqs {
    fn reserved(&mut self, room: i64, first: i64, last: i64) {
        self.0.push(RoomSeq { room, first, next: first, last_reserved: last });
    }

    /// The room's next seq, left unused (see `take`).
    fn peek(&self, room: i64) -> ApiResult<i64> {
        self.0
            .iter()
            .find(|r| r.room == room)
            .map(|r| r.next)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no seq reserved for room {room}")))
    }

    /// Hands out the room's next seq.
    fn take(&mut self, room: i64) -> ApiResult<i64> {
        let r = self.0.iter_mut().find(|r| r.room == room);
        let r = r.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no seq reserved for room {room}")))?;
        r.next += 1;
        Ok(r.next - 1)
    }

    /// Lowers `rooms.last_seq` where sends turned out to be stored already, so seqs stay
    /// without gaps. A room that got only retries also gets its activity time back (its last
    /// message's, or its creation's): nothing new happened in it.
    fn give_back_unused(&self, conn: &mut DbConn) -> ApiResult<()> {
        for r in self.0.iter().filter(|r| r.next <= r.last_reserved) {
            let used = r.next - 1;
            if r.next > r.first {
                on_backend!(conn, c => diesel::update(rooms::table.find(r.room)).set(rooms::last_seq.eq(used)).execute(c))?;
                continue;
            }
            let last_activity: chrono::NaiveDateTime = if used > 0 {
                let last = messages::table.filter(messages::room_id.eq(r.room)).filter(messages::seq.eq(used));
                on_backend!(conn, c => last.select(messages::created_at).first(c))?
            } else {
                on_backend!(conn, c => rooms::table.find(r.room).select(rooms::created_at).first(c))?
            };
            let restore = (rooms::last_seq.eq(used), rooms::last_activity_at.eq(last_activity));
            on_backend!(conn, c => diesel::update(rooms::table.find(r.room)).set(restore).execute(c))?;
        }
        Ok(())
    }
}

/// What inserting one accepted send did.
enum Inserted {
    New {
        id: i64,
        seq: i64,
    },
    /// Stored before, by an earlier batch (a retry): SQLite's unique index caught it.
    Existing(Message),
}

/// The sends of `requests` stored before (retries), by (room, sender, client id), read on the
/// unique `(room_id, sender_id, client_id)` index. PostgreSQL is a round trip away, and a
/// unique violation there aborts the whole transaction: one query per room, its senders and
/// client ids as two array parameters (`= ANY`), keeping only exact matches. SQLite asks
/// nothing here: its insert meets the index anyway, and a send that fails on it is looked up
/// then (see [`insert_messages`]), which spares every new send a look-up.
fn stored_before(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<HashMap<(i64, i64, String), Message>> {
    let key = |m: &Message| (m.room_id, m.sender_id, m.client_id.clone());
    let mut found = HashMap::new();
    if let DbConn::Pg(c) = conn {
        let mut by_room: HashMap<i64, (Vec<i64>, Vec<&str>)> = HashMap::new();
        for request in requests {
            let (senders, client_ids) = by_room.entry(request.room_id).or_default();
            senders.push(request.sender_id);
            client_ids.push(request.client_id.as_str());
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
    Ok(found)
}

diesel::define_sql_function! {
    /// SQLite's rowid of the connection's latest insert.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// Inserts the `accepted` sends of `requests`, each at its room's next seq, and says what
/// became of each, in order.
///
/// SQLite runs in this process: [`ROWS_PER_INSERT`] rows per statement while that many are
/// left, then a row per statement, each shape prepared once; no `RETURNING` (SQLite runs it as
/// a trigger, copying every page the statement changes to a statement journal first), the new
/// rows are numbered at the end ([`number_new_rows`]). A send stored by an earlier batch fails
/// on the unique `(room_id, sender_id, client_id)` index: its statement is undone and its rows
/// go one by one ([`insert_one_by_one`]).
///
/// PostgreSQL is a round trip away: one multi-row statement per thousand rows (retries were
/// found before). Diesel's connection enum cannot build multi-row inserts, hence the concrete
/// connections.
fn insert_messages(
    conn: &mut DbConn,
    requests: &[SendRequest],
    accepted: &[usize],
    seqs: &mut RoomSeqs,
    now: chrono::NaiveDateTime,
) -> ApiResult<Vec<Inserted>> {
    let mut inserted = Vec::with_capacity(accepted.len());
    match conn {
        DbConn::Sqlite(c) => {
            // Formatted once for the batch, as diesel would format it for every row.
            let created_at = db::SqliteTimestamp::new(now);
            let mut rest = accepted;
            while rest.len() >= ROWS_PER_INSERT {
                let (chunk, after) = rest.split_at(ROWS_PER_INSERT);
                rest = after;
                let mut planned = seqs.clone();
                let mut rows = Vec::with_capacity(ROWS_PER_INSERT);
                let mut chunk_seqs = Vec::with_capacity(ROWS_PER_INSERT);
                for request in chunk.iter().map(|index| &requests[*index]) {
                    let seq = planned.take(request.room_id)?;
                    rows.push(message_row(request, seq, &created_at));
                    chunk_seqs.push(seq);
                }
                let rows: [MessageRow; ROWS_PER_INSERT] =
                    rows.try_into().map_err(|_| ApiError::internal(anyhow::anyhow!("a chunk of the wrong size")))?;
                match diesel::insert_into(messages::table).values(rows).execute(c) {
                    Ok(_) => {
                        *seqs = planned;
                        inserted.extend(chunk_seqs.into_iter().map(|seq| Inserted::New { id: 0, seq }));
                    }
                    // A retry among them: the statement was undone; these go one by one.
                    Err(error) if db::is_unique_violation(&error) => {
                        insert_one_by_one(c, requests, chunk, seqs, &created_at, &mut inserted)?
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            insert_one_by_one(c, requests, rest, seqs, &created_at, &mut inserted)?;
            number_new_rows(c, &mut inserted)?;
        }
        DbConn::Pg(c) => {
            let mut rows = Vec::with_capacity(accepted.len());
            for request in accepted.iter().map(|index| &requests[*index]) {
                let seq = seqs.take(request.room_id)?;
                rows.push(NewMessage {
                    room_id: request.room_id,
                    seq,
                    sender_id: request.sender_id,
                    body: request.body.as_str(),
                    client_id: request.client_id.as_str(),
                    created_at: now,
                });
            }
            let returning = (messages::id, messages::room_id, messages::seq);
            let mut ids = HashMap::with_capacity(rows.len());
            // 6 bound values a row: well within PostgreSQL's 65,535.
            for chunk in rows.chunks(1000) {
                let returned: Vec<(i64, i64, i64)> =
                    diesel::insert_into(messages::table).values(chunk).returning(returning).get_results(c)?;
                ids.extend(returned.into_iter().map(|(id, room, seq)| ((room, seq), id)));
            }
            for row in &rows {
                let id = *ids
                    .get(&(row.room_id, row.seq))
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no id returned for room {} seq {}", row.room_id, row.seq)))?;
                inserted.push(Inserted::New { id, seq: row.seq });
            }
        }
    }
    Ok(inserted)
}

/// Rows per multi-row insert on SQLite: one statement's work (binding, running, finishing, the
/// AUTOINCREMENT counter read and written) is shared by this many messages; the statement's
/// SQL depends only on it, so it is prepared once.
const ROWS_PER_INSERT: usize = 16;

/// One message as inserted on SQLite. Owned values: the query's type is then 'static, the key
/// of its cached statement.
type MessageRow = (
    diesel::dsl::Eq<messages::room_id, i64>,
    diesel::dsl::Eq<messages::seq, i64>,
    diesel::dsl::Eq<messages::sender_id, i64>,
    diesel::dsl::Eq<messages::body, String>,
    diesel::dsl::Eq<messages::client_id, String>,
    diesel::dsl::Eq<messages::created_at, db::SqliteTimestamp>,
);

fn message_row(request: &SendRequest, seq: i64, created_at: &db::SqliteTimestamp) -> MessageRow {
    (
        messages::room_id.eq(request.room_id),
        messages::seq.eq(seq),
        messages::sender_id.eq(request.sender_id),
        messages::body.eq(request.body.as_str().to_owned()),
        messages::client_id.eq(request.client_id.as_str().to_owned()),
        messages::created_at.eq(created_at.clone()),
    )
}

/// Inserts `accepted` a row per statement (SQLite). A send stored by an earlier batch fails on
/// the unique `(room_id, sender_id, client_id)` index; SQLite then undoes that one statement
/// only, the send is answered with the stored message, and its seq goes to the next send.
fn insert_one_by_one(
    c: &mut diesel::SqliteConnection,
    requests: &[SendRequest],
    accepted: &[usize],
    seqs: &mut RoomSeqs,
    created_at: &db::SqliteTimestamp,
    inserted: &mut Vec<Inserted>,
) -> ApiResult<()> {
    for request in accepted.iter().map(|index| &requests[*index]) {
        let seq = seqs.peek(request.room_id)?;
        match Cached(diesel::insert_into(messages::table).values(message_row(request, seq, created_at))).execute(c) {
            Ok(_) => {
                seqs.take(request.room_id)?;
                // Numbered once the batch is in.
                inserted.push(Inserted::New { id: 0, seq });
            }
            Err(error) if db::is_unique_violation(&error) => {
                let stored: Option<Message> = messages::table
                    .filter(messages::room_id.eq(request.room_id))
                    .filter(messages::sender_id.eq(request.sender_id))
                    .filter(messages::client_id.eq(request.client_id.as_str()))
                    .select(Message::as_select())
                    .first(c)
                    .optional()?;
                // Not a retry: the seq itself collided, which would be a bug.
                inserted.push(Inserted::Existing(stored.ok_or(error)?));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Gives the rows a batch inserted on SQLite their ids. AUTOINCREMENT gives every insert the
/// id after the largest ever used, so inside the batch's transaction the new rows are numbered
/// consecutively, in order, up to the last insert's: one `last_insert_rowid()` a batch instead
/// of one a row. Checked: exactly that many rows lie in the range, or the batch fails.
fn number_new_rows(c: &mut diesel::SqliteConnection, inserted: &mut [Inserted]) -> ApiResult<()> {
    let fresh = inserted.iter().filter(|i| matches!(i, Inserted::New { .. })).count() as i64;
    if fresh == 0 {
        return Ok(());
    }
    let last: i64 = Cached(diesel::select(last_insert_rowid())).get_result(c)?;
    let first = last - fresh + 1;
    let in_range: i64 = messages::table.filter(messages::id.ge(first)).count().get_result(c)?;
    if in_range != fresh {
        return Err(ApiError::internal(anyhow::anyhow!("{fresh} messages inserted, but {in_range} ids from {first} to {last}")));
    }
    let mut next = first;
    for row in inserted {
        if let Inserted::New { id, .. } = row {
            *id = next;
            next += 1;
        }
    }
    Ok(())
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
    let members = if list.is_empty() { Vec::new() } else { db::members::ids(conn, range.room_id)? };
    let senders = db::users::public_rows(conn, &list.iter().map(|m| m.sender_id).collect::<HashSet<_>>().into_iter().collect::<Vec<_>>())?;
    Ok(FanoutRows { messages: list, members, senders })
}

/// Rooms with a message at or after `since`.
pub fn rooms_active_since(conn: &mut DbConn, since: chrono::NaiveDateTime) -> ApiResult<Vec<i64>> {
    Ok(rooms::table.filter(rooms::last_activity_at.ge(since)).filter(rooms::last_seq.gt(0)).select(rooms::id).load(conn)?)
}

/// Moves `user`'s read receipt in `room_id` up to `seq` (never down). Returns who may see the
/// receipt and whether it moved.
pub fn mark_read(conn: &mut DbConn, room_id: i64, user: i64, seq: i64) -> ApiResult<(Vec<i64>, bool)> {
    write_tx(conn, |conn| {
        let room = access::readable_room(conn, room_id, user)?;
        if seq < 0 || seq > room.last_seq {
            return Err(ApiError::invalid_field("seq", format!("must be between 0 and the room's last seq ({})", room.last_seq)));
        }
        let moved = diesel::update(room_members::table.find((room_id, user)).filter(room_members::last_read_seq.lt(seq)))
            .set(room_members::last_read_seq.eq(seq))
            .execute(conn)?;
        let facts = RoomFacts { id: room_id, kind: room.kind, members: db::members::ids(conn, room_id)?.into() };
        Ok((access::receipt_audience(conn, &facts, user)?, moved == 1))
    })
}

/// Views of stored messages with their senders (online flags from the real-time layer).
async fn message_views(state: &State, list: Vec<Message>, senders: HashMap<i64, PublicUserRow>) -> Vec<MessageView> {
    let online = state.live.online(&mut senders.keys().copied());
    list.into_iter().filter_map(|m| MessageView::assemble(m, &senders, &online)).collect()
}

/// Stores a message sent over REST, through the same writer as WebSocket sends.
pub async fn send(state: &State, caller: i64, room_id: i64, body: MessageBody, client_id: ClientId) -> ApiResult<MessageView> {
    state.live.store_message(SendRequest { room_id, sender_id: caller, body, client_id }).await
}

/// A page of a room's history for a member.
pub async fn history_page(state: &State, caller: i64, room_id: i64, cursor: Cursor, limit: i64) -> ApiResult<MessagePage> {
    let (list, has_more, senders) = state
        .db
        .run(move |conn| {
            access::readable_room(conn, room_id, caller)?;
            let (list, has_more) = history(conn, room_id, cursor, limit)?;
            let senders = db::users::public_rows(conn, &list.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
            Ok((list, has_more, senders))
        })
        .await?;
    Ok(MessagePage { messages: message_views(state, list, senders).await, has_more })
}

/// Moves the caller's read receipt and tells the room's members (the caller's other devices
/// too) when it moved.
pub async fn read(state: &State, caller: i64, room_id: i64, seq: i64) -> ApiResult<()> {
    let (audience, moved) = state.db.run(move |conn| mark_read(conn, room_id, caller, seq)).await?;
    if moved {
        state.live.announce(DomainEvent::ReadMoved { room_id, user_id: caller, seq, audience });
    }
    Ok(())
}

/// What a `sync` found for one room.
pub struct SyncedRoom {
    pub room_id: i64,
    pub messages: Vec<MessageView>,
    pub has_more: bool,
}

/// Every message after each cursor, for the rooms of `cursors` the caller belongs to: up to
/// [`SYNC_MAX_PER_ROOM`] per room and [`SYNC_MAX_TOTAL`] in all (rooms cut short are marked
/// `has_more`). Rooms the caller is not in are returned separately.
pub async fn sync(state: &State, caller: i64, cursors: SyncCursors) -> ApiResult<(Vec<SyncedRoom>, Vec<i64>)> {
    let (found, refused, senders) = state
        .db
        .run(move |conn| {
            let ids: Vec<i64> = cursors.iter().map(|(room, _)| room).collect();
            let member_of = db::members::rooms_among(conn, caller, &ids)?;
            let mut found = Vec::new();
            let mut refused = Vec::new();
            let mut sender_ids = HashSet::new();
            let mut budget = SYNC_MAX_TOTAL;
            for (room_id, after) in cursors.iter() {
                if !member_of.contains(&room_id) {
                    refused.push(room_id);
                    continue;
                }
                if budget == 0 {
                    found.push((room_id, Vec::new(), true));
                    continue;
                }
                let limit = SYNC_MAX_PER_ROOM.min(budget);
                let (list, has_more) = history(conn, room_id, Cursor::After(after), limit)?;
                budget -= list.len() as i64;
                sender_ids.extend(list.iter().map(|m| m.sender_id));
                found.push((room_id, list, has_more));
            }
            let senders = db::users::public_rows(conn, &sender_ids.into_iter().collect::<Vec<_>>())?;
            Ok((found, refused, senders))
        })
        .await?;
    let mut order = Vec::with_capacity(found.len());
    let mut all = Vec::new();
    for (room_id, list, has_more) in found {
        order.push((room_id, has_more));
        all.extend(list);
    }
    let mut by_room: HashMap<i64, Vec<MessageView>> = HashMap::new();
    for view in message_views(state, all, senders).await {
        by_room.entry(view.room_id).or_default().push(view);
    }
    let rooms = order
        .into_iter()
        .map(|(room_id, has_more)| SyncedRoom { room_id, messages: by_room.remove(&room_id).unwrap_or_default(), has_more })
        .collect();
    Ok((rooms, refused))
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    fn send(sender_id: i64, client_id: &str, body: &str) -> SendRequest {
        SendRequest {
            room_id: 1,
            sender_id,
            body: MessageBody::parse(body.into()).unwrap(),
            client_id: ClientId::parse(client_id.into()).unwrap(),
        }
    }

    fn stored_seq(outcome: &Outcome) -> i64 {
        match outcome {
            Outcome::Stored(message) => message.seq,
            other => panic!("expected a stored message, got {other:?}"),
        }
    }

    #[test]
    fn a_retry_among_new_sends_of_one_batch_leaves_the_room_without_seq_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let db = db::Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap();
        let mut conn = db.get().unwrap();
        db::run_migrations(&mut conn).unwrap();
        conn.batch_execute(
            "INSERT INTO users (username, username_key, email, password_hash, date_joined) VALUES
                 ('ann', 'ann', 'ann@example.com', 'x', '2026-01-01 00:00:00'),
                 ('bob', 'bob', 'bob@example.com', 'x', '2026-01-01 00:00:00');
             INSERT INTO rooms (kind, last_activity_at, created_at) VALUES ('group', '2026-01-01 00:00:00', '2026-01-01 00:00:00');
             INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES
                 (1, 1, 'owner', '2026-01-01 00:00:00'), (1, 2, 'member', '2026-01-01 00:00:00');",
        )
        .unwrap();
        let first = store_batch(&mut conn, &[send(1, "a", "first")]).unwrap();
        assert_eq!(stored_seq(&first.outcomes[0]), 1);

        // A retry of "a" between new sends (its unique index fails its insert), and a send
        // repeated within the batch.
        let batch = store_batch(
            &mut conn,
            &[send(2, "b", "second"), send(1, "a", "first, retried"), send(1, "c", "third"), send(1, "c", "third, repeated")],
        )
        .unwrap();
        assert_eq!(stored_seq(&batch.outcomes[0]), 2);
        match &batch.outcomes[1] {
            Outcome::Duplicate(message) => assert_eq!((message.seq, message.body.as_str()), (1, "first")),
            other => panic!("the retry must return the stored message, got {other:?}"),
        }
        assert_eq!(stored_seq(&batch.outcomes[2]), 3, "the retry's seq goes to the next new send");
        assert!(matches!(&batch.outcomes[3], Outcome::Duplicate(m) if m.seq == 3));

        let last_seq: i64 = rooms::table.find(1).select(rooms::last_seq).first(&mut *conn).unwrap();
        assert_eq!(last_seq, 3, "the seq reserved for the retry was given back");
        let next = store_batch(&mut conn, &[send(2, "d", "fourth")]).unwrap();
        assert_eq!(stored_seq(&next.outcomes[0]), 4);
        let stored: Vec<(i64, i64)> = messages::table.order(messages::seq).select((messages::seq, messages::id)).load(&mut *conn).unwrap();
        assert_eq!(stored.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        // The ids a batch hands out are the ones stored, the retry's among them skipped.
        let answered = [&first.outcomes[0], &batch.outcomes[0], &batch.outcomes[2], &next.outcomes[0]];
        let answered_ids: Vec<(i64, i64)> = answered
            .iter()
            .map(|o| match o {
                Outcome::Stored(m) => (m.seq, m.id),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(answered_ids, stored);

        // Enough sends for whole multi-row statements: the first chunk goes in at once, the
        // second holds a retry (its statement is undone and its sends go one by one), the rest
        // go one by one anyway.
        let many: Vec<SendRequest> = (0..2 * ROWS_PER_INSERT + 5)
            .map(|n| {
                if n == ROWS_PER_INSERT + 3 {
                    send(1, "a", "first, retried again")
                } else {
                    send(1 + n as i64 % 2, &format!("m{n}"), "many")
                }
            })
            .collect();
        let big = store_batch(&mut conn, &many).unwrap();
        let mut expected_seq = 5;
        for (n, outcome) in big.outcomes.iter().enumerate() {
            match outcome {
                Outcome::Duplicate(message) => assert_eq!((n, message.seq), (ROWS_PER_INSERT + 3, 1)),
                Outcome::Stored(message) => {
                    assert_eq!(message.seq, expected_seq, "send {n}");
                    expected_seq += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        let stored: Vec<(i64, i64)> = messages::table.order(messages::seq).select((messages::seq, messages::id)).load(&mut *conn).unwrap();
        assert_eq!(stored.len() as i64, expected_seq - 1, "every seq stored once, without gaps");
        for outcome in &big.outcomes {
            if let Outcome::Stored(message) = outcome {
                assert!(stored.contains(&(message.seq, message.id)), "{message:?} has the id it was stored with");
            }
        }
    }
}
