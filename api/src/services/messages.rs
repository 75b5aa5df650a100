//! Messages: storing a batch of sends in one transaction (membership, blocks, idempotency and
//! per-room `seq`), history pages, sync after a reconnect, and read receipts.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::db::messages::{Cursor, Inserted, history};
use crate::db::models::{Message, PublicUserRow};
use crate::db::{self, DbConn, write_tx};
use crate::domain::{ClientId, MessageBody, SendRequest, SyncCursors};
use crate::dto::{MessagePage, MessageView};
use crate::error::{ApiError, ApiResult};
use crate::ids::{RoomId, Seq, UserId};
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
    pub members: HashMap<RoomId, Arc<[UserId]>>,
    pub senders: HashMap<UserId, PublicUserRow>,
}

/// Stores every acceptable request of the batch in one transaction (group commit), in four
/// phases: [`screen`] decides what each request is (refused, a repeat, stored before, or new);
/// [`db::messages::reserve_seqs`] takes each room's next seqs from `rooms.last_seq`, in
/// request order, so they are strictly increasing without gaps (on PostgreSQL the row locks
/// order concurrent writers); [`db::messages::insert_messages`] stores the new ones;
/// [`settle`] answers every request in order.
pub fn store_batch(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<StoredBatch> {
    write_tx(conn, |conn| {
        db::rooms::lock_many(conn, requests.iter().map(|r| r.room_id))?;
        let now = db::now();
        let Screened { verdicts, rooms } = screen(conn, requests)?;
        let accepted: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| matches!(v, Verdict::New)).map(|(i, _)| i).collect();
        let mut seqs = db::messages::reserve_seqs(conn, requests, &accepted, now)?;
        let inserted = db::messages::insert_messages(conn, requests, &accepted, &mut seqs, now)?;
        seqs.give_back_unused(conn)?;
        let outcomes = settle(requests, verdicts, inserted, now)?;

        let sender_ids: Vec<UserId> = requests.iter().map(|r| r.sender_id).collect::<HashSet<_>>().into_iter().collect();
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
    rooms: FxHashMap<RoomId, Option<RoomFacts>>,
}

/// Phase one: each room is read once and each (room, sender) asked of the policy once.
fn screen(conn: &mut DbConn, requests: &[SendRequest]) -> ApiResult<Screened> {
    let mut rooms: FxHashMap<RoomId, Option<RoomFacts>> = FxHashMap::default();
    let mut refusals: FxHashMap<(RoomId, UserId), Option<Refusal>> = FxHashMap::default();
    let mut first_in_batch: FxHashMap<(RoomId, UserId, &str), usize> = FxHashMap::default();
    let stored_before = db::messages::stored_before(conn, requests)?;
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

/// Moves `user`'s read receipt in `room_id` up to `seq` (never down). Returns who may see the
/// receipt and whether it moved.
pub fn mark_read(conn: &mut DbConn, room_id: RoomId, user: UserId, seq: Seq) -> ApiResult<(Vec<UserId>, bool)> {
    write_tx(conn, |conn| {
        let room = access::room_for(conn, room_id, user, RoomAct::MarkRead)?;
        if seq < Seq::ZERO || seq > room.last_seq {
            return Err(ApiError::invalid_field("seq", format!("must be between 0 and the room's last seq ({})", room.last_seq)));
        }
        let moved = db::members::raise_read_receipt(conn, room_id, user, seq)?;
        let facts = RoomFacts { id: room_id, kind: room.kind, members: db::members::ids(conn, room_id)?.into() };
        Ok((access::receipt_audience(conn, &facts, user)?, moved))
    })
}

/// Views of stored messages with their senders (online flags from the real-time layer).
async fn message_views(state: &State, list: Vec<Message>, senders: HashMap<UserId, PublicUserRow>) -> Vec<MessageView> {
    let online = state.live.online(&mut senders.keys().copied());
    list.into_iter().filter_map(|m| MessageView::assemble(m, &senders, &online)).collect()
}

/// Stores a message sent over REST, through the same writer as WebSocket sends.
pub async fn send(state: &State, caller: UserId, room_id: RoomId, body: MessageBody, client_id: ClientId) -> ApiResult<MessageView> {
    state.live.store_message(SendRequest { room_id, sender_id: caller, body, client_id }).await
}

/// A page of a room's history for a member.
pub async fn history_page(state: &State, caller: UserId, room_id: RoomId, cursor: Cursor, limit: i64) -> ApiResult<MessagePage> {
    let (list, has_more, senders) = state
        .db
        .run(move |conn| {
            access::room_for(conn, room_id, caller, RoomAct::Read)?;
            let (list, has_more) = history(conn, room_id, cursor, limit)?;
            let senders = db::users::public_rows(conn, &list.iter().map(|m| m.sender_id).collect::<Vec<_>>())?;
            Ok((list, has_more, senders))
        })
        .await?;
    Ok(MessagePage { messages: message_views(state, list, senders).await, has_more })
}

/// Moves the caller's read receipt and tells the room's members (the caller's other devices
/// too) when it moved.
pub async fn read(state: &State, caller: UserId, room_id: RoomId, seq: Seq) -> ApiResult<()> {
    let (audience, moved) = state.db.run(move |conn| mark_read(conn, room_id, caller, seq)).await?;
    if moved {
        state.live.announce(DomainEvent::ReadMoved { room_id, user_id: caller, seq, audience });
    }
    Ok(())
}

/// What a `sync` found for one room.
pub struct SyncedRoom {
    pub room_id: RoomId,
    pub messages: Vec<MessageView>,
    pub has_more: bool,
}

/// Every message after each cursor, for the rooms of `cursors` the caller belongs to: up to
/// [`SYNC_MAX_PER_ROOM`] per room and [`SYNC_MAX_TOTAL`] in all (rooms cut short are marked
/// `has_more`). Rooms the caller is not in are returned separately.
pub async fn sync(state: &State, caller: UserId, cursors: SyncCursors) -> ApiResult<(Vec<SyncedRoom>, Vec<RoomId>)> {
    let (found, refused, senders) = state
        .db
        .run(move |conn| {
            let ids: Vec<RoomId> = cursors.iter().map(|(room, _)| room).collect();
            let member_of = access::readable_among(conn, caller, &ids)?;
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
    let mut by_room: HashMap<RoomId, Vec<MessageView>> = HashMap::new();
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
    use crate::db::messages::ROWS_PER_INSERT;
    use crate::db::schema::{messages, rooms};
    use diesel::prelude::*;

    fn send(sender_id: i64, client_id: &str, body: &str) -> SendRequest {
        let sender_id = UserId(sender_id);
        SendRequest {
            room_id: RoomId(1),
            sender_id,
            body: MessageBody::parse(body.into()).unwrap(),
            client_id: ClientId::parse(client_id.into()).unwrap(),
        }
    }

    fn stored_seq(outcome: &Outcome) -> i64 {
        match outcome {
            Outcome::Stored(message) => message.seq.get(),
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
            Outcome::Duplicate(message) => assert_eq!((message.seq, message.body.as_str()), (Seq(1), "first")),
            other => panic!("the retry must return the stored message, got {other:?}"),
        }
        assert_eq!(stored_seq(&batch.outcomes[2]), 3, "the retry's seq goes to the next new send");
        assert!(matches!(&batch.outcomes[3], Outcome::Duplicate(m) if m.seq == Seq(3)));

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
                Outcome::Stored(m) => (m.seq.get(), m.id),
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
                Outcome::Duplicate(message) => assert_eq!((n, message.seq), (ROWS_PER_INSERT + 3, Seq(1))),
                Outcome::Stored(message) => {
                    assert_eq!(message.seq.get(), expected_seq, "send {n}");
                    expected_seq += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        let stored: Vec<(i64, i64)> = messages::table.order(messages::seq).select((messages::seq, messages::id)).load(&mut *conn).unwrap();
        assert_eq!(stored.len() as i64, expected_seq - 1, "every seq stored once, without gaps");
        for outcome in &big.outcomes {
            if let Outcome::Stored(message) = outcome {
                assert!(stored.contains(&(message.seq.get(), message.id)), "{message:?} has the id it was stored with");
            }
        }
    }
}
