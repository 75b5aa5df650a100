//! What flows from the stores of messages to the connections: a stored message's [`Delivery`]
//! to its room, and the [`Outbound`] frames a session writes. The registry, the writer, the
//! sequencer and the cluster link all speak these, so they live below each of them.

use std::sync::Arc;

use bytestring::ByteString;

use super::protocol::MessageFrames;
use crate::ids::{RoomId, Seq, UserId};

/// A process-unique id of a WebSocket connection.
pub type SessionId = u64;

/// What the registry hands a session to write to its socket.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A message of `room_id` at `seq`: the `ack` form for the connection that sent it (always
    /// written), the `message` form for others (skipped if that seq was already sent).
    Message { room_id: RoomId, seq: Seq, frame: ByteString, ack: bool },
    /// Any other frame.
    Frame(ByteString),
}

/// A stored message to fan out to the members of its room.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub members: Arc<[UserId]>,
    pub frames: Arc<MessageFrames>,
    /// The connection that sent it: it receives the `ack` form, in the same ordered stream.
    pub origin: Option<SessionId>,
}
