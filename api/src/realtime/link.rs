//! What nodes tell each other ([`Event`], [`WireMessage`]) and the queue that carries it out
//! ([`Publisher`]), below both the registry that publishes and the cluster link that sends
//! to and receives from Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::delivery::Delivery;
use super::protocol::MessageFrames;
use crate::ids::{RoomId, Seq, UserId};

/// A node's random name, new at every start.
pub type NodeId = String;

/// What nodes tell each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Messages stored by the publishing node, each with its room's members.
    Messages {
        messages: Vec<WireMessage>,
    },
    ToUsers {
        users: Vec<UserId>,
        frame: String,
        except: Option<UserId>,
    },
    ToEach {
        frames: Vec<(UserId, String)>,
    },
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
    /// A user's first connection on the node opened (`online`) or its last one closed.
    Presence {
        user_id: UserId,
        online: bool,
        friends: Vec<UserId>,
    },
    /// Every user connected to the node, with their friends; `reply` asks the others for theirs.
    State {
        users: Vec<(UserId, Vec<UserId>)>,
        reply: bool,
    },
    Alive,
    /// The node is shutting down.
    Bye,
}

/// A stored message as the other nodes need it: its two frames and who may see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessage {
    pub room_id: RoomId,
    pub seq: Seq,
    pub members: Vec<UserId>,
    pub message: String,
    pub channels: String,
}

impl From<&Delivery> for WireMessage {
    fn from(delivery: &Delivery) -> WireMessage {
        let frames = &delivery.frames;
        WireMessage {
            room_id: frames.room_id,
            seq: frames.seq,
            members: delivery.members.to_vec(),
            message: frames.message.to_string(),
            channels: frames.channels().to_string(),
        }
    }
}

impl WireMessage {
    /// The delivery this node makes of another node's message (no connection here sent it).
    pub fn into_delivery(self) -> Delivery {
        let frames = MessageFrames::encoded(self.room_id, self.seq, self.message.into(), self.channels.into());
        Delivery { members: self.members.into(), frames: Arc::new(frames), origin: None }
    }
}

pub(super) enum Publish {
    Event(Event),
    /// Answered once everything queued before it was handed to Redis (or dropped).
    Drain(oneshot::Sender<()>),
}

/// The cheap, cloneable way to publish to the other nodes.
#[derive(Clone)]
pub struct Publisher {
    pub(super) tx: mpsc::Sender<Publish>,
    pub(super) stats: Arc<ClusterStats>,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct ClusterStats {
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    /// 1 while the subscription is live.
    pub connected: AtomicU64,
    /// Messages of other nodes that came from the database instead (a lost or late publish).
    pub repaired: AtomicU64,
}

impl ClusterStats {
    /// Appends the Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let lines = [
            ("chat_cluster_connected", "gauge", "1 while the Redis subscription is live.", &self.connected),
            ("chat_cluster_events_published_total", "counter", "Events published to the other nodes.", &self.published),
            ("chat_cluster_events_received_total", "counter", "Events received from the other nodes.", &self.received),
            ("chat_cluster_events_dropped_total", "counter", "Events not published (Redis unreachable).", &self.dropped),
            (
                "chat_cluster_messages_repaired_total",
                "counter",
                "Messages read from the database because the channel had not brought them.",
                &self.repaired,
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
    }
}

impl Publisher {
    /// Queues `event` without waiting; a full queue (Redis unreachable for long) drops it.
    pub fn publish(&self, event: Event) {
        if self.tx.try_send(Publish::Event(event)).is_err() {
            self.stats.dropped.fetch_add(1, Relaxed);
        }
    }
}
