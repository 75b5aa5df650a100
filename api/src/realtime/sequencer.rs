//! The sequencer actor (cluster mode): puts stored messages back in room order before the
//! registry fans them out. Two nodes storing in one room commit in seq order but may publish
//! out of it, and a publish can be lost (Redis down, a node killed between commit and publish);
//! a connection must still see each room's seqs without gaps or reordering, and must not wait
//! for the room's next message to get one whose publish was lost.
//!
//! Per room it keeps the next seq to hand over and holds later ones. A gap that the channel
//! does not fill within [`GAP_WAIT`] is read from the database (every seq below a stored one
//! is committed). Every [`AUDIT_EVERY`] the node asks the database for the last seq of each
//! room active lately and treats a last seq it has not handed over as a gap: a lost publish is
//! repaired within seconds, even if the room stays quiet, and even while Redis is down.
//!
//! A room is known from its first message on, for as long as the node runs (idle rooms shrink
//! to their next seq). The first sight of a room looks below it, bounded by seq, for what was
//! stored since this node started listening (its floor): no session here was sent that by
//! anyone else, and sessions skip what they already have.
//!
//! The ordering rules live in [`RoomOrders`], a synchronous state machine (inputs in, [`Effect`]s
//! out, the time passed in); the actor around it only reads the clock, runs the database reads
//! it asks for and hands what it releases to the registry.

use std::collections::HashSet;
use std::collections::btree_map::{self, BTreeMap};
use std::collections::hash_map::{self, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::mpsc;

use super::delivery::Delivery;
use super::link::ClusterStats;
use super::presence::OnlineUsers;
use super::protocol::MessageFrames;
use crate::db::Db;
use crate::db::messages::{self, FanoutRange};
use crate::dto::MessageView;
use crate::error::ApiResult;
use crate::ids::{RoomId, Seq, UserId};

/// How long a gap may wait for the channel before it is read from the database.
const GAP_WAIT: Duration = Duration::from_millis(40);
/// How often the database is asked for the last seq of the rooms active lately.
pub const AUDIT_EVERY: Duration = Duration::from_secs(2);
/// How far the clocks of two nodes may disagree: reads by creation time (the audit, the
/// floor of a first sight) reach back this much further.
const CLOCK_MARGIN: Duration = Duration::from_secs(10);
/// Seqs below the first one seen that are looked at, at most (the look-back is one index range
/// scan of this length).
const LOOK_BACK_SEQS: i64 = 5000;
/// Messages read from the database per fill.
const FILL_LIMIT: i64 = 500;
/// Database reads the sequencer runs at once, at most.
const CONCURRENT_FILLS: usize = 4;
/// Rooms idle this long shrink to their next seq.
const ROOM_IDLE: Duration = Duration::from_secs(600);
/// Idle rooms remembered, at most; past it they are forgotten and the floor moves up to now.
const SETTLED_MAX: usize = 1_000_000;
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
    /// The answer to the audit under way.
    Audited(ApiResult<Vec<(RoomId, Seq)>>),
    /// The subscription was down for about this long: audit it at once.
    CatchUp(Duration),
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
    /// `online`), hands ordered messages to `hand_over` (the registry's fan-out) and counts the
    /// messages the database supplied in `stats`.
    pub fn start(
        &self,
        inbox: SequencerInbox,
        db: Db,
        online: Arc<OnlineUsers>,
        stats: Arc<ClusterStats>,
        hand_over: impl Fn(Vec<Delivery>) + Send + 'static,
    ) {
        let fill_slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_FILLS));
        let actor = SequencerActor {
            orders: RoomOrders::new(Now::read()),
            db,
            online,
            stats,
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

    /// The subscription was down for about `missed`: audit the rooms active meanwhile now.
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
/// wall clock (for reads by creation time).
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
    /// Find the last seq of every room active since `since` and answer with
    /// [`RoomOrders::audited`].
    Audit { since: NaiveDateTime },
}

/// Where one room's ordering stands.
#[derive(Debug)]
enum Phase {
    /// The next seq is not known yet: `range` is read to learn it (the look-back of a first
    /// sight). `failed_at`: the last read failed then, and is tried again after [`GAP_WAIT`].
    LookingBack { range: FanoutRange, failed_at: Option<Instant> },
    /// `next` is the seq to hand over next.
    Ordered { next: Seq, wait: Wait },
}

/// What an ordered room waits for.
#[derive(Debug)]
enum Wait {
    /// Nothing: every seq the room is known to have is handed over.
    Nothing,
    /// Since `since`, for a seq below one held or one the database has (an audit said so) to
    /// come through the channel.
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
    /// The highest seq the database is known to have (an audit said so); those not handed over
    /// yet are waited for as a gap.
    committed: Seq,
    /// When a message of the room last arrived (`None`: it was only read from the database).
    last_active: Option<Instant>,
}

impl Room {
    fn new(phase: Phase) -> Room {
        Room { phase, held: BTreeMap::new(), committed: Seq::ZERO, last_active: None }
    }

    fn first_held(&self) -> Option<Seq> {
        self.held.keys().next().copied()
    }

    /// Where a read that fills the gap above `next` ends (exclusive): at the first message
    /// held, or past the last one the database is known to have. `None`: no gap.
    fn gap_end(&self, next: Seq) -> Option<Seq> {
        let committed = (self.committed >= next).then_some(self.committed + 1);
        match (self.first_held(), committed) {
            (Some(held), Some(committed)) => Some(held.min(committed)),
            (held, committed) => held.or(committed),
        }
    }

    /// Hands over the held messages that follow `next` without a gap, and says what the room
    /// waits for then; `gap_since` is the wait under way before.
    fn release(
        &mut self,
        room_id: RoomId,
        next: &mut Seq,
        gap_since: Option<Instant>,
        now: Instant,
        gaps: &mut HashSet<RoomId>,
        released: &mut Vec<Delivery>,
    ) -> Wait {
        let before = *next;
        while let Some(delivery) = self.held.remove(next) {
            released.push(delivery);
            *next += 1;
        }
        // A gap that remains is a new one: it gets its own wait.
        let gap_since = if *next != before { None } else { gap_since };
        if self.gap_end(*next).is_none() {
            gaps.remove(&room_id);
            Wait::Nothing
        } else {
            gaps.insert(room_id);
            Wait::Gap { since: gap_since.unwrap_or(now) }
        }
    }
}

/// The state of the periodic audit.
struct Audit {
    /// The next audit looks at rooms active since then.
    since: NaiveDateTime,
    /// The `since` of the audit under way.
    running: Option<NaiveDateTime>,
    /// When the last one started (`None`: one is due now).
    last_started: Option<Instant>,
}

/// The ordering rules of every room this node has seen. Synchronous and clock-free: each input
/// brings its time.
pub(super) struct RoomOrders {
    /// Rooms active lately, or with a read or a gap under way.
    rooms: HashMap<RoomId, Room>,
    /// Idle rooms: the next seq of each (a room in neither map is one not seen here).
    settled: HashMap<RoomId, Seq>,
    /// Rooms with a gap or a failed look-back, checked on every tick (some may be reading or
    /// gone since).
    gaps: HashSet<RoomId>,
    /// Messages created before this reached this node's sessions by `sync`: a first sight looks
    /// back no further.
    floor: NaiveDateTime,
    audit: Audit,
    last_sweep: Instant,
    /// Messages handed over from a database read that the channel had not brought (yet).
    pub repaired: u64,
}

impl RoomOrders {
    /// Rules for a node that starts listening at `now`.
    pub fn new(now: Now) -> RoomOrders {
        let floor = minus(now.wall, CLOCK_MARGIN);
        RoomOrders {
            rooms: HashMap::new(),
            settled: HashMap::new(),
            gaps: HashSet::new(),
            floor,
            audit: Audit { since: floor, running: None, last_started: Some(now.at) },
            last_sweep: now.at,
            repaired: 0,
        }
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
            hash_map::Entry::Vacant(entry) => match self.settled.remove(&room_id) {
                Some(next) => entry.insert(Room::new(Phase::Ordered { next, wait: Wait::Nothing })),
                // A room's first message: nothing can precede it.
                None if seq == Seq(1) => entry.insert(Room::new(Phase::Ordered { next: Seq(1), wait: Wait::Nothing })),
                None => {
                    // First sight: an earlier message may still be on its way, or lost.
                    let range = look_back(room_id, seq, self.floor);
                    let room = entry.insert(Room::new(Phase::LookingBack { range, failed_at: None }));
                    room.held.insert(seq, delivery);
                    room.last_active = Some(now.at);
                    out.fills.push(range);
                    return;
                }
            },
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
        if let Phase::Ordered { next, wait: wait @ (Wait::Nothing | Wait::Gap { .. }) } = &room.phase {
            let (mut next, gap_since) = (*next, wait.gap_since());
            let wait = room.release(room_id, &mut next, gap_since, now.at, &mut self.gaps, &mut out.released);
            room.phase = Phase::Ordered { next, wait };
        }
    }

    /// The answer to the read under way for `room_id`.
    pub fn filled(&mut self, room_id: RoomId, result: Result<Vec<Delivery>, ReadFailed>, now: Now) -> Vec<Effect> {
        let Some(room) = self.rooms.get_mut(&room_id) else { return Vec::new() };
        let (range, known_next, gap_since) = match &room.phase {
            Phase::LookingBack { range, failed_at: None } => (*range, None, None),
            Phase::Ordered { next, wait: Wait::Reading { range, gap_since } } => (*range, Some(*next), *gap_since),
            // No read under way: there is nothing this could answer (at most one read per room).
            _ => return Vec::new(),
        };
        let mut out = Out::default();
        let Ok(found) = result else {
            // Tried again after GAP_WAIT: the look-back as it was, a gap read as a gap.
            room.phase = match known_next {
                None => Phase::LookingBack { range, failed_at: Some(now.at) },
                Some(next) => Phase::Ordered { next, wait: Wait::Gap { since: now.at } },
            };
            self.gaps.insert(room_id);
            return Vec::new();
        };
        let complete = (found.len() as i64) < range.limit;
        // A look-back starts at the first message it found: what it did not find below is
        // older than the floor (or the first message held, if one came in late).
        let mut next = known_next.unwrap_or_else(|| {
            [found.first().map(|d| d.frames.seq), room.first_held(), range.before].into_iter().flatten().min().unwrap_or(range.after + 1)
        });
        for delivery in found {
            if delivery.frames.seq >= next
                && let btree_map::Entry::Vacant(entry) = room.held.entry(delivery.frames.seq)
            {
                entry.insert(delivery);
                self.repaired += 1;
            }
        }
        // A complete read of a gap: every seq below its end was committed before the message
        // or audit that bounds it, so those the database lacks (their room was deleted) are
        // not waited for. (A look-back proves nothing below the floor.)
        if complete
            && range.since.is_none()
            && let Some(end) = range.before
            && end > next
        {
            while let Some(entry) = room.held.first_entry().filter(|entry| *entry.key() < end) {
                out.released.push(entry.remove());
            }
            next = end;
        }
        let wait = room.release(room_id, &mut next, gap_since, now.at, &mut self.gaps, &mut out.released);
        room.phase = match room.gap_end(next).filter(|_| !complete) {
            // More than one read's worth was missed: go on reading.
            Some(end) => {
                let range = FanoutRange { room_id, after: next - 1, before: Some(end), since: None, limit: FILL_LIMIT };
                out.fills.push(range);
                Phase::Ordered { next, wait: Wait::Reading { range, gap_since: wait.gap_since() } }
            }
            None => Phase::Ordered { next, wait },
        };
        out.into_effects()
    }

    /// The clock moved to `now`: gaps that waited [`GAP_WAIT`] are read from the database, an
    /// audit is started when one is due, and now and then idle rooms shrink.
    pub fn tick(&mut self, now: Now) -> Vec<Effect> {
        let mut out = Out::default();
        let waited = |since: Instant| now.at.saturating_duration_since(since) >= GAP_WAIT;
        self.gaps.retain(|room_id| {
            let Some(room) = self.rooms.get_mut(room_id) else { return false };
            let end = match room.phase {
                Phase::Ordered { next, .. } => room.gap_end(next),
                Phase::LookingBack { .. } => None,
            };
            match &mut room.phase {
                Phase::LookingBack { range, failed_at } => {
                    if failed_at.is_some_and(|at| !waited(at)) {
                        return true;
                    }
                    if failed_at.take().is_some() {
                        out.fills.push(*range);
                    }
                    false
                }
                Phase::Ordered { wait: Wait::Reading { .. }, .. } => true,
                Phase::Ordered { next, wait } => {
                    let (Wait::Gap { since }, Some(end)) = (&*wait, end) else {
                        *wait = Wait::Nothing;
                        return false;
                    };
                    let since = *since;
                    if waited(since) {
                        let range = FanoutRange { room_id: *room_id, after: *next - 1, before: Some(end), since: None, limit: FILL_LIMIT };
                        *wait = Wait::Reading { range, gap_since: Some(since) };
                        out.fills.push(range);
                    }
                    true
                }
            }
        });
        if self.audit.running.is_none() && self.audit.last_started.is_none_or(|at| now.at.saturating_duration_since(at) >= AUDIT_EVERY) {
            let since = self.audit.since;
            self.audit = Audit { since: minus(now.wall, CLOCK_MARGIN), running: Some(since), last_started: Some(now.at) };
            out.audits.push(since);
        }
        if now.at.saturating_duration_since(self.last_sweep) > ROOM_IDLE / 10 {
            self.last_sweep = now.at;
            self.shrink_idle_rooms(now);
        }
        out.into_effects()
    }

    /// Rooms with nothing under way and no message for [`ROOM_IDLE`] keep only their next seq.
    fn shrink_idle_rooms(&mut self, now: Now) {
        let idle = |room: &Room| room.last_active.is_none_or(|at| now.at.saturating_duration_since(at) >= ROOM_IDLE);
        let settled = &mut self.settled;
        self.rooms.retain(|room_id, room| match room.phase {
            Phase::Ordered { next, wait: Wait::Nothing } if room.held.is_empty() && idle(room) => {
                settled.insert(*room_id, next);
                false
            }
            _ => true,
        });
        if self.settled.len() > SETTLED_MAX {
            // Too many to remember: forget them, and look back no further than now.
            tracing::warn!(rooms = self.settled.len(), "forgetting the order of idle rooms");
            self.settled = HashMap::new();
            self.floor = minus(now.wall, CLOCK_MARGIN);
        }
    }

    /// The subscription was down for about `missed` (until `wall`): audit the rooms active
    /// meanwhile at the next tick.
    pub fn catch_up(&mut self, missed: Duration, wall: NaiveDateTime) {
        self.audit.since = self.audit.since.min(minus(wall, missed + CLOCK_MARGIN));
        self.audit.last_started = None;
    }

    /// The answer to the audit under way: the last seq of each room active since its `since`.
    /// A seq not handed over yet is a gap (read after [`GAP_WAIT`] unless the channel brings
    /// it); a room not seen here is looked back on, as a first sight.
    pub fn audited(&mut self, result: Result<Vec<(RoomId, Seq)>, ReadFailed>, now: Now) -> Vec<Effect> {
        let Some(since) = self.audit.running.take() else { return Vec::new() };
        let Ok(rooms) = result else {
            // The next audit covers this one's span too.
            self.audit.since = self.audit.since.min(since);
            return Vec::new();
        };
        let mut out = Out::default();
        for (room_id, last) in rooms {
            let room = match self.rooms.entry(room_id) {
                hash_map::Entry::Occupied(entry) => entry.into_mut(),
                hash_map::Entry::Vacant(entry) => match self.settled.get(&room_id) {
                    Some(next) if *next > last => continue,
                    Some(_) => {
                        let next = self.settled.remove(&room_id).unwrap_or(Seq(1));
                        entry.insert(Room::new(Phase::Ordered { next, wait: Wait::Nothing }))
                    }
                    None => {
                        let range = look_back(room_id, last + 1, self.floor);
                        out.fills.push(range);
                        entry.insert(Room::new(Phase::LookingBack { range, failed_at: None }))
                    }
                },
            };
            room.committed = room.committed.max(last);
            if let Phase::Ordered { next, wait: wait @ Wait::Nothing } = &mut room.phase
                && last >= *next
            {
                *wait = Wait::Gap { since: now.at };
                self.gaps.insert(room_id);
            }
        }
        out.into_effects()
    }
}

fn minus(wall: NaiveDateTime, duration: Duration) -> NaiveDateTime {
    wall - chrono::Duration::from_std(duration).unwrap_or_default()
}

/// Effects gathered while handling one input: releases in order, then reads.
#[derive(Default)]
struct Out {
    released: Vec<Delivery>,
    fills: Vec<FanoutRange>,
    audits: Vec<NaiveDateTime>,
}

impl Out {
    fn into_effects(self) -> Vec<Effect> {
        let release = (!self.released.is_empty()).then_some(Effect::Release(self.released));
        release
            .into_iter()
            .chain(self.fills.into_iter().map(Effect::Fill))
            .chain(self.audits.into_iter().map(|since| Effect::Audit { since }))
            .collect()
    }
}

/// What may be missing below `before`, the first seq of a room seen here: the messages under
/// it stored since the node's `floor`.
fn look_back(room_id: RoomId, before: Seq, floor: NaiveDateTime) -> FanoutRange {
    FanoutRange {
        room_id,
        after: (before - 1 - LOOK_BACK_SEQS).max(Seq::ZERO),
        before: Some(before),
        since: Some(floor),
        limit: FILL_LIMIT,
    }
}

/// The actor around [`RoomOrders`]: it reads the clock, runs the reads asked for, and hands
/// what is released to the registry.
struct SequencerActor {
    orders: RoomOrders,
    db: Db,
    online: Arc<OnlineUsers>,
    stats: Arc<ClusterStats>,
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
                    let effects = self.orders.tick(Now::read());
                    self.execute(effects, &mut ready);
                }
            }
            self.stats.repaired.store(self.orders.repaired, std::sync::atomic::Ordering::Relaxed);
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
            Input::Audited(result) => {
                let result = result.map_err(|error| {
                    tracing::warn!(error = format!("{error:?}"), "auditing the rooms' last seqs failed; retrying");
                    ReadFailed
                });
                self.orders.audited(result, now)
            }
            Input::CatchUp(missed) => {
                self.orders.catch_up(missed, now.wall);
                Vec::new()
            }
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
                Effect::Audit { since } => self.audit(since),
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

    /// Reads the last seq of the rooms active since `since` in the background; the answer comes
    /// back as `Audited`.
    fn audit(&self, since: NaiveDateTime) {
        let (db, tx) = (self.db.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = db.run(move |conn| messages::rooms_active_since(conn, since)).await;
            let _ = tx.send(Input::Audited(result));
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

    /// The floor of rules started at the clock's start.
    fn floor(clock: &Clock) -> NaiveDateTime {
        minus(clock.wall, CLOCK_MARGIN)
    }

    /// The audits asked for, by their `since`.
    fn audits(effects: &[Effect]) -> Vec<NaiveDateTime> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Audit { since } => Some(*since),
                _ => None,
            })
            .collect()
    }

    const AUDIT_MS: u64 = AUDIT_EVERY.as_millis() as u64;
    const GAP_MS: u64 = GAP_WAIT.as_millis() as u64;

    /// Runs the audit due at `millis` and answers it with `found`; returns what the answer asked.
    fn audit_at(orders: &mut RoomOrders, clock: &Clock, millis: u64, found: Vec<(RoomId, i64)>) -> Vec<Effect> {
        assert_eq!(audits(&orders.tick(clock.at(millis))).len(), 1, "an audit is due at {millis} ms");
        orders.audited(Ok(found.into_iter().map(|(room, seq)| (room, Seq(seq))).collect()), clock.at(millis + 1))
    }

    /// A room ordered here up to `last` (released from its first message on).
    fn ordered_up_to(clock: &Clock, last: i64) -> RoomOrders {
        let mut orders = RoomOrders::new(clock.at(0));
        assert_eq!(released(&orders.arrive(messages(1..=last), clock.at(0))), (1..=last).collect::<Vec<_>>());
        orders
    }

    #[test]
    fn in_order_arrival_is_released_at_once() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0));
        let effects = orders.arrive(messages([1, 2]), clock.at(0));
        assert_eq!(released(&effects), [1, 2]);
        assert!(fills(&effects).is_empty());
        assert_eq!(released(&orders.arrive(messages([3]), clock.at(1))), [3]);
        assert!(orders.tick(clock.at(1000)).is_empty());
    }

    #[test]
    fn out_of_order_arrival_is_held_then_released_in_order() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        assert!(orders.arrive(messages([4, 3]), clock.at(1)).is_empty());
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(2))), [2, 3, 4]);
        // Nothing is held any more: no read is ever due.
        assert!(orders.tick(clock.at(1000)).is_empty());
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
        assert!(orders.tick(clock.at(10 + 39)).is_empty(), "the gap waits GAP_WAIT for the channel");
        let effects = orders.tick(clock.at(10 + 40));
        assert_eq!(fills(&effects), [(ROOM, 1, Some(4), None, FILL_LIMIT)]);
        assert!(orders.tick(clock.at(200)).is_empty(), "one read at a time");
        // What arrives meanwhile waits for the read.
        assert!(orders.arrive(messages([5]), clock.at(201)).is_empty());
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([2, 3, 4])), clock.at(202))), [2, 3, 4, 5]);
        assert_eq!(orders.repaired, 2, "4 came through the channel");
        assert!(orders.tick(clock.at(1000)).is_empty());
    }

    #[test]
    fn a_gap_filled_by_the_channel_before_gap_wait_is_never_read() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3]), clock.at(0));
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(20))), [2, 3]);
        assert!(orders.tick(clock.at(100)).is_empty());
    }

    #[test]
    fn a_remaining_gap_after_progress_gets_its_own_wait() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3, 5]), clock.at(0));
        assert_eq!(released(&orders.arrive(messages([2]), clock.at(30))), [2, 3]);
        assert!(orders.tick(clock.at(50)).is_empty(), "the gap below 5 waits from 30 ms");
        assert_eq!(fills(&orders.tick(clock.at(70))), [(ROOM, 3, Some(5), None, FILL_LIMIT)]);
    }

    #[test]
    fn a_complete_read_below_a_held_message_skips_the_seqs_the_database_lacks() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([5]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40))), [(ROOM, 1, Some(5), None, FILL_LIMIT)]);
        // Every seq below 5 was committed before it: 2 and 4, which the database lacks, are
        // not waited for.
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([3])), clock.at(41))), [3, 5]);
        assert!(orders.tick(clock.at(1000)).is_empty());
    }

    #[test]
    fn a_failed_gap_read_is_retried_after_gap_wait() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        orders.arrive(messages([3]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40))).len(), 1);
        assert!(orders.filled(ROOM, Err(ReadFailed), clock.at(100)).is_empty());
        assert!(orders.tick(clock.at(139)).is_empty(), "the retry waits GAP_WAIT from the failure");
        assert_eq!(fills(&orders.tick(clock.at(140))), [(ROOM, 1, Some(3), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([2])), clock.at(141))), [2, 3]);
    }

    #[test]
    fn an_incomplete_read_reads_on_from_where_it_stopped() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        let first_held = 2 + FILL_LIMIT + 10;
        orders.arrive(messages([first_held]), clock.at(0));
        assert_eq!(fills(&orders.tick(clock.at(40))).len(), 1);
        let effects = orders.filled(ROOM, Ok(messages(2..2 + FILL_LIMIT)), clock.at(41));
        assert_eq!(released(&effects), (2..2 + FILL_LIMIT).collect::<Vec<_>>());
        assert_eq!(fills(&effects), [(ROOM, 1 + FILL_LIMIT, Some(first_held), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages(2 + FILL_LIMIT..first_held)), clock.at(42))).len(), 11);
    }

    #[test]
    fn first_sight_looks_back_to_the_floor_and_releases_the_looked_back_messages_first() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0));
        // Long after the node started: the look-back still reaches back to its start.
        let now = clock.at(3_600_000);
        let effects = orders.arrive(messages([9000]), now);
        assert!(released(&effects).is_empty());
        assert_eq!(fills(&effects), [(ROOM, 9000 - 1 - LOOK_BACK_SEQS, Some(9000), Some(floor(&clock)), FILL_LIMIT)]);
        // Low seqs look back from the room's start.
        assert_eq!(
            fills(&orders.arrive(vec![message_in(OTHER_ROOM, 7)], now)),
            [(OTHER_ROOM, 0, Some(7), Some(floor(&clock)), FILL_LIMIT)]
        );
        // What arrives during the look-back waits for it.
        assert!(orders.arrive(messages([9001]), clock.at(3_600_001)).is_empty());
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([8998, 8999])), clock.at(3_600_002))), [8998, 8999, 9000, 9001]);
        // Nothing stored since the floor: the first message seen is the first handed over.
        assert_eq!(released(&orders.filled(OTHER_ROOM, Ok(Vec::new()), clock.at(3_600_002))), [7]);
    }

    #[test]
    fn a_failed_look_back_is_tried_again_rather_than_skipped() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0));
        let range = fills(&orders.arrive(messages([10]), clock.at(0)));
        orders.arrive(messages([12]), clock.at(1));
        assert!(orders.filled(ROOM, Err(ReadFailed), clock.at(5)).is_empty(), "nothing is released past what may be missing");
        assert!(fills(&orders.tick(clock.at(5 + GAP_MS - 1))).is_empty());
        assert_eq!(fills(&orders.tick(clock.at(5 + GAP_MS))), range);
        assert!(fills(&orders.tick(clock.at(5 + 3 * GAP_MS))).is_empty(), "one read at a time");
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([8, 9])), clock.at(100))), [8, 9, 10]);
        // The gap above it is an ordinary one, read after GAP_WAIT.
        assert_eq!(fills(&orders.tick(clock.at(100 + GAP_MS))), [(ROOM, 10, Some(12), None, FILL_LIMIT)]);
    }

    #[test]
    fn an_audit_finds_the_lost_last_message_of_a_quiet_room() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 3);
        assert!(audits(&orders.tick(clock.at(AUDIT_MS - 1))).is_empty());
        assert_eq!(audits(&orders.tick(clock.at(AUDIT_MS))), [floor(&clock)], "the first audit covers the node's whole life");
        assert!(audits(&orders.tick(clock.at(2 * AUDIT_MS))).is_empty(), "one audit at a time");
        // 4 and 5 were stored and their publish lost: they wait GAP_WAIT for the channel, then are read.
        let answered = 2 * AUDIT_MS + 1;
        assert!(orders.audited(Ok(vec![(ROOM, Seq(5))]), clock.at(answered)).is_empty());
        let effects = orders.tick(clock.at(answered + GAP_MS - 1));
        assert!(fills(&effects).is_empty());
        // The next audit (due by now) looks back from when the last one started, less the
        // clocks' margin.
        assert_eq!(audits(&effects), [minus(clock.at(AUDIT_MS).wall, CLOCK_MARGIN)]);
        assert_eq!(fills(&orders.tick(clock.at(answered + GAP_MS))), [(ROOM, 3, Some(6), None, FILL_LIMIT)]);
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([4, 5])), clock.at(answered + GAP_MS + 1))), [4, 5]);
        assert_eq!(orders.repaired, 2);
        assert!(fills(&orders.tick(clock.at(answered + 10 * GAP_MS))).is_empty());
    }

    #[test]
    fn an_audited_seq_that_the_channel_brings_within_gap_wait_is_never_read() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 3);
        audit_at(&mut orders, &clock, AUDIT_MS, vec![(ROOM, 4), (OTHER_ROOM, 0)].into_iter().filter(|(_, seq)| *seq > 0).collect());
        assert_eq!(released(&orders.arrive(messages([4]), clock.at(AUDIT_MS + 10))), [4]);
        assert!(fills(&orders.tick(clock.at(AUDIT_MS + 10 * GAP_MS))).is_empty());
        // An audit of seqs handed over already asks nothing.
        assert!(audit_at(&mut orders, &clock, 2 * AUDIT_MS, vec![(ROOM, 4)]).is_empty());
        assert!(fills(&orders.tick(clock.at(2 * AUDIT_MS + 10 * GAP_MS))).is_empty());
    }

    #[test]
    fn a_complete_read_up_to_an_audited_seq_skips_what_the_database_lacks() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 3);
        audit_at(&mut orders, &clock, AUDIT_MS, vec![(ROOM, 6)]);
        assert_eq!(fills(&orders.tick(clock.at(AUDIT_MS + GAP_MS + 1))), [(ROOM, 3, Some(7), None, FILL_LIMIT)]);
        // 4 and 6 were deleted with their room's history: 5 goes, and nothing waits for them.
        assert_eq!(released(&orders.filled(ROOM, Ok(messages([5])), clock.at(AUDIT_MS + GAP_MS + 2))), [5]);
        assert_eq!(released(&orders.arrive(messages([7]), clock.at(AUDIT_MS + GAP_MS + 3))), [7]);
        assert!(fills(&orders.tick(clock.at(AUDIT_MS + 10 * GAP_MS))).is_empty());
    }

    #[test]
    fn a_room_never_seen_here_that_an_audit_finds_is_looked_back_on_since_the_floor() {
        let clock = Clock::new();
        let mut orders = RoomOrders::new(clock.at(0));
        let effects = audit_at(&mut orders, &clock, AUDIT_MS, vec![(ROOM, 4), (OTHER_ROOM, 9)]);
        assert_eq!(
            fills(&effects),
            [(ROOM, 0, Some(5), Some(floor(&clock)), FILL_LIMIT), (OTHER_ROOM, 0, Some(10), Some(floor(&clock)), FILL_LIMIT)]
        );
        // Stored since the node started, and never published here: delivered now.
        assert_eq!(released(&orders.filled(ROOM, Ok(messages(1..=4)), clock.at(AUDIT_MS + 2))), [1, 2, 3, 4]);
        // Stored before: every session here had them by sync. The room goes on from the next.
        assert!(orders.filled(OTHER_ROOM, Ok(Vec::new()), clock.at(AUDIT_MS + 2)).is_empty());
        assert_eq!(released(&orders.arrive(vec![message_in(OTHER_ROOM, 10)], clock.at(AUDIT_MS + 3))), [10]);
        assert!(fills(&orders.tick(clock.at(AUDIT_MS + 10 * GAP_MS))).is_empty());
    }

    #[test]
    fn a_failed_audit_is_covered_by_the_next() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        assert_eq!(audits(&orders.tick(clock.at(AUDIT_MS))), [floor(&clock)]);
        assert!(orders.audited(Err(ReadFailed), clock.at(AUDIT_MS + 1)).is_empty());
        assert_eq!(audits(&orders.tick(clock.at(2 * AUDIT_MS))), [floor(&clock)]);
    }

    #[test]
    fn a_lost_subscription_is_audited_at_once_from_before_it_was_lost() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 1);
        audit_at(&mut orders, &clock, 50_000, Vec::new());
        let now = clock.at(60_000);
        let missed = Duration::from_secs(30);
        orders.catch_up(missed, now.wall);
        assert_eq!(audits(&orders.tick(clock.at(60_001))), [minus(now.wall, missed + CLOCK_MARGIN)]);
    }

    #[test]
    fn an_idle_room_shrinks_to_its_next_seq_and_goes_on_without_a_look_back() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 2);
        let idle = ROOM_IDLE.as_millis() as u64;
        orders.tick(clock.at(idle + idle / 10 + 1));
        assert!(orders.rooms.is_empty() && orders.settled.len() == 1, "the room is kept as its next seq");
        assert_eq!(released(&orders.arrive(messages([3]), clock.at(2 * idle))), [3]);
        // An audit of an idle room with a lost message reads it.
        let mut orders = ordered_up_to(&clock, 2);
        orders.tick(clock.at(idle + idle / 10 + 1));
        let at = idle + idle / 10 + 2;
        orders.tick(clock.at(at));
        assert!(orders.audited(Ok(vec![(ROOM, Seq(3))]), clock.at(at)).is_empty());
        assert_eq!(fills(&orders.tick(clock.at(at + GAP_MS))), [(ROOM, 2, Some(4), None, FILL_LIMIT)]);
    }

    #[test]
    fn too_many_idle_rooms_are_forgotten_and_the_floor_moves_up() {
        let clock = Clock::new();
        let mut orders = ordered_up_to(&clock, 2);
        orders.settled.extend((0..=SETTLED_MAX as i64).map(|room| (RoomId(1000 + room), Seq(1))));
        let idle = ROOM_IDLE.as_millis() as u64;
        let now = clock.at(idle + idle / 10 + 1);
        orders.tick(now);
        assert!(orders.settled.is_empty());
        assert_eq!(
            fills(&orders.arrive(messages([3]), clock.at(idle * 2))),
            [(ROOM, 0, Some(3), Some(minus(now.wall, CLOCK_MARGIN)), FILL_LIMIT)]
        );
    }

    #[tokio::test]
    async fn what_runs_after_a_hand_over_follows_every_message_given_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap();
        let (sequencer, inbox) = Sequencer::channel();
        let (events, mut seen) = mpsc::unbounded_channel();
        let handed = events.clone();
        sequencer.start(inbox, db, Arc::new(OnlineUsers::default()), Arc::default(), move |ready| {
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
