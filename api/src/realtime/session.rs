//! One WebSocket connection: a task on the worker's local set that owns the socket and runs one
//! `select!` over the client's frames, its bounded inbox from the registry, a kick signal and a
//! heartbeat. It always unregisters when it ends, however it ends.
//!
//! Ordering: live messages are held back until the client's first `sync` succeeds (or its first
//! other frame, or a short grace period), so a reconnecting client receives what it missed
//! before anything newer, each room in seq order; after that, a message at or below the highest
//! seq already sent on this connection is not sent again. A sync that comes late (after live
//! messages were let through) still brings every message after its cursor that this connection
//! has not sent, even below ones it has: nothing is skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Closed, ProtocolError};
use bytestring::ByteString;
use rustc_hash::FxHashMap;
use tokio::sync::{Semaphore, oneshot};

use super::Realtime;
use super::delivery::{Outbound, SessionId};
use super::frame_limit::LimitedPayload;
use super::inbox::{Inbox, Outbox, inbox};
use super::protocol::{ChannelsInbound, ClientFrame, MessageFrames, ServerFrame, encode, error_frame, parse_client_frame};
use super::registry::{Connection, Kick, Mode, RegistryHandle, next_session_id};
use crate::auth::AuthUser;
use crate::db;
use crate::domain::{ClientId, MessageBody, SendRequest, SyncCursors};
use crate::error::{ApiError, ApiResult};
use crate::ids::{RoomId, Seq};
use crate::ratelimit::LocalLimit;
use crate::services::{access, messages, rooms};
use crate::state::{AppState, State};

/// Largest frame a client may send; larger frames close the connection (1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Typing notices per room are passed on at most this often.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// How long live messages wait for the client's first frame after connecting.
const SYNC_GRACE: Duration = Duration::from_secs(2);
/// Sends one connection may have waiting in the writer.
const MAX_SENDS_IN_FLIGHT: usize = 256;
/// A socket write that takes longer means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket, with every write bounded in time.
struct Socket(actix_ws::Session);

impl Socket {
    async fn text(&mut self, frame: impl Into<ByteString>) -> Result<(), Closed> {
        bounded(self.0.text(frame)).await
    }

    async fn ping(&mut self) -> Result<(), Closed> {
        bounded(self.0.ping(b"")).await
    }

    async fn pong(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        bounded(self.0.pong(bytes)).await
    }

    async fn close(self, reason: Option<CloseReason>) {
        let _ = bounded(self.0.close(reason)).await;
    }
}

/// Runs a socket write, failing it once it has waited [`WRITE_TIMEOUT`]. Nearly every write
/// finishes at its first poll (the socket's queue has room); only one that has to wait sets a
/// timer, which spares the rest a clock read and a timer each.
async fn bounded(write: impl Future<Output = Result<(), Closed>>) -> Result<(), Closed> {
    let mut write = std::pin::pin!(write);
    match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        Poll::Ready(done) => done,
        Poll::Pending => tokio::time::timeout(WRITE_TIMEOUT, write).await.unwrap_or(Err(Closed)),
    }
}

/// Unregisters the connection when dropped: on any exit, panics included.
struct Registration {
    registry: RegistryHandle,
    id: SessionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.disconnect(self.id);
    }
}

struct SessionActor {
    state: State,
    realtime: Realtime,
    id: SessionId,
    user: AuthUser,
    mode: Mode,
    outbox: Outbox,
    /// The highest seq sent per room: a message at or below it is not sent again.
    delivered: FxHashMap<RoomId, Seq>,
    /// Live messages held until the client's first frame; `None` once released.
    held: Option<Vec<Outbound>>,
    /// Whether a sync has succeeded on this connection.
    synced: bool,
    /// Per room, the first message written here before any sync: a later sync sends what lies
    /// between its cursor and this seq, which this connection never wrote.
    written_unsynced_from: FxHashMap<RoomId, Seq>,
    hold_limit: usize,
    sends_in_flight: Arc<Semaphore>,
    /// Every other frame kind, together.
    frame_rate: LocalLimit,
    /// The read position last stored per room from this connection: a `read` at or below it
    /// costs nothing (clients repeat them as they scroll).
    reads_stored: FxHashMap<RoomId, Seq>,
    typing_sent: FxHashMap<RoomId, Instant>,
    last_seen: Instant,
}

/// A connection the registry knows, before its upgrade is answered: every message stored
/// from then on reaches its inbox, so a client that sends nothing loses nothing between its
/// handshake and its first frame.
pub struct Registered {
    id: SessionId,
    mode: Mode,
    outbox: Outbox,
    inbox: Inbox,
    kicked: oneshot::Receiver<Kick>,
    /// Unregisters on drop, however the connection ends (or if it never starts).
    _registration: Registration,
}

/// Registers a connection of `user` with the registry (its friends, for presence, come from
/// the database first).
pub async fn register(state: &AppState, realtime: &Realtime, user: &AuthUser, mode: Mode) -> ApiResult<Registered> {
    let id = next_session_id();
    // The inbox is bounded (WS_INBOX_CAPACITY): the registry never waits on a connection.
    let (outbox, inbox) = inbox(state.config.ws_inbox_capacity);
    let (kick_signal, kicked) = oneshot::channel();
    let user_id = user.id;
    let friends = state.db.run(move |conn| db::contacts::friend_ids(conn, user_id)).await?;
    // The guard first: if the upgrade is dropped while registering, the registry still forgets it.
    let registration = Registration { registry: realtime.registry.clone(), id };
    let connection =
        Connection { id, user_id, auth_session: user.session_id.clone(), mode, outbox: outbox.clone(), kick: kick_signal, friends };
    if !realtime.registry.connect(connection).await {
        return Err(ApiError::RateLimited { retry_after_secs: 10 });
    }
    Ok(Registered { id, mode, outbox, inbox, kicked, _registration: registration })
}

/// Runs a registered connection until either side closes it.
pub async fn run(
    state: State,
    realtime: Realtime,
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    user: AuthUser,
    registered: Registered,
) {
    let mut socket = Socket(session);
    let Registered { id, mode, outbox, mut inbox, mut kicked, _registration } = registered;
    let heartbeat_interval = state.config.ws_heartbeat;
    // Silence for three heartbeats means the connection is dead.
    let client_timeout = heartbeat_interval * 3;
    let mut stream = stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES);
    let mut actor = SessionActor {
        state: state.clone(),
        realtime,
        id,
        user,
        mode,
        outbox,
        delivered: FxHashMap::default(),
        // Channels clients never sync: nothing to wait for.
        held: (mode == Mode::AllRooms).then(Vec::new),
        synced: false,
        written_unsynced_from: FxHashMap::default(),
        hold_limit: state.config.ws_inbox_capacity,
        sends_in_flight: Arc::new(Semaphore::new(MAX_SENDS_IN_FLIGHT)),
        frame_rate: LocalLimit::new(crate::ratelimit::FRAMES_PER_CONNECTION, state.config.rate_limit_scale),
        reads_stored: FxHashMap::default(),
        typing_sent: FxHashMap::default(),
        last_seen: Instant::now(),
    };
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_interval, heartbeat_interval);
    let grace = tokio::time::sleep(SYNC_GRACE);
    tokio::pin!(grace);

    let close: Option<CloseReason> = loop {
        tokio::select! {
            kick = &mut kicked => {
                // A server shutting down has put the answers to what it stored in the inbox
                // first: they are written before the close.
                if kick == Ok(Kick::Shutdown) {
                    while let Some(parcel) = inbox.try_recv() {
                        if actor.forward(&mut socket, parcel).await.is_err() {
                            break;
                        }
                    }
                }
                break Some(kick_reason(kick.ok()));
            }
            Some(parcel) = inbox.recv() => {
                if actor.forward(&mut socket, parcel).await.is_err() {
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
                    Some(Err(error)) if oversized(&error) => {
                        break Some(CloseReason { code: CloseCode::Size, description: Some(format!("frames are limited to {MAX_FRAME_BYTES} bytes")) });
                    }
                    Some(Err(error)) => break Some(CloseReason { code: CloseCode::Protocol, description: Some(error.to_string()) }),
                    None => break None,
                };
                if result.is_err() {
                    break None;
                }
            }
            _ = &mut grace, if actor.held.is_some() => {
                if actor.release(&mut socket).await.is_err() {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if actor.last_seen.elapsed() > client_timeout {
                    break Some(CloseReason { code: CloseCode::Away, description: Some("no heartbeat".into()) });
                }
                if socket.ping().await.is_err() {
                    break None;
                }
            }
        }
    };
    socket.close(close).await;
}

/// Whether the client sent a frame over [`MAX_FRAME_BYTES`] (refused by its header, or by the
/// parser once whole).
fn oversized(error: &ProtocolError) -> bool {
    match error {
        ProtocolError::Overflow => true,
        ProtocolError::Io(error) => LimitedPayload::refused(error),
        _ => false,
    }
}

fn kick_reason(kick: Option<Kick>) -> CloseReason {
    match kick {
        Some(Kick::Revoked) => CloseReason { code: CloseCode::Policy, description: Some("session revoked".into()) },
        Some(Kick::Shutdown) => CloseReason { code: CloseCode::Restart, description: Some("server restarting: reconnect and sync".into()) },
        // 4000: an application code clients can tell apart: reconnect and `sync`.
        _ => CloseReason { code: CloseCode::Other(4000), description: Some("too slow: reconnect and sync".into()) },
    }
}

/// What handling a client frame came to, for the hold on live messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    Synced,
    /// A sync answered with an error: the client will retry it.
    FailedSync,
    Other,
}

impl SessionActor {
    /// Writes what the registry sent, holding live messages until the first sync.
    async fn forward(&mut self, socket: &mut Socket, parcel: Vec<Outbound>) -> Result<(), Closed> {
        for outbound in parcel {
            if let (Some(held), Outbound::Message { ack: false, .. }) = (&mut self.held, &outbound) {
                held.push(outbound);
                if held.len() >= self.hold_limit {
                    self.release(socket).await?;
                }
                continue;
            }
            self.write(socket, outbound).await?;
        }
        Ok(())
    }

    async fn write(&mut self, socket: &mut Socket, outbound: Outbound) -> Result<(), Closed> {
        if let Outbound::Message { room_id, seq, .. } = &outbound
            && !self.synced
        {
            self.written_unsynced_from.entry(*room_id).or_insert(*seq);
        }
        match outbound {
            // An ack is always written: the sender is waiting for it, whatever it has seen.
            Outbound::Message { room_id, seq, frame, ack: true } => {
                let sent = self.delivered.entry(room_id).or_insert(Seq::ZERO);
                *sent = (*sent).max(seq);
                socket.text(frame).await
            }
            Outbound::Message { room_id, seq, frame, ack: false } => {
                let sent = self.delivered.entry(room_id).or_insert(Seq::ZERO);
                if seq <= *sent {
                    return Ok(());
                }
                *sent = seq;
                socket.text(frame).await
            }
            Outbound::Frame(frame) => socket.text(frame).await,
        }
    }

    /// Writes the held live messages (those a sync already sent are skipped) and stops holding.
    async fn release(&mut self, socket: &mut Socket) -> Result<(), Closed> {
        for outbound in self.held.take().unwrap_or_default() {
            self.write(socket, outbound).await?;
        }
        Ok(())
    }

    async fn handle_text(&mut self, socket: &mut Socket, text: &str) -> Result<(), Closed> {
        match self.mode {
            Mode::AllRooms => {
                // The first frame ends the wait for a sync, unless it is a sync that failed:
                // the client retries it, and what is held waits for that.
                if self.handle_frame(socket, text).await? == Handled::FailedSync {
                    return Ok(());
                }
                self.release(socket).await
            }
            Mode::ChannelsRoom(room_id) => self.handle_channels(socket, room_id, text).await,
        }
    }

    async fn handle_frame(&mut self, socket: &mut Socket, text: &str) -> Result<Handled, Closed> {
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err((error, client_id)) => return socket.text(error_frame(&error, client_id)).await.map(|()| Handled::Other),
        };
        if !matches!(frame, ClientFrame::Send { .. })
            && let Err(error) = self.frame_rate.check()
        {
            let handled = if matches!(frame, ClientFrame::Sync { .. }) { Handled::FailedSync } else { Handled::Other };
            return socket.text(error_frame(&error, None)).await.map(|()| handled);
        }
        let outcome = match frame {
            ClientFrame::Ping => return socket.text(encode(&ServerFrame::Pong)).await.map(|()| Handled::Other),
            ClientFrame::Send { room_id, client_id, body } => match self.submit(room_id, body, ClientId::parse(client_id.clone())).await {
                Ok(()) => Ok(()),
                Err(error) => return socket.text(error_frame(&error, Some(client_id))).await.map(|()| Handled::Other),
            },
            ClientFrame::Typing { room_id } => self.typing(room_id).await,
            ClientFrame::Read { room_id, seq } => self.read(room_id, seq).await,
            ClientFrame::Sync { cursors } => return self.sync(socket, cursors).await,
        };
        match outcome {
            Ok(()) => Ok(Handled::Other),
            Err(error) => socket.text(error_frame(&error, None)).await.map(|()| Handled::Other),
        }
    }

    /// Hands a send to the writer, within the user's message budget (one for REST and every
    /// socket of the user, on every node) and this connection's allowance of sends in flight.
    async fn submit(&mut self, room_id: RoomId, body: String, client_id: ApiResult<ClientId>) -> Result<(), ApiError> {
        let body = MessageBody::parse(body)?;
        let client_id = client_id?;
        self.state.limits.check(crate::ratelimit::MESSAGES_PER_USER, &self.user.id.to_string()).await?;
        let permit = self.sends_in_flight.clone().try_acquire_owned().map_err(|_| ApiError::RateLimited { retry_after_secs: 1 })?;
        let request = SendRequest { room_id, sender_id: self.user.id, body, client_id };
        self.realtime.writer.submit(request, self.id, self.outbox.clone(), permit)
    }

    /// Stores a read position, unless this connection stored one at least as far already.
    async fn read(&mut self, room_id: RoomId, seq: Seq) -> Result<(), ApiError> {
        if self.reads_stored.get(&room_id).is_some_and(|stored| *stored >= seq) {
            return Ok(());
        }
        messages::read(&self.state, self.user.id, room_id, seq).await?;
        self.reads_stored.insert(room_id, seq);
        Ok(())
    }

    /// Passes a typing notice to the room's other members, at most once a second per room
    /// (counted before any database work, so refused notices are throttled too).
    async fn typing(&mut self, room_id: RoomId) -> Result<(), ApiError> {
        let now = Instant::now();
        if self.typing_sent.get(&room_id).is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL) {
            return Ok(());
        }
        if self.typing_sent.len() > 1000 {
            self.typing_sent.retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
        }
        self.typing_sent.insert(room_id, now);
        let members = rooms::typing_audience(&self.state, self.user.id, room_id).await?;
        let frame = encode(&ServerFrame::Typing { room_id, user_id: self.user.id });
        self.realtime.registry.to_users(members, frame, Some(self.user.id));
        Ok(())
    }

    /// Sends every message after the client's cursors, room by room in seq order (skipping what
    /// this connection already sent), then `synced`.
    async fn sync(&mut self, socket: &mut Socket, cursors: BTreeMap<String, i64>) -> Result<Handled, Closed> {
        let parsed = match SyncCursors::parse(&cursors) {
            Ok(parsed) => parsed,
            Err(error) => return socket.text(error_frame(&error, None)).await.map(|()| Handled::FailedSync),
        };
        let (found, refused) = match messages::sync(&self.state, self.user.id, parsed.clone()).await {
            Ok(result) => result,
            Err(error) => return socket.text(error_frame(&error, None)).await.map(|()| Handled::FailedSync),
        };
        for room_id in refused {
            let error = access::not_member_of(room_id);
            socket.text(error_frame(&error, None)).await?;
        }
        let mut reached = BTreeMap::new();
        let mut has_more = Vec::new();
        for room in found {
            // The client has everything up to its cursor: a live copy of it is not sent again.
            let cursor = parsed.get(room.room_id);
            // Live messages let through before any sync began at this seq: those below it were
            // never written here, however high `delivered` is.
            let never_written_below = self.written_unsynced_from.remove(&room.room_id);
            let mut sent = self.delivered.get(&room.room_id).copied().unwrap_or(Seq::ZERO).max(cursor);
            let mut last = cursor;
            for message in &room.messages {
                let in_the_hole = never_written_below.is_some_and(|first_live| message.seq < first_live);
                if in_the_hole || message.seq > sent {
                    sent = sent.max(message.seq);
                    socket.text(MessageFrames::encode_message(message)).await?;
                }
                last = last.max(message.seq);
            }
            self.delivered.insert(room.room_id, sent);
            reached.insert(room.room_id.to_string(), last);
            if room.has_more {
                has_more.push(room.room_id);
            }
        }
        self.synced = true;
        socket.text(encode(&ServerFrame::Synced { cursors: reached, has_more })).await.map(|()| Handled::Synced)
    }

    /// `/ws/chat/{room_id}/`: `{"message": "…"}` in, the Channels shape out.
    async fn handle_channels(&mut self, socket: &mut Socket, room_id: RoomId, text: &str) -> Result<(), Closed> {
        let submitted = match serde_json::from_str::<ChannelsInbound>(text) {
            Ok(inbound) => {
                let client_id = ClientId::generate("ch", &crate::auth::sessions::random_token(12));
                self.submit(room_id, inbound.message, Ok(client_id)).await
            }
            Err(e) => Err(ApiError::invalid(format!("expected {{\"message\": \"…\"}}: {e}"))),
        };
        match submitted {
            Ok(()) => Ok(()),
            Err(error) => socket.text(ByteString::from(serde_json::to_string(&error.body()).unwrap_or_default())).await,
        }
    }
}
