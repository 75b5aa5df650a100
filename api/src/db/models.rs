//! Rows as stored: what diesel reads and writes. API shapes live in `dto`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{friend_requests, messages, one_time_tokens, rooms, sessions, users};
use crate::domain::{RequestStatus, RoomKind};
use crate::ids::{RoomId, Seq, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub username_key: String,
    pub first_name: String,
    pub last_name: String,
    pub first_name_key: String,
    pub last_name_key: String,
    pub email: String,
    pub bio: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub is_admin: bool,
    pub is_active: bool,
    pub date_joined: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub username_key: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub first_name_key: &'a str,
    pub last_name_key: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub email_verified: bool,
    pub is_admin: bool,
    pub date_joined: NaiveDateTime,
}

/// The columns of a user that anyone may see.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct PublicUserRow {
    pub id: UserId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: UserId,
    pub refresh_jti: &'a str,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = one_time_tokens)]
pub struct NewOneTimeToken<'a> {
    pub user_id: UserId,
    pub purpose: &'a str,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = friend_requests)]
pub struct FriendRequest {
    pub id: i64,
    pub sender_id: UserId,
    pub receiver_id: UserId,
    pub status: RequestStatus,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = friend_requests)]
pub struct NewFriendRequest {
    pub sender_id: UserId,
    pub receiver_id: UserId,
    pub user_low: UserId,
    pub user_high: UserId,
    pub status: RequestStatus,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub last_seq: Seq,
    pub last_activity_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub kind: RoomKind,
    pub name: &'a str,
    pub owner_id: Option<UserId>,
    pub private_key: Option<&'a str>,
    pub last_seq: Seq,
    pub last_activity_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: i64,
    pub room_id: RoomId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub body: String,
    pub client_id: String,
    pub created_at: NaiveDateTime,
    pub edited_at: Option<NaiveDateTime>,
    pub deleted: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = messages)]
pub struct NewMessage<'a> {
    pub room_id: RoomId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub body: &'a str,
    pub client_id: &'a str,
    pub created_at: NaiveDateTime,
}
