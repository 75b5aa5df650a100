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
//!
//! The ordering rules live in [`RoomOrders`], a synchronous state machine (inputs in, [`Effect`]s
//! out, the time passed in); the actor around it only reads the clock, runs the database reads
//! it asks for and hands what it releases to the registry.

use std::collections::HashSet;
use std::collections::btree_map::BTreeMap;
use std::collections::hash_map::{self, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::mpsc;

use super::delivery::Delivery;
use super::presence::OnlineUsers;
use super::protocol::MessageFrames;
use crate::db::Db;
use crate::db::messages::{self, FanoutRange};
use crate::dto::MessageView;
use crate::error::ApiResult;
use crate::ids::{RoomId, Seq, UserId};

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
/// Deliveries gathered for one hand-over to the registry, about at most (queued inputs are taken
/// until then, so that one hand-over carries a whole burst).
const HAND_OVER_MAX: usize = 4096;

enum Input {
    Local(Vec<Delivery>),
    Remote(Vec<Delivery>),
    /// The answer to the read under way for `room_id`.
    Filled {
        room_id: RoomId,
        result: ApiResult<Vec<Delivery>>,
    },
    /// Catch up on rooms active in the last `missed` (the subscription was down).
    CatchUp(Duration),
    /// Rooms found active during an outage.
    ActiveRooms {
        rooms: Vec<RoomId>,
        since: NaiveDateTime,
    },
    /// Run this once everything that came before is handed over.
    Then(Box<dyn FnOnce() + Send>),
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

    /// Starts the actor: it reads fills through `db` (with senders' online flags from
    /// `online`) and hands ordered messages to `hand_over` (the registry's fan-out).
    pub fn start(&self, inbox: SequencerInbox, db: Db, online: Arc<OnlineUsers>, hand_over: impl Fn(Vec<Delivery>) + Send + 'static) {
        let fill_slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_FILLS));
        let actor = SequencerActor {
            orders: RoomOrders::new(Instant::now()),
            db,
            online,
            hand_over: Box::new(hand_over),
            tx: self.tx.clone(),
            fill_slots,
        };
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

    /// Runs `after` once every message given before it that can be handed over is (for
    /// shutdown: the connections close after their acks). Messages still waiting for an
    /// earlier seq are not waited for.
    pub fn then(&self, after: impl FnOnce() + Send + 'static) {
        let _ = self.tx.send(Input::Then(Box::new(after)));
    }
}

/// The moment an input is handled: the monotonic instant (for waits and idleness) and the
/// database's wall clock (for the `since` of reads).
#[derive(Debug, Clone, Copy)]
pub(super) struct Now {
    pub at: Instant,
    pub wall: NaiveDateTime,
}

impl Now {
    fn read() -> Now {
        Now { at: Instant::now(), wall: crate::db::now() }
    }
}

/// A database read failed (the actor logs why; the rules only need to know that it did).
#[derive(Debug)]
pub(super) struct ReadFailed;

/// What [`RoomOrders`] asks of the actor.
#[derive(Debug)]
pub(super) enum Effect {
    /// Hand these to the registry, in this order.
    Release(Vec<Delivery>),
    /// Read this range from the database and answer with [`RoomOrders::filled`].
    Fill(FanoutRange),
    /// Find the rooms with messages since `since`, add `known`, and answer with
    /// [`RoomOrders::active_rooms`].
    FindActiveRooms { since: NaiveDateTime, known: Vec<RoomId> },
}

/// Where one room's ordering stands.
#[derive(Debug)]
enum Phase {
    /// The next seq is not known yet: the first read, `reading`, is under way (a look-back below
    /// the first message seen, or a catch-up read of everything since a time).
    LookingBack { reading: FanoutRange },
    /// `next` is the seq to hand over next.
    Ordered { next: Seq, wait: Wait },
}

/// What an ordered room waits for.
#[derive(Debug)]
enum Wait {
    /// Nothing: no message is held.
    Nothing,
    /// Held messages wait, since `since`, for an earlier one to come through the channel.
    Gap { since: Instant },
    /// A database read is under way (messages that arrive meanwhile are held). `gap_since` is
    /// the wait it interrupted, which goes on if the read brings nothing new.
    Reading { range: FanoutRange, gap_since: Option<Instant> },
}

impl Wait {
    fn gap_since(&self) -> Option<Instant> {
        match self {
            Wait::Nothing => None,
            Wait::Gap { since } => Some(*since),
            Wait::Reading { gap_since, .. } => *gap_since,
        }
    }
}

#[derive(Debug)]
struct Room {
    phase: Phase,
    /// Messages that came early, by seq.
    held: BTreeMap<Seq, Delivery>,
    /// When a message of the room last arrived (`None`: it was only read from the database).
    last_active: Option<Instant>,
}

impl Room {
    fn reading(&self) -> bool {
        matches!(self.phase, Phase::LookingBack { .. } | Phase::Ordered { wait: Wait::Reading { .. }, .. })
    }

    fn first_held(&self) -> Option<Seq> {
        self.held.keys().next().copied()
    }
}

/// The ordering rules of every room this node has seen (a room absent from it is unknown: its
/// next message is a first sight). Synchronous and clock-free: each input brings its time.
pub(super) struct RoomOrders {
    rooms: HashMap<RoomId, Room>,
    /// Rooms with a gap, checked on every tick (some may be reading or gone since).
    gaps: HashSet<RoomId>,
    last_sweep: Instant,
}

impl RoomOrders {
    pub fn new(now: Instant) -> RoomOrders {
        RoomOrders { rooms: HashMap::new(), gaps: HashSet::new(), last_sweep: now }
    }

    /// Stored messages, from this node or another (the same rules for both).
    pub fn arrive(&mut self, deliveries: Vec<Delivery>, now: Now) -> Vec<Effect> {
        let mut out = Out::default();
        for delivery in deliveries {
            self.arrive_one(delivery, now, &mut out);
        }
        out.into_effects()
    }

    fn arrive_one(&mut self, delivery: Delivery, now: Now, out: &mut Out) {
        let (room_id, seq) = (delivery.frames.room_id, delivery.frames.seq);
        let room = match self.rooms.entry(room_id) {
            hash_map::Entry::Occupied(entry) => entry.into_mut(),
            // A room's first message: nothing can precede it.
            hash_map::Entry::Vacant(entry) if seq == Seq(1) => {
                entry.insert(Room { phase: Phase::Ordered { next: Seq(1), wait: Wait::Nothing }, held: BTreeMap::new(), last_active: None })
            }
            hash_map::Entry::Vacant(entry) => {
                // First sight: an earlier message may still be on its way from another node.
                let reading = look_back(room_id, seq, now.wall);
                let held = BTreeMap::from([(seq, delivery)]);
                entry.insert(Room { phase: Phase::LookingBack { reading }, held, last_active: Some(now.at) });
                out.fills.push(reading);
                return;
            }
        };
        room.last_active = Some(now.at);
        if let Phase::Ordered { next, .. } = room.phase
            && seq < next
        {
            // Already handed over (from the database): only the sender's own connection still
            // waits for its ack, in order with what is handed over now.
            if delivery.origin.is_some() {
                out.released.push(Delivery { members: Arc::from([]), ..delivery });
            }
            return;
        }
        match room.held.get(&seq) {
            // Keep the copy that carries a local sender's ack.
            Some(held) if held.origin.is_some() || delivery.origin.is_none() => {}
            _ => {
                room.held.insert(seq, delivery);
            }
        }
        // While a read is under way, its answer releases what it allows.
        if let Phase::Ordered { next, wait: wait @ (Wait::Nothing | Wait::Gap { .. }) } = &mut room.phase {
            *wait = release(room_id, next, &mut room.held, wait.gap_since(), now.at, &mut self.gaps, &mut out.released);
        }
    }

    /// The answer to the read under way for `room_id`.
    pub fn filled(&mut self, room_id: RoomId, result: Result<Vec<Delivery>, ReadFailed>, now: Now) -> Vec<Effect> {
        let Some(room) = self.rooms.get_mut(&room_id) else { return Vec::new() };
        let (range, known_next, gap_since) = match &room.phase {
            Phase::LookingBack { reading } => (*reading, None, None),
            Phase::Ordered { next, wait: Wait::Reading { range, gap_since } } => (*range, Some(*next), *gap_since),
            // No read under way: there is nothing this could answer (at most one read per room).
            Phase::Ordered { .. } => return Vec::new(),
        };
        let mut out = Out::default();
        let Ok(found) = result else {
            // First sight could not look back: go on from the first message held. (Nothing held:
            // a catch-up read of a room not seen here failed, and the room stays unknown.)
            let Some(mut next) = known_next.or_else(|| room.first_held()) else {
                self.rooms.remove(&room_id);
                return Vec::new();
            };
            // The gap, if one remains, is read again after GAP_WAIT.
            let wait = release(room_id, &mut next, &mut room.held, Some(now.at), now.at, &mut self.gaps, &mut out.released);
            room.phase = Phase::Ordered { next, wait };
            return out.into_effects();
        };
        let complete = (found.len() as i64) < range.limit;
        let mut next = match known_next {
            Some(next) => next,
            None => match (found.first().map(|d| d.frames.seq), room.first_held()) {
                (Some(first), _) => first,
                // Nothing read, but a message waits (it came during an unbounded read): look
                // back below it as a first sight does.
                (None, Some(held)) if range.before.is_none() => {
                    let reading = look_back(room_id, held, now.wall);
                    room.phase = Phase::LookingBack { reading };
                    return vec![Effect::Fill(reading)];
                }
                (None, Some(held)) => held,
                // Nothing to order in this room after all.
                (None, None) => {
                    self.rooms.remove(&room_id);
                    return Vec::new();
                }
            },
        };
        for delivery in found {
            if delivery.frames.seq >= next {
                room.held.entry(delivery.frames.seq).or_insert(delivery);
            }
        }
        // A complete read of a gap below a held message: every seq in it was committed before
        // that message, so those the database lacks (their room was deleted) are not waited
        // for. (An open-ended read proves nothing: later seqs may not be committed yet.)
        if complete
            && range.since.is_none()
            && let Some(before) = range.before
            && let Some(first_held) = room.first_held().filter(|first| *first > next && before >= *first)
        {
            next = first_held;
        }
        let wait = release(room_id, &mut next, &mut room.held, gap_since, now.at, &mut self.gaps, &mut out.released);
        room.phase = if complete {
            Phase::Ordered { next, wait }
        } else {
            // More than one read's worth was missed: go on reading.
            let range = FanoutRange { room_id, after: next - 1, before: room.first_held(), since: None, limit: FILL_LIMIT };
            out.fills.push(range);
            Phase::Ordered { next, wait: Wait::Reading { range, gap_since: wait.gap_since() } }
        };
        out.into_effects()
    }

    /// The clock moved to `now`: gaps that waited [`GAP_WAIT`] are read from the database, and
    /// now and then rooms idle for [`ROOM_IDLE`] are forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Out::default();
        for room_id in &self.gaps {
            let Some(room) = self.rooms.get_mut(room_id) else { continue };
            let first_held = room.first_held();
            let Phase::Ordered { next, wait } = &mut room.phase else { continue };
            let Wait::Gap { since } = *wait else { continue };
            if now.saturating_duration_since(since) < GAP_WAIT {
                continue;
            }
            let Some(first_held) = first_held else { continue };
            let range = FanoutRange { room_id: *room_id, after: *next - 1, before: Some(first_held), since: None, limit: FILL_LIMIT };
            *wait = Wait::Reading { range, gap_since: Some(since) };
            out.fills.push(range);
        }
        if now.saturating_duration_since(self.last_sweep) > ROOM_IDLE / 10 {
            self.last_sweep = now;
            self.rooms.retain(|_, room| {
                room.reading() || !room.held.is_empty() || room.last_active.is_some_and(|at| now.saturating_duration_since(at) < ROOM_IDLE)
            });
        }
        out.into_effects()
    }

    /// The subscription was down for about `missed` (until `wall`): find the rooms active
    /// meanwhile, to read each of them and every room ordered here from its next seq on.
    pub fn catch_up(&self, missed: Duration, wall: NaiveDateTime) -> Vec<Effect> {
        let since = wall - chrono::Duration::from_std(missed + IN_FLIGHT_WINDOW).unwrap_or_default();
        let known = self.rooms.iter().filter(|(_, room)| matches!(room.phase, Phase::Ordered { .. })).map(|(id, _)| *id).collect();
        vec![Effect::FindActiveRooms { since, known }]
    }

    /// The rooms to catch up after an outage (see [`RoomOrders::catch_up`]): each is read from
    /// its next seq on, or everything since `since` when its next seq is not known. A room
    /// already reading is left to that read.
    pub fn active_rooms(&mut self, rooms: Vec<RoomId>, since: NaiveDateTime) -> Vec<Effect> {
        let mut out = Out::default();
        for room_id in rooms {
            match self.rooms.entry(room_id) {
                hash_map::Entry::Vacant(entry) => {
                    let reading = FanoutRange { room_id, after: Seq::ZERO, before: None, since: Some(since), limit: FILL_LIMIT };
                    entry.insert(Room { phase: Phase::LookingBack { reading }, held: BTreeMap::new(), last_active: None });
                    out.fills.push(reading);
                }
                hash_map::Entry::Occupied(entry) => {
                    let Phase::Ordered { next, wait } = &mut entry.into_mut().phase else { continue };
                    if matches!(wait, Wait::Reading { .. }) {
                        continue;
                    }
                    let range = FanoutRange { room_id, after: (*next - 1).max(Seq::ZERO), before: None, since: None, limit: FILL_LIMIT };
                    *wait = Wait::Reading { range, gap_since: wait.gap_since() };
                    out.fills.push(range);
                }
            }
        }
        out.into_effects()
    }
}

/// Hands over the held messages that follow `next` without a gap, and says what the room waits
/// for then; `gap_since` is the wait under way before.
fn release(
    room_id: RoomId,
    next: &mut Seq,
    held: &mut BTreeMap<Seq, Delivery>,
    gap_since: Option<Instant>,
    now: Instant,
    gaps: &mut HashSet<RoomId>,
    released: &mut Vec<Delivery>,
) -> Wait {
    let before = *next;
    while let Some(delivery) = held.remove(next) {
        released.push(delivery);
        *next += 1;
    }
    // A gap that remains is a new one: it gets its own wait.
    let gap_since = if *next != before { None } else { gap_since };
    if held.is_empty() {
        gaps.remove(&room_id);
        Wait::Nothing
    } else {
        gaps.insert(room_id);
        Wait::Gap { since: gap_since.unwrap_or(now) }
    }
}

/// Effects gathered while handling one input: releases in order, then reads.
#[derive(Default)]
struct Out {
    released: Vec<Delivery>,
    fills: Vec<FanoutRange>,
}

impl Out {
    fn into_effects(self) -> Vec<Effect> {
        let release = (!self.released.is_empty()).then_some(Effect::Release(self.released));
        release.into_iter().chain(self.fills.into_iter().map(Effect::Fill)).collect()
    }
}

/// What may still be in flight below `held`, the first message seen of a room: the messages
/// of the last few seconds (before `wall`) under it.
fn look_back(room_id: RoomId, held: Seq, wall: NaiveDateTime) -> FanoutRange {
    let since = wall - chrono::Duration::from_std(IN_FLIGHT_WINDOW).unwrap_or_default();
    FanoutRange { room_id, after: (held - 1 - IN_FLIGHT_SEQS).max(Seq::ZERO), before: Some(held), since: Some(since), limit: FILL_LIMIT }
}

/// The actor around [`RoomOrders`]: it reads the clock, runs the reads asked for, and hands
/// what is released to the registry.
struct SequencerActor {
    orders: RoomOrders,
    db: Db,
    online: Arc<OnlineUsers>,
    hand_over: Box<dyn Fn(Vec<Delivery>) + Send>,
    tx: mpsc::UnboundedSender<Input>,
    /// Database reads under way, at most [`CONCURRENT_FILLS`].
    fill_slots: Arc<tokio::sync::Semaphore>,
}

impl SequencerActor {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(GAP_WAIT / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut ready = Vec::new();
            let mut after_hand_over = Vec::new();
            tokio::select! {
                input = inbox.recv() => {
                    let Some(input) = input else { return };
                    // Take whatever else is queued, so one hand-over carries a whole burst.
                    let mut next = Some(input);
                    while let Some(input) = next.take() {
                        match input {
                            Input::Then(after) => after_hand_over.push(after),
                            input => self.handle(input, &mut ready),
                        }
                        if ready.len() < HAND_OVER_MAX && after_hand_over.is_empty() {
                            next = inbox.try_recv().ok();
                        }
                    }
                }
                _ = tick.tick() => {
                    let effects = self.orders.tick(Instant::now());
                    self.execute(effects, &mut ready);
                }
            }
            if !ready.is_empty() {
                (self.hand_over)(ready);
            }
            for after in after_hand_over {
                after();
            }
        }
    }

    fn handle(&mut self, input: Input, ready: &mut Vec<Delivery>) {
        let now = Now::read();
        let effects = match input {
            Input::Local(deliveries) | Input::Remote(deliveries) => self.orders.arrive(deliveries, now),
            Input::Filled { room_id, result } => {
                let result = result.map_err(|error| {
                    tracing::warn!(room_id = %room_id, error = format!("{error:?}"), "reading missed messages failed; retrying");
                    ReadFailed
                });
                self.orders.filled(room_id, result, now)
            }
            Input::CatchUp(missed) => self.orders.catch_up(missed, now.wall),
            Input::ActiveRooms { rooms, since } => self.orders.active_rooms(rooms, since),
            // `run` takes these before they come here.
            Input::Then(after) => {
                after();
                Vec::new()
            }
        };
        self.execute(effects, ready);
    }

    fn execute(&self, effects: Vec<Effect>, ready: &mut Vec<Delivery>) {
        for effect in effects {
            match effect {
                Effect::Release(deliveries) => ready.extend(deliveries),
                Effect::Fill(range) => self.fill(range),
                Effect::FindActiveRooms { since, known } => self.find_active_rooms(since, known),
            }
        }
    }

    /// Reads `range` from the database in the background (a few reads at once: a catch-up
    /// over many rooms must not take every connection); the answer comes back as `Filled`.
    fn fill(&self, range: FanoutRange) {
        let (db, online, tx, slots) = (self.db.clone(), self.online.clone(), self.tx.clone(), self.fill_slots.clone());
        tokio::spawn(async move {
            let _slot = slots.acquire().await;
            let room_id = range.room_id;
            let result = read_range(&db, &online, range).await;
            let _ = tx.send(Input::Filled { room_id, result });
        });
    }

    /// Finds the rooms with messages since `since` in the background; with `known`, they come
    /// back as `ActiveRooms`.
    fn find_active_rooms(&self, since: NaiveDateTime, known: Vec<RoomId>) {
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
}

/// The messages of `range` as deliveries, with the senders' online flags.
async fn read_range(db: &Db, online: &OnlineUsers, range: FanoutRange) -> ApiResult<Vec<Delivery>> {
    let messages::FanoutRows { messages: list, members, senders } = db.run(move |conn| messages::for_fanout(conn, &range)).await?;
    let online = online.among(senders.keys().copied());
    let members: Arc<[UserId]> = members.into();
    Ok(list
        .into_iter()
        .filter_map(|message| MessageView::assemble(message, &senders, &online))
        .map(|view| Delivery { members: members.clone(), frames: Arc::new(MessageFrames::new(view)), origin: None })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::delivery::SessionId;

    const ROOM: RoomId = RoomId(3);
    const OTHER_ROOM: RoomId = RoomId(4);
    /// The connection that sent the messages stored here, in tests.
    const SENDER: SessionId = 42;

    /// A clock for the tests: `start` plus some milliseconds.
    struct Clock {
        start: Instant,
        wall: NaiveDateTime,
    }

    impl Clock {
        fn new() -> Clock {
            Clock { start: Instant::now(), wall: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap().naive_utc() }
        }

        fn at(&self, millis: u64) -> Now {
            let elapsed = Duration::from_millis(millis);
            Now { at: self.start + elapsed, wall: self.wall + chrono::Duration::from_std(elapsed).unwrap() }
        }
    }

    fn message(seq: i64) -> Delivery {
        message_in(ROOM, seq)
    }

    fn message_in(room_id: RoomId, seq: i64) -> Delivery {
        let frames = MessageFrames::encoded(room_id, Seq(seq), format!("m{seq}").into(), format!("c{seq}").into());
        Delivery { members: Arc::from([UserId(1), UserId(2)]), frames: Arc::new(frames), origin: None }
    }

    /// A message stored here, carrying its sender's ack.
    fn sent_here(seq: i64) -> Delivery {
        Delivery { origin: Some(SENDER), ..message(seq) }
    }

    fn messages(seqs: impl IntoIterator<Item = i64>) -> Vec<Delivery> {
        seqs.into_iter().map(message).collect()
    }

    /// The seqs released, in order.
    fn released(effects: &[Effect]) -> Vec<i64> {
        released_deliveries(effects).iter().map(|delivery| delivery.frames.seq.get()).collect()
    }

    fn released_deliveries(effects: &[Effect]) -> Vec<&Delivery> {
        effects
            .iter()
            .flat_map(|effect| match effect {
                Effect::Release(deliveries) => deliveries.iter().collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// A read asked for, as (room, after, before, since, limit).
    type Read = (RoomId, i64, Option<i64>, Option<NaiveDateTime>, i64);

    /// The reads asked for.
    fn fills(effects: &[Effect]) -> Vec<Read> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Fill(range) => Some((range.room_id, range.after.get(), range.before.map(Seq::get), range.since, range.limit)),
                _ => None,
            })
            .collect()
    }

    fn wall_minus(now: Now, duration: Duration) -> NaiveDateTime {
        now.wall - chrono::Duration::from_std(duration).unwrap()
    }

    /// A room ordered here up to `last` (released from its first message on).
    fn ordered_up_to(clock: &Clock, last: i64) -> RoomOrders {
        let mut orders = RoomOrders::new(clock.at(0).at);
        assert_eq!(released(&orders.arrive(messages(1..=last), clock.at(0))), (1..=last).collect::<Vec<_>>());
        orders
    }

    #[test]
    fn in_order_arrival_is_released_at_once() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0).at);
        let effects = orders.arrive(messages([1, 2]), clock.at(0));
        assert_eq!(released(&effects), [1, 2]);
        assert!(fills(&effects).is_empty());
        assert_eq!(released(&orders.arrive(messages([3]), clock.at(1))), [3]);
        assert!(orders.tick(clock.at(1000).at).is_empty());
    }

    #[test]
    fn out_of_order_arrival_is_held_then_released_in_order() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        assert!(orders.arrive(messages([4, 3]), clock.at(1)).is_empty());
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(2))), [2, 3, 4]);
        // Nothing is held any more: no read is ever due.
        assert!(orders.tick(clock.at(1000).at).is_empty());
    }

    #[test]
    fn duplicate_arrival_is_released_once_keeping_the_copy_with_the_local_ack() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        assert!(orders.arrive(vec![message(3), sent_here(3), message(3)], clock.at(1)).is_empty());
        let effects = orders.arrive(vec![message(2), message(2)], clock.at(2));
        let deliveries = released_deliveries(&effects);
        assert_eq!(deliveries.iter().map(|d| (d.frames.seq.get(), d.origin)).collect::<Vec<_>>(), [(2, None), (3, Some(SENDER))]);
        // A copy of what was handed over, without an ack, is dropped.
        assert!(orders.arrive(messages([2, 3]), clock.at(3)).is_empty());
    }

    #[test]
    fn an_already_released_seq_carrying_an_ack_passes_only_the_ack() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 2);
        let effects = orders.arrive(vec![sent_here(2)], clock.at(1));
        let deliveries = released_deliveries(&effects);
        assert_eq!(deliveries.len(), 1);
        assert_eq!((deliveries[0].frames.seq.get(), deliveries[0].origin), (2, Some(SENDER)));
        assert!(deliveries[0].members.is_empty(), "the members had it already");
    }

    #[test]
    fn a_gap_is_read_from_the_database_after_gap_wait_and_the_read_releases_in_order() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        assert!(orders.arrive(messages([4]), clock.at(10)).is_empty());
        assert!(orders.tick(clock.at(10 + 39).at).is_empty(), "the gap waits GAP_WAIT for the channel");
        let effects = orders.tick(clock.at(10 + 40).at);
        assert_eq!(fills(&effects), [(ROOM, 1, Some(4), None, FILL_LIMIT)]);
        assert!(orders.tick(clock.at(200).at).is_empty(), "one read at a time");
        // What arrives meanwhile waits for the read.
        assert!(orders.arrive(messages([5]), clock.at(201)).is_empty());
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([2, 3])), clock.at(202))), [2, 3, 4, 5]);
        assert!(orders.tick(clock.at(1000).at).is_empty());
    }

    #[test]
    fn a_gap_filled_by_the_channel_before_gap_wait_is_never_read() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3]), clock.at(0));
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(20))), [2, 3]);
        assert!(orders.tick(clock.at(100).at).is_empty());
    }

    #[test]
    fn a_remaining_gap_after_progress_gets_its_own_wait() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3, 5]), clock.at(0));
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(30))), [2, 3]);
        assert!(orders.tick(clock.at(50).at).is_empty(), "the gap below 5 waits from 30 ms");
        assert_eq!(fills(&orders.tick(clock.at(70).at)), [(ROOM, 3, Some(5), None, FILL_LIMIT)]);
    }

    #[test]
    fn a_complete_read_below_a_held_message_skips_the_seqs_the_database_lacks() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([5]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40).at)), [(ROOM, 1, Some(5), None, FILL_LIMIT)]);
        // 2 is skipped up to the first message held (3, read); the gap at 4 is a new one.
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([3])), clock.at(41))), [3]);
        assert!(orders.tick(clock.at(80).at).is_empty());
        assert_eq!(fills(&orders.tick(clock.at(81).at)), [(ROOM, 3, Some(5), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(Vec::new()), clock.at(82))), [5]);
        assert!(orders.tick(clock.at(1000).at).is_empty());
    }

    #[test]
    fn an_open_ended_read_skips_nothing() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 4);
        assert_eq!(fills(&orders.active_rooms(vec![ROOM], clock.wall)).len(), 1);
        assert!(orders.arrive(messages([7]), clock.at(1)).is_empty());
        // Seq 6 may not be committed yet: 7 waits for it, then for a read below it.
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([5])), clock.at(2))), [5]);
        assert_eq!(fills(&orders.tick(clock.at(42).at)), [(ROOM, 5, Some(7), None, FILL_LIMIT)]);
    }

    #[test]
    fn first_sight_looks_back_and_releases_the_looked_back_messages_first() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0).at);
        let now = clock.at(0);
        let effects = orders.arrive(messages([9000]), now);
        assert!(released(&effects).is_empty());
        let since = wall_minus(now, IN_FLIGHT_WINDOW);
        assert_eq!(fills(&effects), [(ROOM, 9000 - 1 - IN_FLIGHT_SEQS, Some(9000), Some(since), FILL_LIMIT)]);
        // Low seqs look back from the room's start.
        assert_eq!(fills(&orders.arrive(vec![message_in(OTHER_ROOM, 7)], now)), [(OTHER_ROOM, 0, Some(7), Some(since), FILL_LIMIT)]);
        // What arrives during the look-back waits for it.
        assert!(orders.arrive(messages([9001]), clock.at(1)).is_empty());
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([8998, 8999])), clock.at(2))), [8998, 8999, 9000, 9001]);
        // Nothing in flight: the first message seen is the first handed over.
        assert_eq!(released(&orders.filled(OTHER_ROOM, Ok(Vec::new()), clock.at(2))), [7]);
    }

    #[test]
    fn a_failed_gap_read_is_retried_after_gap_wait() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40).at)).len(), 1);
        assert!(orders.filled(ROOM, Err(ReadFailed), clock.at(100)).is_empty());
        assert!(orders.tick(clock.at(139).at).is_empty(), "the retry waits GAP_WAIT from the failure");
        assert_eq!(fills(&orders.tick(clock.at(140).at)), [(ROOM, 1, Some(3), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([2])), clock.at(141))), [2, 3]);
    }

    #[test]
    fn a_failed_first_sight_read_goes_on_from_the_first_held_message() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0).at);
        orders.arrive(messages([10]), clock.at(0));
        orders.arrive(messages([12]), clock.at(1));
        assert_eq!(released(&orders.filled(ROOM, Err(ReadFailed), clock.at(5))), [10]);
        // The gap above it is an ordinary one, read after GAP_WAIT.
        assert!(orders.tick(clock.at(44).at).is_empty());
        assert_eq!(fills(&orders.tick(clock.at(45).at)), [(ROOM, 10, Some(12), None, FILL_LIMIT)]);
    }

    #[test]
    fn an_incomplete_read_reads_on_from_where_it_stopped() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        let first_held = 2 + FILL_LIMIT + 10;
        orders.arrive(messages([first_held]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40).at)).len(), 1);
        let effects = orders.filled(ROOM, Ok(messages(2..2 + FILL_LIMIT)), clock.at(41));
        assert_eq!(released(&effects), (2..2 + FILL_LIMIT).collect::<Vec<_>>());
        assert_eq!(fills(&effects), [(ROOM, 1 + FILL_LIMIT, Some(first_held), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages(2 + FILL_LIMIT..first_held)), clock.at(42))).len(), 11);
    }

    #[test]
    fn node_loss_and_return_catches_up_every_active_room_from_its_next_seq() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 4);
        let now = clock.at(1000);
        let missed = Duration::from_secs(30);
        let effects = orders.catch_up(missed, now.wall);
        let since = wall_minus(now, missed + IN_FLIGHT_WINDOW);
        assert!(matches!(effects.as_slice(), [Effect::FindActiveRooms { since: s, known }] if *s == since && known == &[ROOM]));
        // The room ordered here reads from its next seq; one not seen here reads all since then.
        let other = OTHER_ROOM;
        let effects = orders.active_rooms(vec![ROOM, other], since);
        assert_eq!(fills(&effects), [(ROOM, 4, None, None, FILL_LIMIT), (other, 0, None, Some(since), FILL_LIMIT)]);
        // A room already reading is left to that read.
        assert!(orders.active_rooms(vec![ROOM, other], since).is_empty());
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([5, 6])), clock.at(1001))), [5, 6]);
        let missed_there = vec![message_in(other, 30), message_in(other, 31)];
        assert_eq!(released(&orders.filled(other, Ok(missed_there), clock.at(1001))), [30, 31]);
        assert_eq!(released(&orders.arrive(vec![message_in(other, 32)], clock.at(1002))), [32]);
    }

    #[test]
    fn an_empty_open_read_while_a_message_waits_looks_back_below_it() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0).at);
        let since = clock.wall;
        assert_eq!(fills(&orders.active_rooms(vec![ROOM], since)).len(), 1);
        assert!(orders.arrive(messages([7]), clock.at(1)).is_empty());
        let effects = orders.filled(ROOM, Ok(Vec::new()), clock.at(2));
        assert_eq!(fills(&effects), [(ROOM, 0, Some(7), Some(wall_minus(clock.at(2), IN_FLIGHT_WINDOW)), FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([6])), clock.at(3))), [6, 7]);
    }

    #[test]
    fn an_empty_catch_up_read_of_a_room_not_seen_here_forgets_it() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0).at);
        orders.active_rooms(vec![ROOM], clock.wall);
        assert!(orders.filled(ROOM, Ok(Vec::new()), clock.at(1)).is_empty());
        // Its next message is a first sight.
        assert_eq!(fills(&orders.arrive(messages([5]), clock.at(2))).len(), 1);
    }

    #[test]
    fn an_idle_room_is_forgotten_and_its_next_message_is_a_first_sight_again() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 2);
        let idle = ROOM_IDLE.as_millis() as u64;
        assert!(orders.tick(clock.at(idle - 1).at).is_empty());
        assert_eq!(released(&orders.arrive(messages([3]), clock.at(idle))), [3], "a sweep before ROOM_IDLE keeps the room");
        orders.tick(clock.at(2 * idle + 1).at);
        let effects = orders.arrive(messages([4]), clock.at(2 * idle + 2));
        assert!(released(&effects).is_empty());
        assert_eq!(fills(&effects).len(), 1);
    }

    #[tokio::test]
    async fn what_runs_after_a_hand_over_follows_every_message_given_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap();
        let (sequencer, inbox) = Sequencer::channel();
        let (events, mut seen) = mpsc::unbounded_channel();
        let handed = events.clone();
        sequencer.start(inbox, db, Arc::new(OnlineUsers::default()), move |ready| {
            for delivery in ready {
                let _ = handed.send(Some(delivery.frames.seq.get()));
            }
        });
        sequencer.local(vec![message(1), message(2)]);
        sequencer.then(move || {
            let _ = events.send(None);
        });
        let mut order = Vec::new();
        while let Some(event) = seen.recv().await {
            order.push(event);
            if event.is_none() {
                break;
            }
        }
        assert_eq!(order, [Some(1), Some(2), None]);
    }
}
