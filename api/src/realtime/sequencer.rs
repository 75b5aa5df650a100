//! The sequencer actor (cluster mode): puts stored messages back in room order before the
//! registry fans them out. Two nodes storing in one room commit in seq order but may publish
//! out of it, and a publish can be lost (Redis down, a node killed between commit and publish);
//! a connection must still see each room's seqs without gaps or reordering.
//!
//! Per room it keeps the next seq to hand over and holds later ones. A gap that the channel
//! does not fill within [`GAP_WAIT`] is read from the database (every seq below a stored one
//! is committed). The first message of a room seen here is preceded by what the database holds
//! of the last seconds (a message may be in flight from another node); sessions skip what they
//! already have. After a Redis outage, every room active since the outage is caught up the
//! same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::protocol::MessageFrames;
use super::registry::{Delivery, RegistryHandle};
use crate::db::Db;
use crate::dto::{MessageView, UserPublic};
use crate::error::ApiResult;
use crate::services::messages::{self, FanoutRange};

/// How long a gap may wait for the channel before it is read from the database.
const GAP_WAIT: Duration = Duration::from_millis(40);
/// How far back the first sight of a room looks for messages still in flight.
const IN_FLIGHT_WINDOW: Duration = Duration::from_secs(10);
/// Seqs below the first one seen that are looked at, at most (the look-back is one index range
/// scan of this length; a burst from another node can be this long before this node hears of
/// it).
const IN_FLIGHT_SEQS: i64 = 5000;
/// Messages read from the database per fill.
const FILL_LIMIT: i64 = 500;
/// Database reads the sequencer runs at once, at most.
const CONCURRENT_FILLS: usize = 4;
/// Rooms idle this long are forgotten (their next message is a first sight again).
const ROOM_IDLE: Duration = Duration::from_secs(600);

enum Input {
    Local(Vec<Delivery>),
    Remote(Vec<Delivery>),
    Filled {
        room_id: i64,
        range: FanoutRange,
        result: ApiResult<Vec<Delivery>>,
    },
    /// Catch up on rooms active in the last `missed` (the subscription was down).
    CatchUp(Duration),
    /// Rooms found active during an outage.
    ActiveRooms {
        rooms: Vec<i64>,
        since: chrono::NaiveDateTime,
    },
}

/// The cheap, cloneable address of the sequencer.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::UnboundedSender<Input>,
}

/// Created before the registry (which holds the handle) and started after it.
pub struct SequencerInbox(mpsc::UnboundedReceiver<Input>);

impl Sequencer {
    pub fn channel() -> (Sequencer, SequencerInbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Sequencer { tx }, SequencerInbox(rx))
    }

    /// Starts the actor: it reads fills through `db` and hands ordered messages to `registry`.
    pub fn start(&self, inbox: SequencerInbox, db: Db, registry: RegistryHandle) {
        let fill_slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_FILLS));
        let actor = SequencerActor { rooms: HashMap::new(), gaps: HashSet::new(), db, registry, tx: self.tx.clone(), fill_slots };
        tokio::spawn(actor.run(inbox.0));
    }

    /// Messages this node stored (they may carry the `ack` for a local connection).
    pub fn local(&self, deliveries: Vec<Delivery>) {
        let _ = self.tx.send(Input::Local(deliveries));
    }

    /// Messages another node stored.
    pub fn remote(&self, deliveries: Vec<Delivery>) {
        let _ = self.tx.send(Input::Remote(deliveries));
    }

    /// The subscription was down for about `missed`: read what was published meanwhile.
    pub fn catch_up(&self, missed: Duration) {
        let _ = self.tx.send(Input::CatchUp(missed));
    }
}

#[derive(Default)]
struct RoomOrder {
    /// The seq to hand over next; 0 until known.
    next: i64,
    /// Messages that came early, by seq.
    pending: BTreeMap<i64, Delivery>,
    /// A read from the database is under way.
    filling: bool,
    /// Since when the first pending message waits for an earlier one.
    gap_since: Option<Instant>,
    last_active: Option<Instant>,
}

struct SequencerActor {
    rooms: HashMap<i64, RoomOrder>,
    /// Rooms with a gap, checked on every tick.
    gaps: HashSet<i64>,
    db: Db,
    registry: RegistryHandle,
    tx: mpsc::UnboundedSender<Input>,
    /// Database reads under way, at most [`CONCURRENT_FILLS`].
    fill_slots: Arc<tokio::sync::Semaphore>,
}

impl SequencerActor {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(GAP_WAIT / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep = Instant::now();
        loop {
            let mut ready = Vec::new();
            tokio::select! {
                input = inbox.recv() => {
                    let Some(input) = input else { return };
                    self.handle(input, &mut ready);
                    // Take whatever else is queued, so one hand-over carries a whole burst.
                    while ready.len() < 4096 {
                        let Ok(input) = inbox.try_recv() else { break };
                        self.handle(input, &mut ready);
                    }
                }
                _ = tick.tick() => {
                    self.fill_gaps();
                    if last_sweep.elapsed() > ROOM_IDLE / 10 {
                        last_sweep = Instant::now();
                        self.rooms.retain(|_, room| {
                            room.filling || !room.pending.is_empty() || room.last_active.is_some_and(|at| at.elapsed() < ROOM_IDLE)
                        });
                    }
                }
            }
            if !ready.is_empty() {
                self.registry.deliver_in_order(ready);
            }
        }
    }

    fn handle(&mut self, input: Input, ready: &mut Vec<Delivery>) {
        match input {
            Input::Local(deliveries) | Input::Remote(deliveries) => {
                for delivery in deliveries {
                    self.arrive(delivery, ready);
                }
            }
            Input::Filled { room_id, range, result } => self.filled(room_id, range, result, ready),
            Input::CatchUp(missed) => self.catch_up(missed),
            Input::ActiveRooms { rooms, since } => {
                for room_id in rooms {
                    let room = self.rooms.entry(room_id).or_default();
                    if room.filling {
                        continue;
                    }
                    room.filling = true;
                    let after = (room.next - 1).max(0);
                    let since = (room.next == 0).then_some(since);
                    self.fill(FanoutRange { room_id, after, before: None, since, limit: FILL_LIMIT });
                }
            }
        }
    }

    fn arrive(&mut self, delivery: Delivery, ready: &mut Vec<Delivery>) {
        let (room_id, seq) = (delivery.frames.room_id, delivery.frames.seq);
        let room = self.rooms.entry(room_id).or_default();
        room.last_active = Some(Instant::now());
        if room.next == 0 && !room.filling {
            if seq == 1 {
                room.next = 1;
            } else {
                // First sight: an earlier message may still be on its way from another node.
                room.filling = true;
                room.pending.insert(seq, delivery);
                self.fill(look_back(room_id, seq));
                return;
            }
        }
        if room.next != 0 && seq < room.next {
            // Already handed over (from the database): only the sender's own connection still
            // waits for its ack, in order with what is handed over now.
            if delivery.origin.is_some() {
                ready.push(Delivery { members: Arc::from([]), ..delivery });
            }
            return;
        }
        match room.pending.get(&seq) {
            // Keep the copy that carries a local sender's ack.
            Some(held) if held.origin.is_some() || delivery.origin.is_none() => {}
            _ => {
                room.pending.insert(seq, delivery);
            }
        }
        if !room.filling {
            self.release(room_id, ready);
        }
    }

    /// Hands over the pending messages that follow without a gap.
    fn release(&mut self, room_id: i64, ready: &mut Vec<Delivery>) {
        let Some(room) = self.rooms.get_mut(&room_id) else { return };
        let before = room.next;
        while let Some(delivery) = room.pending.remove(&room.next) {
            ready.push(delivery);
            room.next += 1;
        }
        if room.next != before {
            // A gap that remains is a new one: it gets its own wait.
            room.gap_since = None;
        }
        if room.pending.is_empty() {
            room.gap_since = None;
            self.gaps.remove(&room_id);
        } else {
            room.gap_since.get_or_insert_with(Instant::now);
            self.gaps.insert(room_id);
        }
    }

    /// Reads from the database the gaps that waited long enough.
    fn fill_gaps(&mut self) {
        let mut due = Vec::new();
        for room_id in &self.gaps {
            let Some(room) = self.rooms.get_mut(room_id) else { continue };
            if room.filling || room.gap_since.is_none_or(|at| at.elapsed() < GAP_WAIT) {
                continue;
            }
            let Some(first_held) = room.pending.keys().next().copied() else { continue };
            room.filling = true;
            due.push(FanoutRange { room_id: *room_id, after: room.next - 1, before: Some(first_held), since: None, limit: FILL_LIMIT });
        }
        for range in due {
            self.fill(range);
        }
    }

    fn filled(&mut self, room_id: i64, range: FanoutRange, result: ApiResult<Vec<Delivery>>, ready: &mut Vec<Delivery>) {
        let Some(room) = self.rooms.get_mut(&room_id) else { return };
        room.filling = false;
        let found = match result {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(room_id, error = format!("{error:?}"), "reading missed messages failed; retrying");
                room.gap_since = Some(Instant::now());
                if room.next == 0 {
                    // First sight could not look back: go on from the first message held.
                    room.next = room.pending.keys().next().copied().unwrap_or(0);
                }
                self.gaps.insert(room_id);
                self.release(room_id, ready);
                return;
            }
        };
        let complete = (found.len() as i64) < range.limit;
        if room.next == 0 {
            match (found.first().map(|d| d.frames.seq), room.pending.keys().next().copied()) {
                (Some(first), _) => room.next = first,
                // Nothing read, but a message waits (it came during an unbounded read): look
                // back below it as a first sight does.
                (None, Some(held)) if range.before.is_none() => {
                    room.filling = true;
                    self.fill(look_back(room_id, held));
                    return;
                }
                (None, Some(held)) => room.next = held,
                (None, None) => {
                    // Nothing to order in this room after all.
                    self.rooms.remove(&room_id);
                    return;
                }
            }
        }
        for delivery in found {
            if delivery.frames.seq >= room.next {
                room.pending.entry(delivery.frames.seq).or_insert(delivery);
            }
        }
        // A complete read of a gap below a held message: every seq in it was committed before
        // that message, so those the database lacks (their room was deleted) are not waited
        // for. (An open-ended read proves nothing: later seqs may not be committed yet.)
        if complete && range.since.is_none() && range.before.is_some() {
            let first_held = room.pending.keys().next().copied();
            if let Some(first_held) = first_held.filter(|first| *first > room.next && range.before.is_none_or(|b| b >= *first)) {
                room.next = first_held;
            }
        }
        let read_on = !complete;
        self.release(room_id, ready);
        if read_on && let Some(room) = self.rooms.get_mut(&room_id) {
            // More than one read's worth was missed: go on reading.
            room.filling = true;
            let range =
                FanoutRange { room_id, after: room.next - 1, before: room.pending.keys().next().copied(), since: None, limit: FILL_LIMIT };
            self.fill(range);
        }
    }

    /// After an outage: every room this node orders, and every room active meanwhile, is read
    /// from its next seq on.
    fn catch_up(&mut self, missed: Duration) {
        let since = crate::db::now() - chrono::Duration::from_std(missed + IN_FLIGHT_WINDOW).unwrap_or_default();
        let known: Vec<i64> = self.rooms.iter().filter(|(_, room)| room.next > 0).map(|(id, _)| *id).collect();
        let (db, tx) = (self.db.clone(), self.tx.clone());
        tokio::spawn(async move {
            match db.run(move |conn| messages::rooms_active_since(conn, since)).await {
                Ok(mut rooms) => {
                    rooms.extend(known);
                    rooms.sort_unstable();
                    rooms.dedup();
                    let _ = tx.send(Input::ActiveRooms { rooms, since });
                }
                Err(error) => tracing::error!(error = format!("{error:?}"), "finding rooms active during the Redis outage failed"),
            }
        });
    }

    /// Reads `range` from the database in the background (a few reads at once: a catch-up
    /// over many rooms must not take every connection); the answer comes back as `Filled`.
    fn fill(&self, range: FanoutRange) {
        let (db, registry, tx, slots) = (self.db.clone(), self.registry.clone(), self.tx.clone(), self.fill_slots.clone());
        tokio::spawn(async move {
            let _slot = slots.acquire().await;
            let room_id = range.room_id;
            let result = read_range(&db, &registry, range).await;
            let _ = tx.send(Input::Filled { room_id, range, result });
        });
    }
}

/// What may still be in flight below `held`, the first message seen of a room: the messages
/// of the last few seconds under it.
fn look_back(room_id: i64, held: i64) -> FanoutRange {
    let since = crate::db::now() - chrono::Duration::from_std(IN_FLIGHT_WINDOW).unwrap_or_default();
    FanoutRange { room_id, after: (held - 1 - IN_FLIGHT_SEQS).max(0), before: Some(held), since: Some(since), limit: FILL_LIMIT }
}

/// The messages of `range` as deliveries, with online flags from the registry.
async fn read_range(db: &Db, registry: &RegistryHandle, range: FanoutRange) -> ApiResult<Vec<Delivery>> {
    let messages::FanoutRows { messages: list, members, senders } = db.run(move |conn| messages::for_fanout(conn, &range)).await?;
    let online = registry.online(senders.keys().copied());
    let members: Arc<[i64]> = members.into();
    Ok(list
        .into_iter()
        .filter_map(|message| {
            let sender = senders.get(&message.sender_id)?.clone();
            let online = online.contains(&sender.id);
            let view = MessageView::new(message, UserPublic::new(sender, online));
            Some(Delivery { members: members.clone(), frames: Arc::new(MessageFrames::new(view)), origin: None })
        })
        .collect())
}
