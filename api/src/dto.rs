//! API shapes shared by several areas: the own profile and the public view of a user.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::{Message, PublicUserRow, User};
use crate::domain::{RequestStatus, RoomKind};
use crate::ids::{RoomId, Seq, UserId};

/// A stored UTC time as RFC 3339.
pub fn utc(time: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(time, Utc)
}

/// Serialises a time as chrono's own serde does (RFC 3339, `Z`, as many fraction digits as
/// needed), but through one string: chrono's `collect_str` writes it in pieces, each escaped on
/// its own, which costs more than the rest of a message.
pub fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The caller's own profile (`user` in the contract).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserProfile {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub bio: String,
    pub email_verified: bool,
    pub date_joined: DateTime<Utc>,
}

impl From<User> for UserProfile {
    fn from(user: User) -> Self {
        UserProfile {
            id: user.id,
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            email: user.email,
            bio: user.bio,
            email_verified: user.email_verified,
            date_joined: utc(user.date_joined),
        }
    }
}

/// Another user as anyone may see them (`user_public`): never the email.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPublic {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// Whether the user has a live WebSocket connection.
    pub online: bool,
}

impl UserPublic {
    pub fn new(row: PublicUserRow, online: bool) -> Self {
        UserPublic { id: row.id, username: row.username, first_name: row.first_name, last_name: row.last_name, online }
    }
}

/// A friend request (`friend_request` in the contract).
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestView {
    pub id: i64,
    pub sender: UserPublic,
    pub receiver: UserPublic,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
}

/// Pending requests to and from the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestLists {
    pub received: Vec<FriendRequestView>,
    pub sent: Vec<FriendRequestView>,
}

/// How a found user relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    None,
    Friend,
    RequestSent,
    RequestReceived,
}

/// A search result: the public user and its relation to the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundUser {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub online: bool,
    pub relation: Relation,
}

/// A stored message (`message` in the contract).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    #[schema(value_type = i64)]
    pub room_id: RoomId,
    /// Position in the room: strictly increasing from 1, without gaps.
    #[schema(value_type = i64)]
    pub seq: Seq,
    pub sender: UserPublic,
    pub body: String,
    /// The sender's idempotency key.
    pub client_id: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl MessageView {
    /// The one place a stored message becomes its view: with its sender's public row and
    /// online flag, or `None` when the sender's row is missing.
    pub fn assemble(message: Message, senders: &HashMap<UserId, PublicUserRow>, online: &HashSet<UserId>) -> Option<MessageView> {
        let sender = senders.get(&message.sender_id)?.clone();
        let online = online.contains(&sender.id);
        Some(MessageView::new(message, UserPublic::new(sender, online)))
    }

    fn new(message: Message, sender: UserPublic) -> Self {
        MessageView {
            id: message.id,
            room_id: message.room_id,
            seq: message.seq,
            sender,
            body: message.body,
            client_id: message.client_id,
            created_at: utc(message.created_at),
            edited_at: message.edited_at.map(utc),
            deleted: message.deleted,
        }
    }
}

/// A page of history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Whether more messages lie beyond this page in the direction read.
    pub has_more: bool,
}

/// A room as one member sees it (`room` in the contract).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomView {
    #[schema(value_type = i64)]
    pub id: RoomId,
    pub kind: RoomKind,
    /// The group's name; for a private room, the other member's username.
    pub name: String,
    /// The group's owner (absent for private rooms).
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<UserId>,
    pub members: Vec<UserPublic>,
    pub last_message: Option<MessageView>,
    /// Messages from others above the member's read receipt.
    pub unread_count: i64,
    /// The member's read receipt.
    #[schema(value_type = i64)]
    pub last_read_seq: Seq,
    pub created_at: DateTime<Utc>,
}

impl RoomView {
    /// Every user shown in the view (members, the last message's sender), for online flags.
    pub fn users_mut(&mut self) -> impl Iterator<Item = &mut UserPublic> {
        self.members.iter_mut().chain(self.last_message.as_mut().map(|m| &mut m.sender))
    }
}

/// An empty JSON object, the body of responses that carry no data.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_serialise_as_chrono_serialises_them() {
        #[derive(Serialize)]
        struct Mine(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);
        for nanos in [0, 5_000_000, 123_456_000, 123_456_789, 999_999_999] {
            let at = DateTime::from_timestamp(1_700_000_000, nanos).unwrap();
            assert_eq!(serde_json::to_string(&Mine(at)).unwrap(), serde_json::to_string(&at).unwrap());
        }
    }
}
