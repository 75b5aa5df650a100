//! The WebSocket endpoints: `/ws/` (every room of the user) and the Channels-compatible
//! `/ws/chat/{room_id}/`. Both authenticate and check the browser origin before upgrading.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{AuthUser, authenticate};
use crate::error::{ApiError, ApiResult, ErrorBody, Reason};
use crate::extract::{bearer_token, request_scheme};
use crate::ids::RoomId;
use crate::realtime::Realtime;
use crate::realtime::frame_limit::LimitedPayload;
use crate::realtime::registry::Mode;
use crate::realtime::session;
use crate::services::access::{self, RoomAct};
use crate::state::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, IntoParams)]
pub struct SocketParams {
    /// An access token (browsers cannot set headers on WebSockets; other clients may use
    /// `Authorization: Bearer` instead).
    pub token: Option<String>,
}

/// Authenticates an upgrade request: a browser `Origin` must be allowed; the token comes from
/// `?token=` or the `Authorization` header.
async fn authenticate_upgrade(state: &State, req: &HttpRequest, params: SocketParams) -> ApiResult<AuthUser> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        if !state.config.origin_allowed_for(origin, host, request_scheme(req.headers())) {
            return Err(ApiError::forbidden(Reason::OriginNotAllowed, format!("origin {origin} is not allowed")));
        }
    }
    let header_token = bearer_token(req).ok();
    let token = params.token.or(header_token).ok_or_else(|| ApiError::not_authenticated("pass an access token as ?token="))?;
    authenticate(&state.keys, &state.db, &state.trust, &token).await
}

/// Answers the upgrade once the connection is registered, so that everything stored after the
/// handshake reaches it.
async fn upgrade(
    state: State,
    realtime: &Realtime,
    req: &HttpRequest,
    body: web::Payload,
    user: AuthUser,
    mode: Mode,
) -> ApiResult<HttpResponse> {
    // The client's bytes pass the frame limit before actix-ws buffers them.
    let limited = LimitedPayload::new(body.into_inner(), session::MAX_FRAME_BYTES);
    let body = web::Payload::from_request(req, &mut Payload::Stream { payload: Box::pin(limited) })
        .into_inner()
        .map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {e}")))?;
    let (response, socket, stream) = actix_ws::handle(req, body).map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {e}")))?;
    let registered = session::register(&state, realtime, &user, mode).await?;
    actix_web::rt::spawn(session::run(state.into_inner(), realtime.clone(), socket, stream, user, registered));
    Ok(response)
}

/// Open the real-time connection that carries every room of the user.
///
/// Frames are JSON text with a `type`; see `ClientFrame` and `ServerFrame` in the schemas.
#[utoipa::path(
    tag = "realtime",
    params(SocketParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Browser origin not allowed", body = ErrorBody),
        (status = 429, description = "The user holds the most connections allowed (`WS_MAX_CONNECTIONS_PER_USER`); `Retry-After` says when to retry", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry", body = ErrorBody),
    )
)]
#[get("/ws/")]
pub async fn open_socket(
    state: State,
    realtime: web::Data<Realtime>,
    req: HttpRequest,
    body: web::Payload,
    params: web::Query<SocketParams>,
) -> ApiResult<HttpResponse> {
    let user = authenticate_upgrade(&state, &req, params.into_inner()).await?;
    upgrade(state, &realtime, &req, body, user, Mode::AllRooms).await
}

/// The Channels-compatible single-room connection: send `{"message": "hi"}`, receive
/// `{"message", "sender", "room_id", "seq", "created_at"}`.
#[utoipa::path(
    tag = "realtime",
    params(("room_id" = i64, Path, description = "Room id"), SocketParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
        (status = 403, description = "Not a member, or browser origin not allowed", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 429, description = "The user holds the most connections allowed (`WS_MAX_CONNECTIONS_PER_USER`); `Retry-After` says when to retry", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry", body = ErrorBody),
    )
)]
#[get("/ws/chat/{room_id}/")]
pub async fn channels_socket(
    state: State,
    realtime: web::Data<Realtime>,
    req: HttpRequest,
    body: web::Payload,
    room_id: web::Path<i64>,
    params: web::Query<SocketParams>,
) -> ApiResult<HttpResponse> {
    let user = authenticate_upgrade(&state, &req, params.into_inner()).await?;
    let (room_id, user_id) = (RoomId(room_id.into_inner()), user.id);
    state.db.run(move |conn| access::room_for(conn, room_id, user_id, RoomAct::Read)).await?;
    upgrade(state, &realtime, &req, body, user, Mode::ChannelsRoom(room_id)).await
}
