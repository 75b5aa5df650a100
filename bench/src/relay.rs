//! The bare relay: tokio + WebSocket, no authentication, no storage. It speaks just enough of
//! the chat protocol (`send` in; `ack` and `message` out, with a per-room seq) for the fan-out
//! driver, so its deliveries per second are the ceiling of this machine for the same load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Default)]
struct Room {
    seq: i64,
    members: Vec<(u64, mpsc::UnboundedSender<Utf8Bytes>)>,
}

type Rooms = Arc<Mutex<HashMap<i64, Room>>>;

#[derive(Deserialize)]
struct Send {
    room_id: i64,
    client_id: String,
    body: String,
}

/// Serves until killed; prints `relay listening on http://ADDR` first.
pub async fn serve(bind: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    println!("relay listening on http://{}", listener.local_addr()?);
    let rooms: Rooms = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (socket, _) = listener.accept().await?;
        // As chat-api does: small frames go out at once, not after the peer's delayed ACK.
        socket.set_nodelay(true)?;
        next_id += 1;
        tokio::spawn(connection(socket, rooms.clone(), next_id));
    }
}

// The handshake callback's error type is tungstenite's own (an HTTP response), large or not.
#[allow(clippy::result_large_err)]
async fn connection(socket: TcpStream, rooms: Rooms, id: u64) {
    let mut room_id = 0i64;
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let accepted = tokio_tungstenite::accept_hdr_async_with_config(
        socket,
        |request: &Request, response: Response| {
            // `?token=<room>:<member>`
            room_id = request
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("token="))
                .and_then(|t| t.split(':').next())
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            // A member of the room before the client hears the handshake's answer: a send that
            // follows it at once reaches every connection that has been answered.
            rooms.lock().unwrap_or_else(|p| p.into_inner()).entry(room_id).or_default().members.push((id, tx));
            Ok(response)
        },
        Some(crate::websocket_config()),
    )
    .await;
    let leave = |rooms: &Rooms| {
        if let Some(room) = rooms.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&room_id) {
            room.members.retain(|(member, _)| *member != id);
        }
    };
    let Ok(socket) = accepted else { return leave(&rooms) };
    let (mut sink, mut stream) = socket.split();
    // Every frame already queued goes out in one write, as chat-api's sessions write theirs:
    // a flush per frame would cost the relay a system call per delivery and understate the
    // ceiling.
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut fed = sink.feed(Message::Text(frame)).await;
            while fed.is_ok() {
                let Ok(frame) = rx.try_recv() else { break };
                fed = sink.feed(Message::Text(frame)).await;
            }
            if fed.is_err() || sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(send) = serde_json::from_str::<Send>(&text) else { continue };
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        let room = rooms.entry(send.room_id).or_default();
        room.seq += 1;
        let message = json!({"room_id": send.room_id, "seq": room.seq, "body": send.body, "client_id": send.client_id});
        let to_others = Utf8Bytes::from(json!({"type": "message", "message": message}).to_string());
        let to_sender = Utf8Bytes::from(json!({"type": "ack", "client_id": send.client_id, "message": message}).to_string());
        for (member, tx) in &room.members {
            let _ = tx.send(if *member == id { to_sender.clone() } else { to_others.clone() });
        }
    }
    leave(&rooms);
    writer.abort();
}
