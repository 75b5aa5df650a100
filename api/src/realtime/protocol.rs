//! The WebSocket frames: what clients send, what the server sends, and their JSON encoding.
//! Server frames are encoded once and shared (`ByteString` clones are reference counts), so a
//! message fanned out to a thousand connections is serialised once.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::dto::{MessageView, RoomView, UserPublic};
use crate::error::{ApiError, ErrorCode, Reason};
use crate::ids::{RoomId, Seq, UserId};

/// A frame from a client on `/ws/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Store and deliver a message; answered by `ack` (or `error` with the same `client_id`).
    Send {
        #[schema(value_type = i64)]
        room_id: RoomId,
        client_id: String,
        body: String,
    },
    /// The user is typing in a room (not stored).
    Typing {
        #[schema(value_type = i64)]
        room_id: RoomId,
    },
    /// The user has read up to `seq` in a room.
    Read {
        #[schema(value_type = i64)]
        room_id: RoomId,
        #[schema(value_type = i64)]
        seq: Seq,
    },
    /// Send every message after these per-room seqs (`{"room_id": seq}`), then `synced`.
    Sync {
        cursors: BTreeMap<String, i64>,
    },
    Ping,
}

/// A frame from the server on `/ws/`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The message with this `client_id` is durably stored.
    Ack {
        client_id: &'a str,
        message: &'a MessageView,
    },
    /// A new message in one of the user's rooms.
    Message {
        message: &'a MessageView,
    },
    Typing {
        #[schema(value_type = i64)]
        room_id: RoomId,
        #[schema(value_type = i64)]
        user_id: UserId,
    },
    /// A member's read receipt moved.
    Read {
        #[schema(value_type = i64)]
        room_id: RoomId,
        #[schema(value_type = i64)]
        user_id: UserId,
        #[schema(value_type = i64)]
        seq: Seq,
    },
    /// A friend came online or went offline.
    Presence {
        #[schema(value_type = i64)]
        user_id: UserId,
        online: bool,
    },
    /// The user was added to a room, or a room of the user changed (members, owner).
    Room {
        room: &'a RoomView,
    },
    /// The user left a room (sent to the user's connections).
    RoomLeft {
        #[schema(value_type = i64)]
        room_id: RoomId,
    },
    /// The end of a `sync`: the last seq sent per room, and the rooms with more to fetch
    /// through history.
    Synced {
        #[schema(value_type = BTreeMap<String, i64>)]
        cursors: BTreeMap<String, Seq>,
        #[schema(value_type = Vec<i64>)]
        has_more: Vec<RoomId>,
    },
    Error {
        code: ErrorCode,
        /// For `forbidden`: why, for machines.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Pong,
}

/// A message as the Channels-compatible `/ws/chat/{room_id}/` endpoint sends it.
#[derive(Debug, Serialize)]
struct ChannelsMessage<'a> {
    message: &'a str,
    sender: &'a UserPublic,
    room_id: RoomId,
    seq: Seq,
    #[serde(serialize_with = "crate::dto::rfc3339")]
    created_at: chrono::DateTime<chrono::Utc>,
}

/// A frame from a client on `/ws/chat/{room_id}/`.
#[derive(Debug, Deserialize)]
pub struct ChannelsInbound {
    pub message: String,
}

pub fn encode(frame: &ServerFrame<'_>) -> ByteString {
    // Serialising these plain structs cannot fail.
    ByteString::from(serde_json::to_string(frame).unwrap_or_default())
}

pub fn error_frame(error: &ApiError, client_id: Option<String>) -> ByteString {
    let reason = match error {
        ApiError::Forbidden { reason, .. } => Some(*reason),
        _ => None,
    };
    encode(&ServerFrame::Error { code: error.code(), reason, message: error.to_string(), client_id })
}

/// The three encodings of one stored message: for other connections, as the sender's `ack`,
/// and for Channels-compatible connections. The last is built only when a connection needs it.
#[derive(Debug)]
pub struct MessageFrames {
    pub room_id: RoomId,
    pub seq: Seq,
    pub message: ByteString,
    pub ack: ByteString,
    channels: OnceLock<ByteString>,
    /// What the Channels form is built from, until it is.
    channels_source: Option<ChannelsSource>,
}

#[derive(Debug)]
struct ChannelsSource {
    body: String,
    sender: UserPublic,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl MessageFrames {
    /// Only the `message` form (for `sync`).
    pub fn encode_message(view: &MessageView) -> ByteString {
        encode(&ServerFrame::Message { message: view })
    }

    pub fn new(view: MessageView) -> MessageFrames {
        // The two frames differ only in their envelope: the view is serialised once for both
        // (the writer builds these for every stored message), into buffers sized up front. A
        // test holds them to `ServerFrame`'s own serialisation.
        let size = 320 + view.body.len() + view.client_id.len();
        let mut message = Vec::with_capacity(size);
        message.extend_from_slice(br#"{"type":"message","message":"#);
        let view_start = message.len();
        json_into(&mut message, &view);
        message.push(b'}');
        let view_json = &message[view_start..message.len() - 1];
        let mut ack = Vec::with_capacity(view_json.len() + view.client_id.len() + 48);
        ack.extend_from_slice(br#"{"type":"ack","client_id":"#);
        json_into(&mut ack, &view.client_id);
        ack.extend_from_slice(br#","message":"#);
        ack.extend_from_slice(view_json);
        ack.push(b'}');
        MessageFrames {
            room_id: view.room_id,
            seq: view.seq,
            message: text(message),
            ack: text(ack),
            channels: OnceLock::new(),
            channels_source: Some(ChannelsSource { body: view.body, sender: view.sender, created_at: view.created_at }),
        }
    }

    /// Frames another node encoded: its `message` form (no connection here sent the message,
    /// so none is owed an `ack`) and its Channels form.
    pub fn encoded(room_id: RoomId, seq: Seq, message: ByteString, channels: ByteString) -> MessageFrames {
        MessageFrames { room_id, seq, ack: message.clone(), message, channels: OnceLock::from(channels), channels_source: None }
    }

    /// The Channels form, built on first use.
    pub fn channels(&self) -> &ByteString {
        self.channels.get_or_init(|| {
            let Some(source) = &self.channels_source else { return ByteString::new() };
            let channels = ChannelsMessage {
                message: &source.body,
                sender: &source.sender,
                room_id: self.room_id,
                seq: self.seq,
                created_at: source.created_at,
            };
            let mut json = Vec::with_capacity(256 + source.body.len());
            json_into(&mut json, &channels);
            text(json)
        })
    }
}

/// Appends `value`'s JSON to `buffer` (serialising these plain structs cannot fail).
fn json_into(buffer: &mut Vec<u8>, value: &impl Serialize) {
    let _ = serde_json::to_writer(buffer, value);
}

/// JSON bytes as text (serde_json writes UTF-8 only).
fn text(json: Vec<u8>) -> ByteString {
    ByteString::from(String::from_utf8(json).unwrap_or_default())
}

/// Parses a client frame. Failures name what is wrong and carry the frame's `client_id`, if
/// it had one, so the client can match the error to its send.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, (ApiError, Option<String>)> {
    // A valid frame is read in one pass; only a bad one is read again as a JSON value, to say
    // what is wrong and find its client id.
    if let Ok(frame) = serde_json::from_str(text) {
        return Ok(frame);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| (ApiError::invalid(format!("frames must be JSON: {e}")), None))?;
    let client_id = value.get("client_id").and_then(Value::as_str).map(str::to_owned);
    if !value.is_object() || value.get("type").is_none() {
        return Err((ApiError::invalid("frames are JSON objects with a \"type\""), client_id));
    }
    serde_json::from_value(value).map_err(|e| (ApiError::invalid(format!("invalid frame: {e}")), client_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_match_the_server_frames_they_stand_for() {
        let sender =
            UserPublic { id: UserId(7), username: "ann".into(), first_name: "Ann \"A\"".into(), last_name: "Lee".into(), online: true };
        let view = MessageView {
            id: 1,
            room_id: RoomId(2),
            seq: Seq(3),
            sender,
            body: "hello \"world\"\n".into(),
            client_id: "c-\u{e9}\"1".into(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            edited_at: None,
            deleted: false,
        };
        let frames = MessageFrames::new(view.clone());
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(json(&frames.message), json(&encode(&ServerFrame::Message { message: &view })));
        assert_eq!(json(&frames.ack), json(&encode(&ServerFrame::Ack { client_id: &view.client_id, message: &view })));
        assert_eq!(json(&frames.message)["message"]["body"], "hello \"world\"\n");
        let channels =
            serde_json::json!({"message": view.body, "sender": view.sender, "room_id": 2, "seq": 3, "created_at": view.created_at});
        assert_eq!(json(frames.channels()), channels);
    }

    #[test]
    fn client_frames_parse_and_errors_keep_the_client_id() {
        assert!(matches!(
            parse_client_frame(r#"{"type":"send","room_id":1,"client_id":"c-1","body":"hi"}"#),
            Ok(ClientFrame::Send { room_id: RoomId(1), .. })
        ));
        assert!(matches!(parse_client_frame(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping)));
        let (error, client_id) = parse_client_frame(r#"{"type":"send","client_id":"c-2","body":"hi"}"#).unwrap_err();
        assert!(error.to_string().contains("room_id"), "{error}");
        assert_eq!(client_id.as_deref(), Some("c-2"));
        assert!(parse_client_frame("not json").is_err());
        assert!(parse_client_frame(r#"{"type":"dance"}"#).is_err());
        assert!(parse_client_frame("[1]").is_err());
    }

    #[test]
    fn server_frames_have_the_contract_shape() {
        let pong: Value = serde_json::from_str(&encode(&ServerFrame::Pong)).unwrap();
        assert_eq!(pong, serde_json::json!({"type": "pong"}));
        let read: Value =
            serde_json::from_str(&encode(&ServerFrame::Read { room_id: RoomId(1), user_id: UserId(7), seq: Seq(42) })).unwrap();
        assert_eq!(read, serde_json::json!({"type": "read", "room_id": 1, "user_id": 7, "seq": 42}));
    }
}
