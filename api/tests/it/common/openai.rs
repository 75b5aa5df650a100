//! An OpenAI-compatible server on 127.0.0.1 for tests: `POST /v1/chat/completions`, plain and
//! streamed (SSE, usage in the last chunk). The last user message picks a behaviour:
//! `[fail]` answers 500, `[leak]` answers 401 with an error text that echoes [`LEAKED_KEY`] and the
//! server's URL (as real providers do), `[hang]` never answers, `[delay]` answers after 300 ms,
//! `[slow]` streams 40 chunks 100 ms apart;
//! anything else is echoed back as `Echo: <message>` with usage 11 + 7 = 18 tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The API key `[leak]` echoes in its error text (tests configure it as the server's key).
pub const LEAKED_KEY: &str = "sk-test-leak-0123456789";

/// Prompt and completion tokens the fake reports for every reply.
pub const PROMPT_TOKENS: i64 = 11;
pub const COMPLETION_TOKENS: i64 = 7;

#[derive(Clone, Default)]
pub struct FakeOpenAi {
    pub port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Chunks of `[slow]` streams written before the client went away.
    slow_chunks_sent: Arc<Mutex<Option<usize>>>,
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeOpenAi { port: listener.local_addr().unwrap().port(), ..Default::default() };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(socket));
            }
        });
        fake
    }

    /// The base URL to configure (`OPENAI_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn slow_chunks_sent(&self) -> Option<usize> {
        *self.slow_chunks_sent.lock().unwrap()
    }

    async fn serve(self, mut socket: TcpStream) {
        loop {
            let Some(body) = read_request(&mut socket).await else { return };
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            self.requests.lock().unwrap().push(request.clone());
            let prompt = request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("").to_owned();
            let stream = request["stream"].as_bool().unwrap_or(false);
            if prompt.contains("[delay]") {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if prompt.contains("[hang]") {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
            if prompt.contains("[fail]") || prompt.contains("[leak]") {
                let (status, message) = if prompt.contains("[leak]") {
                    (
                        "401 Unauthorized",
                        format!("Incorrect API key provided: {LEAKED_KEY}. See http://127.0.0.1:{}/account/keys", self.port),
                    )
                } else {
                    ("500 Internal Server Error", "the model is overloaded".to_owned())
                };
                let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}).to_string();
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                if socket.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
            if !stream {
                let body = json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": format!("Echo: {prompt}")}}],
                    "usage": usage,
                })
                .to_string();
                let response = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                if socket.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            let header = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let slow = prompt.contains("[slow]");
            let pieces: Vec<String> = if slow {
                (0..40).map(|i| format!("word{i} ")).collect()
            } else {
                format!("Echo: {prompt}").split_inclusive(' ').map(str::to_owned).collect()
            };
            for (index, piece) in pieces.iter().enumerate() {
                let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                   "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}], "usage": null});
                if write_chunk(&mut socket, &format!("data: {chunk}\n\n")).await.is_err() {
                    if slow {
                        *self.slow_chunks_sent.lock().unwrap() = Some(index);
                    }
                    return;
                }
                if slow {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if slow {
                *self.slow_chunks_sent.lock().unwrap() = Some(pieces.len());
            }
            let last = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": usage});
            let _ = write_chunk(&mut socket, &format!("data: {last}\n\ndata: [DONE]\n\n")).await;
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
    }
}

async fn write_chunk(socket: &mut TcpStream, data: &str) -> std::io::Result<()> {
    socket.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes()).await?;
    socket.flush().await
}

/// Reads one HTTP/1.1 request and returns its body (`None` when the connection closed).
async fn read_request(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize =
        headers.lines().find_map(|line| line.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buffer.len() < header_end + length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Some(buffer[header_end..header_end + length].to_vec())
}
