//! API shapes shared by several areas: the own profile and the public view of a user.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::User;

/// A stored UTC time as RFC 3339.
pub fn utc(time: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(time, Utc)
}

/// The caller's own profile (`user` in the contract).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserProfile {
    pub id: i64,
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
    pub id: i64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// Whether the user has a live WebSocket connection.
    pub online: bool,
}

/// An empty JSON object, the body of responses that carry no data.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Empty {}
