//! One WebSocket connection: a task on the worker's local set that owns the socket and runs one
//! `select!` over the client's frames, its bounded inbox from the registry, a kick signal and a
//! heartbeat. It always unregisters when the loop ends.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use actix_web::web;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Closed, ProtocolError};
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{ChannelsInbound, ClientFrame, MessageFrames, ServerFrame, encode, error_frame, parse_client_frame};
use super::registry::{Connection, Kick, Mode, Outbound, SessionId, next_session_id};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::services::messages::{self, SendRequest, validate_send};
use crate::services::{contacts, rooms};
use crate::state::AppState;

/// Largest frame a client may send; larger frames close the connection (1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Typing notices per room are passed on at most this often.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// Rooms one `sync` may name.
const SYNC_MAX_ROOMS: usize = 1000;

struct SessionActor {
    state: web::Data<AppState>,
    id: SessionId,
    user: AuthUser,
    mode: Mode,
    outbox: mpsc::Sender<Outbound>,
    /// The highest seq sent per room: a message at or below it is not sent again.
    delivered: HashMap<i64, i64>,
    typing_sent: HashMap<i64, Instant>,
    last_seen: Instant,
}

/// Runs the connection until either side closes it.
pub async fn run(
    state: web::Data<AppState>,
    mut socket: actix_ws::Session,
    stream: actix_ws::MessageStream,
    user: AuthUser,
    mode: Mode,
) {
    let id = next_session_id();
    // The inbox is bounded (WS_INBOX_CAPACITY): the registry never waits on a connection.
    let (outbox, mut inbox) = mpsc::channel(state.config.ws_inbox_capacity);
    let heartbeat_interval = state.config.ws_heartbeat;
    // Silence for three heartbeats means the connection is dead.
    let client_timeout = heartbeat_interval * 3;
    let (kick_signal, mut kicked) = oneshot::channel();
    let user_id = user.id;
    let friends = state.db.run(move |conn| contacts::friend_ids(conn, user_id)).await.unwrap_or_default();
    state.realtime.registry.connect(Connection {
        id,
        user_id,
        auth_session: user.session_id.clone(),
        mode,
        outbox: outbox.clone(),
        kick: kick_signal,
        friends,
    });
    let mut stream = stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES);
    let mut actor = SessionActor {
        state: state.clone(),
        id,
        user,
        mode,
        outbox,
        delivered: HashMap::new(),
        typing_sent: HashMap::new(),
        last_seen: Instant::now(),
    };
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_interval, heartbeat_interval);

    let close: Option<CloseReason> = loop {
        tokio::select! {
            biased;
            kick = &mut kicked => break Some(kick_reason(kick.ok())),
            Some(outbound) = inbox.recv() => {
                if actor.forward(&mut socket, outbound).await.is_err() {
                    break None;
                }
            }
            frame = stream.recv() => {
                actor.last_seen = Instant::now();
                let result = match frame {
                    Some(Ok(AggregatedMessage::Text(text))) => actor.handle_text(&mut socket, &text).await,
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        socket.text(error_frame(&ApiError::invalid("binary frames are not supported; send JSON text"), None)).await
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => socket.pong(&bytes).await,
                    Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                    Some(Ok(AggregatedMessage::Close(reason))) => break reason,
                    Some(Err(ProtocolError::Overflow)) => {
                        break Some(CloseReason { code: CloseCode::Size, description: Some(format!("frames are limited to {MAX_FRAME_BYTES} bytes")) });
                    }
                    Some(Err(error)) => break Some(CloseReason { code: CloseCode::Protocol, description: Some(error.to_string()) }),
                    None => break None,
                };
                if result.is_err() {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if actor.last_seen.elapsed() > client_timeout {
                    break Some(CloseReason { code: CloseCode::Away, description: Some("no heartbeat".into()) });
                }
                if socket.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    state.realtime.registry.disconnect(id);
    let _ = socket.close(close).await;
}

fn kick_reason(kick: Option<Kick>) -> CloseReason {
    match kick {
        Some(Kick::Revoked) => CloseReason { code: CloseCode::Policy, description: Some("session revoked".into()) },
        // 4000: an application code clients can tell apart: reconnect and `sync`.
        _ => CloseReason { code: CloseCode::Other(4000), description: Some("too slow: reconnect and sync".into()) },
    }
}

impl SessionActor {
    /// Writes what the registry sent, skipping a message already sent on this connection.
    async fn forward(&mut self, socket: &mut actix_ws::Session, outbound: Outbound) -> Result<(), Closed> {
        match outbound {
            Outbound::Message { room_id, seq, frame } => {
                let sent = self.delivered.entry(room_id).or_insert(0);
                if seq <= *sent {
                    return Ok(());
                }
                *sent = seq;
                socket.text(frame).await
            }
            Outbound::Frame(frame) => socket.text(frame).await,
        }
    }

    async fn handle_text(&mut self, socket: &mut actix_ws::Session, text: &str) -> Result<(), Closed> {
        match self.mode {
            Mode::AllRooms => self.handle_frame(socket, text).await,
            Mode::ChannelsRoom(room_id) => self.handle_channels(socket, room_id, text).await,
        }
    }

    async fn handle_frame(&mut self, socket: &mut actix_ws::Session, text: &str) -> Result<(), Closed> {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err((error, client_id)) => return socket.text(error_frame(&error, client_id)).await,
        };
        let outcome = match frame {
            ClientFrame::Ping => return socket.text(encode(&ServerFrame::Pong)).await,
            ClientFrame::Send { room_id, client_id, body } => {
                let submitted = validate_send(&body, &client_id).and_then(|()| {
                    let request = SendRequest { room_id, sender_id: self.user.id, body, client_id: client_id.clone() };
                    self.state.realtime.writer.submit(request, self.id, self.outbox.clone())
                });
                return match submitted {
                    Ok(()) => Ok(()),
                    Err(error) => socket.text(error_frame(&error, Some(client_id))).await,
                };
            }
            ClientFrame::Typing { room_id } => self.typing(room_id).await,
            ClientFrame::Read { room_id, seq } => messages::read(&self.state, self.user.id, room_id, seq).await,
            ClientFrame::Sync { cursors } => return self.sync(socket, cursors).await,
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => socket.text(error_frame(&error, None)).await,
        }
    }

    /// Passes a typing notice to the room's other members, at most once a second per room.
    async fn typing(&mut self, room_id: i64) -> Result<(), ApiError> {
        let now = Instant::now();
        if self.typing_sent.get(&room_id).is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL) {
            return Ok(());
        }
        let members = rooms::typing_audience(&self.state, self.user.id, room_id).await?;
        self.typing_sent.insert(room_id, now);
        let frame = encode(&ServerFrame::Typing { room_id, user_id: self.user.id });
        self.state.realtime.registry.to_users(members, frame, Some(self.user.id));
        Ok(())
    }

    /// Sends every message after the client's cursors, room by room in seq order, then
    /// `synced`. Live messages wait in the inbox meanwhile and are deduplicated by seq.
    async fn sync(&mut self, socket: &mut actix_ws::Session, cursors: BTreeMap<String, i64>) -> Result<(), Closed> {
        if cursors.len() > SYNC_MAX_ROOMS {
            return socket.text(error_frame(&ApiError::invalid(format!("sync names at most {SYNC_MAX_ROOMS} rooms")), None)).await;
        }
        let mut parsed = Vec::with_capacity(cursors.len());
        for (room, seq) in &cursors {
            match room.parse::<i64>() {
                Ok(room_id) => parsed.push((room_id, *seq)),
                Err(_) => {
                    let error = ApiError::invalid(format!("sync cursors are keyed by room id, not {room:?}"));
                    return socket.text(error_frame(&error, None)).await;
                }
            }
        }
        let (found, refused) = match messages::sync(&self.state, self.user.id, parsed).await {
            Ok(result) => result,
            Err(error) => return socket.text(error_frame(&error, None)).await,
        };
        for room_id in refused {
            let error = ApiError::Forbidden(format!("you are not a member of room {room_id}"));
            socket.text(error_frame(&error, None)).await?;
        }
        let mut reached = BTreeMap::new();
        let mut has_more = Vec::new();
        for room in found {
            let mut last = cursors.get(&room.room_id.to_string()).copied().unwrap_or(0);
            for message in &room.messages {
                socket.text(MessageFrames::new(message).message).await?;
                last = message.seq;
            }
            let sent = self.delivered.entry(room.room_id).or_insert(0);
            *sent = (*sent).max(last);
            reached.insert(room.room_id.to_string(), last);
            if room.has_more {
                has_more.push(room.room_id);
            }
        }
        socket.text(encode(&ServerFrame::Synced { cursors: reached, has_more })).await
    }

    /// `/ws/chat/{room_id}/`: `{"message": "…"}` in, the Channels shape out.
    async fn handle_channels(&mut self, socket: &mut actix_ws::Session, room_id: i64, text: &str) -> Result<(), Closed> {
        let submitted = serde_json::from_str::<ChannelsInbound>(text)
            .map_err(|e| ApiError::invalid(format!("expected {{\"message\": \"…\"}}: {e}")))
            .and_then(|inbound| {
                let client_id = format!("ch-{}", crate::auth::sessions::random_token(12));
                validate_send(&inbound.message, &client_id)?;
                let request = SendRequest { room_id, sender_id: self.user.id, body: inbound.message, client_id };
                self.state.realtime.writer.submit(request, self.id, self.outbox.clone())
            });
        match submitted {
            Ok(()) => Ok(()),
            Err(error) => socket.text(ByteString::from(serde_json::to_string(&error.body()).unwrap_or_default())).await,
        }
    }
}
