//! The `messages` table: storing a batch of sends (seqs reserved on `rooms.last_seq`, inserts
//! that find earlier sends of the same client id), history pages, and the reads another node's
//! fan-out and catch-up need.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::models::{Message, NewMessage};
use super::schema::{messages, rooms};
use super::{Cached, DbConn};
use crate::domain::SendRequest;
use crate::error::{ApiError, ApiResult};
use crate::ids::{RoomId, Seq, UserId};
use crate::on_backend;

/// Reserves each room's seqs for the accepted sends (indexes into `requests`), in one update
/// per room: `rooms.last_seq` counts them from then on.
pub fn reserve_seqs(conn: &mut DbConn, requests: &[SendRequest], accepted: &[usize], now: chrono::NaiveDateTime) -> ApiResult<RoomSeqs> {
    let mut counts: Vec<(RoomId, i64)> = Vec::new();
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
        let last: Seq = on_backend!(conn, c => Cached(bump).get_result(c))?;
        seqs.reserved(room, last - count + 1, last);
    }
    Ok(seqs)
}

/// The seqs a batch reserved per room (`rooms.last_seq` already counts them) and the next to
/// hand out.
#[derive(Default, Clone)]
pub struct RoomSeqs(Vec<RoomSeq>);

#[derive(Clone)]
struct RoomSeq {
    room: RoomId,
    first: Seq,
    next: Seq,
    last_reserved: Seq,
}

impl RoomSeqs {
    fn reserved(&mut self, room: RoomId, first: Seq, last: Seq) {
        self.0.push(RoomSeq { room, first, next: first, last_reserved: last });
    }

    /// The room's next seq, left unused (see `take`).
    fn peek(&self, room: RoomId) -> ApiResult<Seq> {
        self.0
            .iter()
            .find(|r| r.room == room)
            .map(|r| r.next)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no seq reserved for room {room}")))
    }

    /// Hands out the room's next seq.
    fn take(&mut self, room: RoomId) -> ApiResult<Seq> {
        let r = self.0.iter_mut().find(|r| r.room == room);
        let r = r.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no seq reserved for room {room}")))?;
        let taken = r.next;
        r.next = taken.next();
        Ok(taken)
    }

    /// Lowers `rooms.last_seq` where sends turned out to be stored already, so seqs stay
    /// without gaps. A room that got only retries also gets its activity time back (its last
    /// message's, or its creation's): nothing new happened in it.
    pub fn give_back_unused(&self, conn: &mut DbConn) -> ApiResult<()> {
        for r in self.0.iter().filter(|r| r.next <= r.last_reserved) {
            let used = r.next - 1;
            if r.next > r.first {
                on_backend!(conn, c => diesel::update(rooms::table.find(r.room)).set(rooms::last_seq.eq(used)).execute(c))?;
                continue;
            }
            let last_activity: chrono::NaiveDateTime = if used > Seq::ZERO {
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
pub enum Inserted {
    New {
        id: i64,
        seq: Seq,
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
pub fn stored_before(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<HashMap<(RoomId, UserId, String), Message>> {
    let key = |m: &Message| (m.room_id, m.sender_id, m.client_id.clone());
    let mut found = HashMap::new();
    if let DbConn::Pg(c) = conn {
        let mut by_room: HashMap<RoomId, (Vec<UserId>, Vec<&str>)> = HashMap::new();
        for request in requests {
            let (senders, client_ids) = by_room.entry(request.room_id).or_default();
            senders.push(request.sender_id);
            client_ids.push(request.client_id.as_str());
        }
        let wanted: HashSet<(RoomId, UserId, &str)> = requests.iter().map(|r| (r.room_id, r.sender_id, r.client_id.as_str())).collect();
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
pub fn insert_messages(
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
            let created_at = super::SqliteTimestamp::new(now);
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
                    Err(error) if super::is_unique_violation(&error) => {
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
                let returned: Vec<(i64, RoomId, Seq)> =
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
pub const ROWS_PER_INSERT: usize = 16;

/// One message as inserted on SQLite. Owned values: the query's type is then 'static, the key
/// of its cached statement.
type MessageRow = (
    diesel::dsl::Eq<messages::room_id, RoomId>,
    diesel::dsl::Eq<messages::seq, Seq>,
    diesel::dsl::Eq<messages::sender_id, UserId>,
    diesel::dsl::Eq<messages::body, String>,
    diesel::dsl::Eq<messages::client_id, String>,
    diesel::dsl::Eq<messages::created_at, super::SqliteTimestamp>,
);

fn message_row(request: &SendRequest, seq: Seq, created_at: &super::SqliteTimestamp) -> MessageRow {
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
    created_at: &super::SqliteTimestamp,
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
            Err(error) if super::is_unique_violation(&error) => {
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
    Before(Seq),
    /// Just above this seq.
    After(Seq),
}

/// A page of messages, oldest first, and whether more lie beyond it in the direction read.
/// One range scan of the `(room_id, seq)` index.
pub fn history(conn: &mut DbConn, room_id: RoomId, cursor: Cursor, limit: i64) -> ApiResult<(Vec<Message>, bool)> {
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
    pub room_id: RoomId,
    pub after: Seq,
    pub before: Option<Seq>,
    pub since: Option<chrono::NaiveDateTime>,
    pub limit: i64,
}

/// What [`for_fanout`] read.
pub struct FanoutRows {
    pub messages: Vec<Message>,
    /// The room's members (empty when no message was found).
    pub members: Vec<UserId>,
    pub senders: HashMap<UserId, super::models::PublicUserRow>,
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
    let members = if list.is_empty() { Vec::new() } else { super::members::ids(conn, range.room_id)? };
    let senders =
        super::users::public_rows(conn, &list.iter().map(|m| m.sender_id).collect::<HashSet<_>>().into_iter().collect::<Vec<_>>())?;
    Ok(FanoutRows { messages: list, members, senders })
}

/// Rooms with a message at or after `since`, with their last seq.
pub fn rooms_active_since(conn: &mut DbConn, since: chrono::NaiveDateTime) -> ApiResult<Vec<(RoomId, Seq)>> {
    Ok(rooms::table
        .filter(rooms::last_activity_at.ge(since))
        .filter(rooms::last_seq.gt(0))
        .select((rooms::id, rooms::last_seq))
        .load(conn)?)
}

/// The last message of each of these rooms that has one.
pub fn last_of_rooms(conn: &mut DbConn, room_ids: &[RoomId]) -> ApiResult<Vec<Message>> {
    Ok(messages::table
        .inner_join(rooms::table.on(rooms::id.eq(messages::room_id).and(rooms::last_seq.eq(messages::seq))))
        .filter(messages::room_id.eq_any(room_ids))
        .select(Message::as_select())
        .load(conn)?)
}
