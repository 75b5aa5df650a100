//! `/api/contact/…` contacts: friend requests, friends, blocks and people search.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::dto::{Empty, FoundUser, FriendRequestLists, FriendRequestView, UserPublic};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::ids::UserId;
use crate::services::contacts::{self, Answer, Search};
use crate::state::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct FriendRequestCreate {
    /// The user to befriend.
    pub receiver_id: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RespondAction {
    Accept,
    Reject,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RespondRequest {
    pub action: RespondAction,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BlockRequest {
    pub block_user_id: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockAction {
    Unblock,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BlockRespondRequest {
    pub user_id: i64,
    pub action: BlockAction,
}

/// Longest search text, in characters.
const QUERY_MAX_CHARS: usize = 100;
/// Most results per page.
const SEARCH_MAX_LIMIT: i64 = 50;
/// Deepest offset: search is for finding someone, not for listing every user.
const SEARCH_MAX_OFFSET: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// A prefix of a username, first or last name (any case), or an exact email.
    #[param(min_length = 1, max_length = 100, pattern = r"\S")]
    pub query: String,
    /// Results per page, 1-50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
    /// Results to skip, 0-1000 (default 0).
    #[param(minimum = 0, maximum = 1000)]
    pub offset: Option<i64>,
}

impl SearchParams {
    fn parse(self) -> ApiResult<Search> {
        let text = self.query.trim().to_owned();
        if text.is_empty() {
            return Err(ApiError::invalid_field("query", "this field may not be blank"));
        }
        if text.chars().any(char::is_control) {
            return Err(ApiError::invalid_field("query", "may not contain control characters"));
        }
        if text.chars().count() > QUERY_MAX_CHARS {
            return Err(ApiError::invalid_field("query", format!("must be at most {QUERY_MAX_CHARS} characters long")));
        }
        let limit = self.limit.unwrap_or(20);
        if !(1..=SEARCH_MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {SEARCH_MAX_LIMIT}")));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=SEARCH_MAX_OFFSET).contains(&offset) {
            return Err(ApiError::invalid_field("offset", format!("must be between 0 and {SEARCH_MAX_OFFSET}")));
        }
        Ok(Search { text, limit, offset })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AddFoundParams {
    /// The search the user was found with (informational).
    pub query: Option<String>,
}

/// Send a friend request.
///
/// If the receiver already asked the caller, both become friends at once and the request comes
/// back `accepted`.
#[utoipa::path(
    tag = "contacts",
    request_body = FriendRequestCreate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Request sent (or the mutual request accepted)", body = FriendRequestView),
        (status = 400, description = "A request to oneself", body = ErrorBody),
        (status = 403, description = "A block stands between the two users", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already friends, or a request is already pending", body = ErrorBody),
    )
)]
#[post("/api/contact/friend-request/")]
pub async fn send_friend_request(state: State, caller: AuthUser, body: JsonBody<FriendRequestCreate>) -> ApiResult<HttpResponse> {
    let request = contacts::send_request(&state, caller.id, UserId(body.0.receiver_id)).await?;
    Ok(HttpResponse::Created().json(request))
}

/// Pending friend requests the caller received and sent.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    responses((status = 200, description = "Pending requests, newest first", body = FriendRequestLists))
)]
#[get("/api/contact/friend-request/view/")]
pub async fn view_friend_requests(state: State, caller: AuthUser) -> ApiResult<web::Json<FriendRequestLists>> {
    Ok(web::Json(contacts::pending_requests(&state, caller.id).await?))
}

/// Accept or reject a friend request (its receiver only).
#[utoipa::path(
    tag = "contacts",
    request_body = RespondRequest,
    params(("id" = i64, Path, description = "Friend request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The answered request", body = FriendRequestView),
        (status = 403, description = "The caller sent this request", body = ErrorBody),
        (status = 404, description = "No such request for the caller", body = ErrorBody),
        (status = 409, description = "Already answered or cancelled", body = ErrorBody),
    )
)]
#[post("/api/contact/friend-requests/respond/{id}/")]
pub async fn respond_friend_request(
    state: State,
    caller: AuthUser,
    id: web::Path<i64>,
    body: JsonBody<RespondRequest>,
) -> ApiResult<web::Json<FriendRequestView>> {
    let answer = match body.0.action {
        RespondAction::Accept => Answer::Accept,
        RespondAction::Reject => Answer::Reject,
    };
    Ok(web::Json(contacts::answer_request(&state, caller.id, id.into_inner(), answer).await?))
}

/// Cancel a pending friend request (its sender only).
#[utoipa::path(
    tag = "contacts",
    params(("id" = i64, Path, description = "Friend request id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 403, description = "The caller received this request", body = ErrorBody),
        (status = 404, description = "No such request for the caller", body = ErrorBody),
        (status = 409, description = "No longer pending", body = ErrorBody),
    )
)]
#[delete("/api/contact/friend-request/{id:\\d+}/")]
pub async fn cancel_friend_request(state: State, caller: AuthUser, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    contacts::cancel_request(&state, caller.id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's friends.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    responses((status = 200, description = "Friends by username", body = [UserPublic]))
)]
#[get("/api/contact/friends/")]
pub async fn list_friends(state: State, caller: AuthUser) -> ApiResult<web::Json<Vec<UserPublic>>> {
    Ok(web::Json(contacts::friends(&state, caller.id).await?))
}

/// End a friendship.
#[utoipa::path(
    tag = "contacts",
    params(("friend_id" = i64, Path, description = "The friend's user id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No longer friends"),
        (status = 404, description = "Not a friend", body = ErrorBody),
    )
)]
#[delete("/api/contact/friends/{friend_id}/")]
pub async fn remove_friend(state: State, caller: AuthUser, friend_id: web::Path<i64>) -> ApiResult<HttpResponse> {
    contacts::remove_friend(&state, caller.id, UserId(friend_id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Block a user: ends the friendship and pending requests both ways.
#[utoipa::path(
    tag = "contacts",
    request_body = BlockRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Blocked; the blocked user", body = UserPublic),
        (status = 400, description = "Blocking oneself", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already blocked", body = ErrorBody),
    )
)]
#[post("/api/contact/block-user/")]
pub async fn block_user(state: State, caller: AuthUser, body: JsonBody<BlockRequest>) -> ApiResult<HttpResponse> {
    let blocked = contacts::block(&state, caller.id, UserId(body.0.block_user_id)).await?;
    Ok(HttpResponse::Created().json(blocked))
}

/// Users the caller blocked.
#[utoipa::path(
    tag = "contacts",
    security(("bearer" = [])),
    responses((status = 200, description = "Blocked users by username", body = [UserPublic]))
)]
#[get("/api/contact/blocked-users/")]
pub async fn list_blocked_users(state: State, caller: AuthUser) -> ApiResult<web::Json<Vec<UserPublic>>> {
    Ok(web::Json(contacts::blocked_users(&state, caller.id).await?))
}

/// Unblock a user.
#[utoipa::path(
    tag = "contacts",
    request_body = BlockRespondRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Unblocked", body = Empty),
        (status = 404, description = "The user is not blocked", body = ErrorBody),
    )
)]
#[post("/api/contact/block-requests/respond/")]
pub async fn respond_block(state: State, caller: AuthUser, body: JsonBody<BlockRespondRequest>) -> ApiResult<web::Json<Empty>> {
    let BlockRespondRequest { user_id, action: BlockAction::Unblock } = body.0;
    contacts::unblock(&state, caller.id, UserId(user_id)).await?;
    Ok(web::Json(Empty {}))
}

/// Find people by username, first or last name prefix (any case), or exact email.
///
/// Never lists the caller, users the caller blocked, or users who blocked the caller.
#[utoipa::path(
    tag = "contacts",
    params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Matches with their relation to the caller", body = [FoundUser]),
        (status = 400, description = "Blank or too long query, or limit/offset out of range", body = ErrorBody),
    )
)]
#[get("/api/contact/find-friend/")]
pub async fn find_friend(state: State, caller: AuthUser, params: web::Query<SearchParams>) -> ApiResult<web::Json<Vec<FoundUser>>> {
    let search = params.into_inner().parse()?;
    Ok(web::Json(contacts::find_people(&state, caller.id, search).await?))
}

/// Send a friend request to a found user (same as `POST /api/contact/friend-request/`).
#[utoipa::path(
    tag = "contacts",
    params(AddFoundParams),
    request_body = FriendRequestCreate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Request sent (or the mutual request accepted)", body = FriendRequestView),
        (status = 400, description = "A request to oneself", body = ErrorBody),
        (status = 403, description = "A block stands between the two users", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already friends, or a request is already pending", body = ErrorBody),
    )
)]
#[post("/api/contact/find-friend/")]
pub async fn add_found_friend(
    state: State,
    caller: AuthUser,
    _params: web::Query<AddFoundParams>,
    body: JsonBody<FriendRequestCreate>,
) -> ApiResult<HttpResponse> {
    let request = contacts::send_request(&state, caller.id, UserId(body.0.receiver_id)).await?;
    Ok(HttpResponse::Created().json(request))
}
