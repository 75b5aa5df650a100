//! The room registry actor: one task that owns every live connection of this node (who is
//! connected, as whom, in which mode) and presence (decided by the [`Presence`] state machine,
//! whose effects it carries out). Everything else reaches it through [`RegistryHandle`]. It
//! shares one thing: [`OnlineUsers`], its answer to "who is online", which only it writes and
//! which readers (every list of users) consult without a round trip through its inbox.
//!
//! Fan-out never waits on a connection: each session has a bounded inbox, and a session whose
//! inbox is full is kicked (its client resyncs with `sync`) instead of buffering without bound.
//!
//! With Redis (several nodes), the handle also publishes every room event for the other nodes,
//! stored messages pass through the [`Sequencer`] (room order across nodes), and presence counts
//! the connections other nodes report: a user is offline only when no node holds one.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytestring::ByteString;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};

use super::delivery::{Delivery, Outbound, SessionId};
use super::inbox::{Outbox, Refused};
use super::link::{Event, NodeId, Publisher, WireMessage};
use super::presence::{self, OnlineUsers, Presence};
use super::protocol::{ServerFrame, encode};
use super::sequencer::Sequencer;
use crate::auth::SessionTrust;
use crate::ids::{RoomId, UserId};
use crate::metrics::Metrics;

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/ws/`: every room of the user, every frame type.
    AllRooms,
    /// `/ws/chat/{room_id}/`: the messages of one room, in the Channels format.
    ChannelsRoom(RoomId),
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its inbox was full: the client reads too slowly.
    SlowConsumer,
    /// Its login session was revoked (logout, password change or reset).
    Revoked,
    /// The server is shutting down.
    Shutdown,
}

/// A connection announcing itself.
pub struct Connection {
    pub id: SessionId,
    pub user_id: UserId,
    /// The login session (JWT `sid`) the connection authenticated with.
    pub auth_session: String,
    pub mode: Mode,
    pub outbox: Outbox,
    pub kick: oneshot::Sender<Kick>,
    /// The user's friends at connect time, for presence.
    pub friends: Vec<UserId>,
}

enum Command {
    /// A new connection; `registered` is answered once presence counts it (`false`: refused,
    /// its user holds the most connections allowed).
    Connect {
        connection: Connection,
        registered: oneshot::Sender<bool>,
    },
    Disconnect(SessionId),
    Deliver(Vec<Delivery>),
    ToUsers {
        users: Vec<UserId>,
        frame: ByteString,
        except: Option<UserId>,
    },
    ToEach(Vec<(UserId, ByteString)>),
    Friendship {
        a: UserId,
        b: UserId,
        friends: bool,
    },
    KickLogins {
        user_id: UserId,
        only: Option<String>,
        keep: Option<String>,
    },
    Counts {
        reply: oneshot::Sender<(usize, usize)>,
    },
    /// Every (user, login session) with a connection here.
    Logins {
        reply: oneshot::Sender<Vec<(UserId, String)>>,
    },
    CloseAll,
    /// Presence news from another node: `Presence`, `State`, `Alive` or `Bye`.
    Node {
        node: NodeId,
        news: Event,
    },
    /// This node (re)joined the cluster: publish what it holds and ask the others for theirs.
    Joined,
    /// Forget nodes not heard from for [`NODE_TIMEOUT`].
    SweepNodes,
    ShareState,
}

/// The cheap, cloneable address of the registry.
#[derive(Clone)]
pub struct RegistryHandle {
    tx: mpsc::UnboundedSender<Command>,
    online: Arc<OnlineUsers>,
    /// Set with Redis: where room events go for the other nodes, and stored messages for ordering.
    cluster: Option<(Publisher, Sequencer)>,
    /// Told of revocations other nodes made, so cached token checks here stop counting.
    trust: Arc<SessionTrust>,
}

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a new connection.
pub fn next_session_id() -> SessionId {
    NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed)
}

impl RegistryHandle {
    /// Starts the registry task; `cluster` with Redis.
    /// The app's trust in cached token checks, which the cluster link suspends while cut off.
    pub(super) fn trust(&self) -> &SessionTrust {
        &self.trust
    }

    pub fn spawn(
        metrics: Arc<Metrics>,
        cluster: Option<(Publisher, Sequencer)>,
        trust: Arc<SessionTrust>,
        max_per_user: usize,
    ) -> RegistryHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let online = Arc::new(OnlineUsers::default());
        let registry = Registry {
            online: online.clone(),
            sessions: FxHashMap::default(),
            users: FxHashMap::default(),
            presence: Presence::default(),
            max_per_user,
            publisher: cluster.as_ref().map(|(publisher, _)| publisher.clone()),
            metrics,
        };
        tokio::spawn(registry.run(rx));
        RegistryHandle { tx, online, cluster, trust }
    }

    fn send(&self, command: Command) {
        // The registry lives as long as the process; a send can only fail during shutdown.
        let _ = self.tx.send(command);
    }

    /// Publishes `event` for the other nodes (with Redis).
    fn publish(&self, event: impl FnOnce() -> Event) {
        if let Some((publisher, _)) = &self.cluster {
            publisher.publish(event());
        }
    }

    /// Registers a connection; returns once presence counts it, so that whatever the
    /// connection answers its client afterwards, a list of users already shows it online.
    /// Registers a connection; `false` when its user holds the most this node allows.
    pub async fn connect(&self, connection: Connection) -> bool {
        let (registered, answer) = oneshot::channel();
        self.send(Command::Connect { connection, registered });
        answer.await.unwrap_or(false)
    }

    pub fn disconnect(&self, id: SessionId) {
        self.send(Command::Disconnect(id));
    }

    /// Fans stored messages out, in order (with Redis: on every node, each room in seq order).
    pub fn deliver(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        match &self.cluster {
            Some((publisher, sequencer)) => {
                publisher.publish(Event::Messages { messages: deliveries.iter().map(WireMessage::from).collect() });
                sequencer.local(deliveries);
            }
            None => self.send(Command::Deliver(deliveries)),
        }
    }

    /// Fans out messages already put in room order (by the sequencer).
    pub(super) fn deliver_in_order(&self, deliveries: Vec<Delivery>) {
        self.send(Command::Deliver(deliveries));
    }

    /// Sends `frame` to every all-rooms connection of `users`, except those of `except`.
    pub fn to_users(&self, users: Vec<UserId>, frame: ByteString, except: Option<UserId>) {
        self.publish(|| Event::ToUsers { users: users.clone(), frame: frame.to_string(), except });
        self.send(Command::ToUsers { users, frame, except });
    }

    /// Sends each user its own frame.
    pub fn to_each(&self, frames: Vec<(UserId, ByteString)>) {
        self.publish(|| Event::ToEach { frames: frames.iter().map(|(user, frame)| (*user, frame.to_string())).collect() });
        self.send(Command::ToEach(frames));
    }

    /// Applies what another node published, to this node's connections only.
    pub(super) fn apply_remote(&self, event: Event, node: NodeId) {
        let command = match event {
            Event::Messages { .. } => return, // ordered by the sequencer first
            Event::ToUsers { users, frame, except } => Command::ToUsers { users, frame: frame.into(), except },
            Event::ToEach { frames } => Command::ToEach(frames.into_iter().map(|(user, frame)| (user, frame.into())).collect()),
            Event::Friendship { a, b, friends } => Command::Friendship { a, b, friends },
            Event::KickLogins { user_id, only, keep } => {
                // A session revoked there: this node's cached session checks are stale too.
                self.trust.revoked();
                Command::KickLogins { user_id, only, keep }
            }
            news @ (Event::Presence { .. } | Event::State { .. } | Event::Alive | Event::Bye) => Command::Node { node, news },
        };
        self.send(command);
    }

    /// This node's subscription is (again) live.
    pub(super) fn joined(&self) {
        self.send(Command::Joined);
    }

    /// Publishes this node's whole presence state (without asking for the others').
    pub(super) fn share_state(&self) {
        self.send(Command::ShareState);
    }

    pub(super) fn sweep_nodes(&self) {
        self.send(Command::SweepNodes);
    }

    /// Which of `users` have a live connection (on any node).
    pub fn online(&self, users: impl IntoIterator<Item = UserId>) -> HashSet<UserId> {
        self.online.among(users)
    }

    /// The shared answer to "who is online", for readers that must not wait on the registry.
    pub fn online_users(&self) -> Arc<OnlineUsers> {
        self.online.clone()
    }

    /// Two users became friends (or stopped being friends): presence follows.
    pub fn friendship(&self, a: UserId, b: UserId, friends: bool) {
        self.publish(|| Event::Friendship { a, b, friends });
        self.send(Command::Friendship { a, b, friends });
    }

    /// Closes the connections of `user_id` opened with login session `only` (all when `None`),
    /// except those of login session `keep`, on every node.
    pub fn kick_logins(&self, user_id: UserId, only: Option<String>, keep: Option<String>) {
        self.publish(|| Event::KickLogins { user_id, only: only.clone(), keep: keep.clone() });
        self.send(Command::KickLogins { user_id, only, keep });
    }

    /// Every (user, login session) with a connection on this node.
    pub async fn logins(&self) -> Vec<(UserId, String)> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Logins { reply });
        answer.await.unwrap_or_default()
    }

    /// Closes every connection (server shutdown).
    pub fn close_all(&self) {
        match &self.cluster {
            // Stored messages come here through the sequencer: the close follows them.
            Some((_, sequencer)) => {
                let registry = self.clone();
                sequencer.then(move || registry.send(Command::CloseAll));
            }
            None => self.send(Command::CloseAll),
        }
    }

    /// (connections, distinct users online).
    pub async fn counts(&self) -> (usize, usize) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Counts { reply });
        answer.await.unwrap_or_default()
    }
}

struct Session {
    user_id: UserId,
    auth_session: String,
    mode: Mode,
    outbox: Outbox,
    kick: Option<oneshot::Sender<Kick>>,
}

struct Registry {
    /// Who presence last announced online, shared with readers; see [`OnlineUsers`].
    online: Arc<OnlineUsers>,
    sessions: FxHashMap<SessionId, Session>,
    /// Users with a connection on this node, and their connections.
    users: FxHashMap<UserId, Vec<SessionId>>,
    /// Who is online here and on the other nodes, and their friends.
    presence: Presence,
    /// Connections one user may hold here.
    max_per_user: usize,
    publisher: Option<Publisher>,
    metrics: Arc<Metrics>,
}

impl Registry {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = commands.recv().await {
            self.handle(command);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { connection, registered } => {
                let admitted = self.users.get(&connection.user_id).is_none_or(|ids| ids.len() < self.max_per_user);
                if admitted {
                    self.connect(connection);
                }
                let _ = registered.send(admitted);
            }
            Command::Disconnect(id) => self.remove(id, None),
            Command::Deliver(deliveries) => self.deliver(&deliveries),
            Command::ToUsers { users, frame, except } => {
                for user in users.into_iter().filter(|u| Some(*u) != except) {
                    self.push_to_user(user, Outbound::Frame(frame.clone()));
                }
            }
            Command::ToEach(frames) => {
                for (user, frame) in frames {
                    self.push_to_user(user, Outbound::Frame(frame));
                }
            }
            Command::Friendship { a, b, friends } => {
                let effects = self.presence.friendship(a, b, friends);
                self.apply(effects);
            }
            Command::KickLogins { user_id, only, keep } => {
                let sessions = self.users.get(&user_id).cloned().unwrap_or_default();
                let targets: Vec<SessionId> = sessions
                    .into_iter()
                    .filter(|id| {
                        self.sessions.get(id).is_some_and(|s| {
                            only.as_ref().is_none_or(|sid| &s.auth_session == sid) && keep.as_ref() != Some(&s.auth_session)
                        })
                    })
                    .collect();
                for id in targets {
                    self.remove(id, Some(Kick::Revoked));
                }
            }
            Command::Counts { reply } => {
                let _ = reply.send((self.sessions.len(), self.users.len()));
            }
            Command::Logins { reply } => {
                let mut logins: Vec<(UserId, String)> = self.sessions.values().map(|s| (s.user_id, s.auth_session.clone())).collect();
                logins.sort_unstable();
                logins.dedup();
                let _ = reply.send(logins);
            }
            Command::CloseAll => {
                let all: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in all {
                    self.remove(id, Some(Kick::Shutdown));
                }
            }
            Command::Node { node, news } => {
                let effects = self.presence.node_news(node, news, std::time::Instant::now());
                self.apply(effects);
            }
            Command::Joined => self.apply(self.presence.share_state(true)),
            Command::ShareState => self.apply(self.presence.share_state(false)),
            Command::SweepNodes => {
                let effects = self.presence.sweep(std::time::Instant::now());
                self.apply(effects);
            }
        }
    }

    /// Carries out what presence decided.
    fn apply(&mut self, effects: Vec<presence::Effect>) {
        for effect in effects {
            match effect {
                presence::Effect::Announce { user_id, online, friends } => self.announce(user_id, &friends, online),
                presence::Effect::Show { to, user_id, online } => {
                    self.push_to_user(to, Outbound::Frame(encode(&ServerFrame::Presence { user_id, online })));
                }
                presence::Effect::Publish(event) => self.publish(event),
            }
        }
    }

    fn publish(&self, event: Event) {
        if let Some(publisher) = &self.publisher {
            publisher.publish(event);
        }
    }

    fn connect(&mut self, connection: Connection) {
        let Connection { id, user_id, auth_session, mode, outbox, kick, friends } = connection;
        self.sessions.insert(id, Session { user_id, auth_session, mode, outbox, kick: Some(kick) });
        self.users.entry(user_id).or_default().push(id);
        let effects = self.presence.connected(user_id, friends);
        // Tell the new connection which friends are online now (Channels connections carry
        // room messages only), before its friends hear of it.
        let online_friends: Vec<UserId> = match mode {
            Mode::AllRooms => self.presence.online_friends(user_id),
            Mode::ChannelsRoom(_) => Vec::new(),
        };
        for friend in online_friends {
            self.push(id, Outbound::Frame(encode(&ServerFrame::Presence { user_id: friend, online: true })));
        }
        self.apply(effects);
    }

    /// Drops a connection; `kick` also tells it to close. The last connection of a user makes
    /// it offline for its friends.
    fn remove(&mut self, id: SessionId, kick: Option<Kick>) {
        let Some(mut session) = self.sessions.remove(&id) else { return };
        if let (Some(reason), Some(signal)) = (kick, session.kick.take()) {
            let _ = signal.send(reason);
        }
        let Some(sessions) = self.users.get_mut(&session.user_id) else { return };
        sessions.retain(|s| *s != id);
        if sessions.is_empty() {
            self.users.remove(&session.user_id);
            let effects = self.presence.went_offline(session.user_id);
            self.apply(effects);
        }
    }

    /// `user_id` came online or went offline everywhere: record it and tell its friends here.
    fn announce(&mut self, user_id: UserId, friends: &[UserId], online: bool) {
        self.online.set(user_id, online);
        let frame = encode(&ServerFrame::Presence { user_id, online });
        for friend in friends {
            self.push_to_user(*friend, Outbound::Frame(frame.clone()));
        }
    }

    /// Hands each connection everything these messages bring it, in order, as one parcel.
    fn deliver(&mut self, deliveries: &[Delivery]) {
        let mut parcels: FxHashMap<SessionId, Vec<Outbound>> = FxHashMap::default();
        let mut delivered = 0;
        for delivery in deliveries {
            let frames = &delivery.frames;
            let mut origin_served = false;
            let mut add = |id: SessionId, frame: &ByteString, ack: bool| {
                let outbound = Outbound::Message { room_id: frames.room_id, seq: frames.seq, frame: frame.clone(), ack };
                parcels.entry(id).or_default().push(outbound);
                delivered += 1;
            };
            for member in delivery.members.iter() {
                let Some(sessions) = self.users.get(member) else { continue };
                for id in sessions {
                    let Some(session) = self.sessions.get(id) else { continue };
                    match session.mode {
                        Mode::AllRooms if delivery.origin == Some(*id) => {
                            origin_served = true;
                            add(*id, &frames.ack, true);
                        }
                        Mode::AllRooms => add(*id, &frames.message, false),
                        Mode::ChannelsRoom(room) if room == frames.room_id => add(*id, frames.channels(), false),
                        Mode::ChannelsRoom(_) => {}
                    }
                }
            }
            // The sender is owed its ack even when it is not among the members handed over (it
            // left the room meanwhile, or the sequencer passes on only the ack).
            if let Some(origin) = delivery.origin
                && !origin_served
                && self.sessions.get(&origin).is_some_and(|s| s.mode == Mode::AllRooms)
            {
                add(origin, &frames.ack, true);
            }
        }
        self.metrics.messages_delivered.fetch_add(delivered, std::sync::atomic::Ordering::Relaxed);
        for (id, parcel) in parcels {
            self.push_all(id, parcel);
        }
    }

    /// Sends to every all-rooms connection of `user`.
    fn push_to_user(&mut self, user: UserId, outbound: Outbound) {
        let Some(sessions) = self.users.get(&user) else { return };
        let targets: Vec<SessionId> =
            sessions.iter().copied().filter(|id| self.sessions.get(id).is_some_and(|s| s.mode == Mode::AllRooms)).collect();
        for id in targets {
            self.push(id, outbound.clone());
        }
    }

    /// Puts `outbound` in a session's inbox without waiting (see [`Registry::push_all`]).
    fn push(&mut self, id: SessionId, outbound: Outbound) {
        self.push_all(id, vec![outbound]);
    }

    /// Puts `parcel` in a session's inbox without waiting; a full inbox kicks the session.
    fn push_all(&mut self, id: SessionId, parcel: Vec<Outbound>) {
        let Some(session) = self.sessions.get(&id) else { return };
        match session.outbox.send_all(parcel) {
            Ok(()) => {}
            Err(Refused::Full) => {
                tracing::warn!(session = id, user_id = %session.user_id, "connection too slow: inbox full, disconnecting");
                self.metrics.slow_consumers_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.remove(id, Some(Kick::SlowConsumer));
            }
            Err(Refused::Closed) => self.remove(id, None),
        }
    }
}
