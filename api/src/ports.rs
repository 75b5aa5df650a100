//! The port between the services and the real-time layer: services announce what happened as
//! typed [`DomainEvent`]s and ask who is online, without knowing sockets, frames or nodes;
//! `realtime` implements [`RealtimePort`] and turns each event into frames and cluster publishes.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use crate::domain::SendRequest;
use crate::dto::{MessageView, RoomView};
use crate::error::ApiResult;
use crate::ids::{RoomId, Seq, UserId};

/// Something a service changed that connected clients must hear of.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// `a` and `b` became friends (`friends`) or stopped being friends.
    FriendshipChanged { a: UserId, b: UserId, friends: bool },
    /// A room was created or its membership changed: each member's own view of it (online
    /// flags filled in).
    RoomChanged { views: Vec<(UserId, RoomView)> },
    /// `user_id` is no longer a member of `room_id`.
    MemberLeft { room_id: RoomId, user_id: UserId },
    /// `user_id`'s read position in `room_id` moved up to `seq`; `audience` may see it.
    ReadMoved { room_id: RoomId, user_id: UserId, seq: Seq, audience: Vec<UserId> },
    /// Login sessions of `user_id` were revoked: `only` that one, or every one but `keep`.
    SessionsRevoked { user_id: UserId, only: Option<String>, keep: Option<String> },
}

/// A future the port returns, boxed so the port stays object-safe.
pub type PortFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the services need of the real-time layer.
pub trait RealtimePort: Send + Sync {
    /// Tells the affected connections, on every node.
    fn announce(&self, event: DomainEvent);

    /// Which of `users` have a live connection on any node (answered without waiting).
    fn online(&self, users: &mut dyn Iterator<Item = UserId>) -> HashSet<UserId>;

    /// Stores a message through the same group-commit writer as WebSocket sends, resolving
    /// once it is committed.
    fn store_message(&self, request: SendRequest) -> PortFuture<ApiResult<MessageView>>;
}
