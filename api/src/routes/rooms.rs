//! `/api/contact/chat-room…`: rooms, history, sending over REST and read receipts.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::db::messages::Cursor;
use crate::domain::{ClientId, GroupName, MessageBody};
use crate::dto::{Empty, MessagePage, MessageView, RoomView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::ids::{RoomId, Seq, UserId};
use crate::services::messages;
use crate::services::rooms;
use crate::state::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PrivateRoomRequest {
    /// The friend to chat with.
    pub user2_id: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GroupCreateRequest {
    /// 1-100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Friends to add besides the caller (at most 255).
    #[serde(default)]
    pub member_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GroupInviteRequest {
    pub group_id: i64,
    pub user_id: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// 1-4000 characters.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub body: String,
    /// The sender's idempotency key: a retry with the same key returns the stored message.
    /// Generated when absent.
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadRequest {
    /// The seq read up to; receipts only move forward.
    #[schema(minimum = 0)]
    pub seq: i64,
}

/// Largest history page.
const HISTORY_MAX_LIMIT: i64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// The page of messages just below this seq.
    pub before: Option<i64>,
    /// The page of messages just above this seq.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Messages per page, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl HistoryParams {
    fn parse(self) -> ApiResult<(Cursor, i64)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {HISTORY_MAX_LIMIT}")));
        }
        let cursor = match (self.before, self.after) {
            (Some(_), Some(_)) => return Err(ApiError::invalid("give either before or after, not both")),
            (Some(before), None) => Cursor::Before(Seq(before)),
            (None, Some(after)) if after >= 0 => Cursor::After(Seq(after)),
            (None, Some(_)) => return Err(ApiError::invalid_field("after", "must not be negative")),
            (None, None) => Cursor::Latest,
        };
        Ok((cursor, limit))
    }
}

/// Open the private room with a friend, creating it on first use.
#[utoipa::path(
    tag = "rooms",
    request_body = PrivateRoomRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The existing room", body = RoomView),
        (status = 201, description = "The room, just created", body = RoomView),
        (status = 403, description = "Not friends, or a block stands between them", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/private/")]
pub async fn open_private_room(state: State, caller: AuthUser, body: JsonBody<PrivateRoomRequest>) -> ApiResult<HttpResponse> {
    let (room, created) = rooms::open_private(&state, caller.id, UserId(body.0.user2_id)).await?;
    Ok(if created { HttpResponse::Created().json(room) } else { HttpResponse::Ok().json(room) })
}

/// Create a group owned by the caller, with friends in it.
#[utoipa::path(
    tag = "rooms",
    request_body = GroupCreateRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The group", body = RoomView),
        (status = 400, description = "Bad name or too many members", body = ErrorBody),
        (status = 403, description = "A member is not a friend, or blocked", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The caller already owns the most groups one account may (100)", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/group/")]
pub async fn create_group(state: State, caller: AuthUser, body: JsonBody<GroupCreateRequest>) -> ApiResult<HttpResponse> {
    let GroupCreateRequest { name, member_ids } = body.0;
    let name = GroupName::parse(&name).map_err(|m| ApiError::invalid_field("name", m))?;
    let room = rooms::create_group(&state, caller.id, name, member_ids.into_iter().map(UserId).collect()).await?;
    Ok(HttpResponse::Created().json(room))
}

/// Add a friend to a group the caller is a member of.
#[utoipa::path(
    tag = "rooms",
    request_body = GroupInviteRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group with its new member", body = RoomView),
        (status = 400, description = "Not a group", body = ErrorBody),
        (status = 403, description = "Not a member, not a friend, or blocked", body = ErrorBody),
        (status = 404, description = "No such group or user", body = ErrorBody),
        (status = 409, description = "Already a member, or the group is full", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/group/invite/")]
pub async fn invite_to_group(state: State, caller: AuthUser, body: JsonBody<GroupInviteRequest>) -> ApiResult<web::Json<RoomView>> {
    Ok(web::Json(rooms::invite(&state, caller.id, RoomId(body.0.group_id), UserId(body.0.user_id)).await?))
}

/// Leave a group; an owner hands it to the longest-standing member.
#[utoipa::path(
    tag = "rooms",
    params(("id" = i64, Path, description = "Group id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Left", body = Empty),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "A private room cannot be left", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/group/{id}/leave/")]
pub async fn leave_group(state: State, caller: AuthUser, id: web::Path<i64>) -> ApiResult<web::Json<Empty>> {
    rooms::leave(&state, caller.id, RoomId(id.into_inner())).await?;
    Ok(web::Json(Empty {}))
}

/// The caller's rooms, newest activity first.
#[utoipa::path(
    tag = "rooms",
    security(("bearer" = [])),
    responses((status = 200, description = "Rooms with last message and unread count", body = [RoomView]))
)]
#[get("/api/contact/chat-rooms/")]
pub async fn list_rooms(state: State, caller: AuthUser) -> ApiResult<web::Json<Vec<RoomView>>> {
    Ok(web::Json(rooms::list(&state, caller.id).await?))
}

/// A page of a room's history, oldest first.
///
/// No cursor: the newest `limit` messages. `before=S`: the `limit` messages just below seq S.
/// `after=S`: the first `limit` messages above S.
#[utoipa::path(
    tag = "rooms",
    params(("room_id" = i64, Path, description = "Room id"), HistoryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Messages oldest first", body = MessagePage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    )
)]
#[get("/api/contact/chat-room/message/{room_id}/")]
pub async fn room_history(
    state: State,
    caller: AuthUser,
    room_id: web::Path<i64>,
    params: web::Query<HistoryParams>,
) -> ApiResult<web::Json<MessagePage>> {
    let (cursor, limit) = params.into_inner().parse()?;
    Ok(web::Json(messages::history_page(&state, caller.id, RoomId(room_id.into_inner()), cursor, limit).await?))
}

/// Send a message (the same path as a WebSocket `send`); answered once it is stored.
#[utoipa::path(
    tag = "rooms",
    params(("room_id" = i64, Path, description = "Room id")),
    request_body = SendMessageRequest,
    security(("bearer" = [])),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 201, description = "Stored (or stored before, for a repeated client_id)", body = MessageView),
        (status = 400, description = "Blank body or bad client_id", body = ErrorBody),
        (status = 403, description = "Not a member, or blocked", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 413, description = "Body over 4000 characters", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/message/{room_id}/")]
pub async fn send_message(
    state: State,
    caller: AuthUser,
    room_id: web::Path<i64>,
    body: JsonBody<SendMessageRequest>,
) -> ApiResult<HttpResponse> {
    state.limits.check(crate::ratelimit::MESSAGES_PER_USER, &caller.id.to_string()).await?;
    let SendMessageRequest { body, client_id } = body.0;
    let client_id = client_id.unwrap_or_else(|| format!("http-{}", crate::auth::sessions::random_token(12)));
    let (body, client_id) = (MessageBody::parse(body)?, ClientId::parse(client_id)?);
    let message = messages::send(&state, caller.id, RoomId(room_id.into_inner()), body, client_id).await?;
    Ok(HttpResponse::Created().json(message))
}

/// Mark a room read up to a seq; members are told.
#[utoipa::path(
    tag = "rooms",
    params(("room_id" = i64, Path, description = "Room id")),
    request_body = ReadRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Receipt stored", body = Empty),
        (status = 400, description = "Seq beyond the room's last message", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    )
)]
#[post("/api/contact/chat-room/{room_id}/read/")]
pub async fn mark_read(
    state: State,
    caller: AuthUser,
    room_id: web::Path<i64>,
    body: JsonBody<ReadRequest>,
) -> ApiResult<web::Json<Empty>> {
    messages::read(&state, caller.id, RoomId(room_id.into_inner()), Seq(body.0.seq)).await?;
    Ok(web::Json(Empty {}))
}
