//! `/api/contact/chat_ai…` and the token balance: the AI assistant, plain and streamed; and
//! the admin route that grants tokens.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::ai::{AiConversation, AiHistoryEntry, AiReply, Ask, balance::Balance};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::AdminUser;
use crate::extract::JsonBody;
use crate::ids::UserId;
use crate::services::assistant::{self as ai, HistoryQuery};
use crate::state::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, ToSchema)]
pub struct AskRequest {
    /// 1-4000 characters.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub message: String,
    /// Continue this conversation; a new one starts when absent.
    pub conversation_id: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AiHistoryParams {
    /// Only this conversation's turns.
    pub conversation_id: Option<i64>,
    /// Turns per page, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Turns to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GrantRequest {
    pub user_id: i64,
    /// Tokens to add, 1-100,000,000.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub tokens: i64,
}

fn ask_of(caller: &AuthUser, body: AskRequest) -> Ask {
    Ask { user_id: caller.id, message: body.message, conversation_id: body.conversation_id }
}

/// Ask the assistant and wait for the whole reply.
#[utoipa::path(
    tag = "ai",
    request_body = AskRequest,
    security(("bearer" = [])),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "The reply and what it cost", body = AiReply),
        (status = 400, description = "Blank prompt", body = ErrorBody),
        (status = 402, description = "Not enough tokens (`insufficient_tokens`); no provider call was made", body = ErrorBody),
        (status = 404, description = "No such conversation of the caller", body = ErrorBody),
        (status = 413, description = "Prompt over 4000 characters", body = ErrorBody),
        (status = 503, description = "No provider configured, or it failed or timed out (`ai_unavailable`); nothing is charged", body = ErrorBody),
    )
)]
#[post("/api/contact/chat_ai/")]
pub async fn chat_ai(state: State, caller: AuthUser, body: JsonBody<AskRequest>) -> ApiResult<web::Json<AiReply>> {
    state.limits.check(crate::ratelimit::AI_PER_USER, &caller.id.to_string()).await?;
    Ok(web::Json(ai::ask(&state, ask_of(&caller, body.0)).await?))
}

/// Ask the assistant and receive the reply as it is written.
///
/// `text/event-stream`: `delta` events (`{"content": "…"}`), then one `done` event with the
/// fields of the plain reply, or an `error` event. Errors before the stream starts are plain
/// JSON error responses. Closing the connection stops the upstream call; what was produced is
/// charged.
#[utoipa::path(
    tag = "ai",
    request_body = AskRequest,
    security(("bearer" = [])),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "Server-sent events: delta…, then done", content_type = "text/event-stream", body = String),
        (status = 402, description = "Not enough tokens", body = ErrorBody),
        (status = 503, description = "No provider configured, or it failed", body = ErrorBody),
    )
)]
#[post("/api/contact/chat_ai/stream/")]
pub async fn chat_ai_stream(state: State, caller: AuthUser, body: JsonBody<AskRequest>) -> ApiResult<HttpResponse> {
    state.limits.check(crate::ratelimit::AI_PER_USER, &caller.id.to_string()).await?;
    let events = ai::ask_stream(&state, ask_of(&caller, body.0)).await?;
    let body = futures_util::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), events))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The caller's AI token balance.
#[utoipa::path(
    tag = "ai",
    security(("bearer" = [])),
    responses((status = 200, description = "Tokens granted, used and available", body = Balance))
)]
#[get("/api/contact/token_balance/")]
pub async fn token_balance(state: State, caller: AuthUser) -> ApiResult<web::Json<Balance>> {
    Ok(web::Json(ai::token_balance(&state, caller.id).await?))
}

/// The caller's stored turns, oldest first.
#[utoipa::path(
    tag = "ai",
    params(AiHistoryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Turns", body = [AiHistoryEntry]),
        (status = 404, description = "No such conversation of the caller", body = ErrorBody),
    )
)]
#[get("/api/contact/chat_ai_history/")]
pub async fn chat_ai_history(
    state: State,
    caller: AuthUser,
    params: web::Query<AiHistoryParams>,
) -> ApiResult<web::Json<Vec<AiHistoryEntry>>> {
    let params = params.into_inner();
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be between 1 and 200"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_field("offset", "must not be negative"));
    }
    let query = HistoryQuery { conversation_id: params.conversation_id, limit, offset };
    Ok(web::Json(ai::history(&state, caller.id, query).await?))
}

/// The caller's conversations with the assistant, most recent first.
#[utoipa::path(
    tag = "ai",
    security(("bearer" = [])),
    responses((status = 200, description = "Conversations", body = [AiConversation]))
)]
#[get("/api/contact/chat_ai_conversations/")]
pub async fn chat_ai_conversations(state: State, caller: AuthUser) -> ApiResult<web::Json<Vec<AiConversation>>> {
    Ok(web::Json(ai::conversations(&state, caller.id).await?))
}

/// Grant AI tokens to a user (administrators only).
#[utoipa::path(
    tag = "admin",
    request_body = GrantRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's balance after the grant", body = Balance),
        (status = 400, description = "Tokens out of range", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
#[post("/api/admin/ai-tokens/")]
pub async fn grant_ai_tokens(state: State, admin: AdminUser, body: JsonBody<GrantRequest>) -> ApiResult<web::Json<Balance>> {
    let GrantRequest { user_id, tokens } = body.0;
    let user_id = UserId(user_id);
    if !(1..=100_000_000).contains(&tokens) {
        return Err(ApiError::invalid_field("tokens", "must be between 1 and 100,000,000"));
    }
    let balance = ai::grant_tokens(&state, user_id, tokens).await?;
    let event = crate::services::audit::Event {
        action: "admin_grant_ai_tokens",
        actor: Some(admin.0.id),
        subject: Some(user_id),
        address: None,
        detail: format!("{tokens} tokens"),
    };
    crate::services::audit::record(&state, event).await;
    Ok(web::Json(balance))
}
