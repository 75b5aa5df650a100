//! A WebSocket client for tests: connects to the real server, sends JSON frames and waits for
//! frames of a given type.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug)]
pub enum Ending {
    Closed(Option<CloseFrame>),
    Dropped,
}

impl WsClient {
    pub fn new(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        WsClient { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("sending a frame");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("sending a frame");
    }

    /// The next JSON text frame within `wait`, or `None`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??.ok()?;
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("frames are JSON")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next JSON text frame (waiting up to 10 s).
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(10)).await.expect("no frame arrived within 10 s")
    }

    /// The next frame whose `type` is `kind`, skipping others (presence, typing…).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_within(left).await.unwrap_or_else(|| panic!("no {kind:?} frame within 10 s"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The seqs of the `message` frames of `room` until `synced`, and the `synced` frame.
    pub async fn message_seqs_until_synced(&mut self, room: i64) -> (Vec<i64>, Value) {
        let mut seqs = Vec::new();
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("message") if frame["message"]["room_id"] == room => seqs.push(frame["message"]["seq"].as_i64().unwrap()),
                Some("synced") => return (seqs, frame),
                _ => {}
            }
        }
    }

    /// Every frame of type `kind` that arrives within `wait`.
    pub async fn collect_of(&mut self, kind: &str, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        while let Some(frame) = self.next_within(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            if frame["type"] == kind {
                frames.push(frame);
            }
        }
        frames
    }

    /// The next `count` frames of type `kind`, skipping others.
    pub async fn take_of(&mut self, kind: &str, count: usize) -> Vec<Value> {
        let mut frames = Vec::with_capacity(count);
        while frames.len() < count {
            frames.push(self.next_of(kind).await);
        }
        frames
    }

    /// Every JSON text frame until the server ends the connection (up to `wait`), and how it
    /// ended.
    pub async fn frames_until_close(&mut self, wait: Duration) -> (Vec<Value>, Ending) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the connection was not closed within {wait:?}"),
                Ok(None) | Ok(Some(Err(_))) => return (frames, Ending::Dropped),
                Ok(Some(Ok(Message::Close(frame)))) => return (frames, Ending::Closed(frame)),
                Ok(Some(Ok(Message::Text(text)))) => frames.push(serde_json::from_str(&text).expect("frames are JSON")),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Reads until the server ends the connection (up to `wait`); counts the text frames read.
    pub async fn read_to_end(&mut self, wait: Duration) -> (usize, Ending) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the connection was not closed within {wait:?} ({frames} frames read)"),
                Ok(None) | Ok(Some(Err(_))) => return (frames, Ending::Dropped),
                Ok(Some(Ok(Message::Close(frame)))) => return (frames, Ending::Closed(frame)),
                Ok(Some(Ok(Message::Text(_)))) => frames += 1,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
