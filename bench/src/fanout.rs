//! The fan-out scenario: R rooms of M members, S senders each keeping a window of W sends in
//! flight. Every body carries its send time, so each delivery gives an end-to-end latency; every
//! connection records what it received, so loss and duplication are counted exactly.
//! The same driver runs against `chat-api` and against the bare relay (the machine's ceiling).
//!
//! A window slot frees when the send is acknowledged (`Gate::Ack`: the sender only waits for
//! storage), or when the message reaches the next member of its room (`Gate::Delivery`: as in a
//! conversation, where people answer what reached them).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::Latencies;

/// The load, independent of the server under test.
#[derive(Debug, Clone)]
pub struct Load {
    pub rooms: usize,
    pub members: usize,
    pub senders: usize,
    pub window: usize,
    pub duration: Duration,
    /// Sends per second across all senders; 0 sends as fast as the windows allow.
    pub rate: f64,
    /// What frees a slot of a sender's window.
    pub gate: Gate,
}

/// What frees a slot of a sender's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The sender's `ack` (the message is stored).
    Ack,
    /// The message's arrival at the next member of its room.
    Delivery,
}

impl std::str::FromStr for Gate {
    type Err = String;
    fn from_str(text: &str) -> Result<Gate, String> {
        match text {
            "ack" => Ok(Gate::Ack),
            "delivery" => Ok(Gate::Delivery),
            other => Err(format!("--gate is ack or delivery, not {other:?}")),
        }
    }
}

impl Load {
    /// The connection of sender `index`: senders are spread over the rooms, one per member
    /// slot, in order.
    fn sender_connection(&self, index: usize) -> usize {
        let room = index % self.rooms;
        let member = (index / self.rooms) % self.members;
        room * self.members + member
    }

    /// The connection whose receipt of sender `index`'s message frees its slot (delivery gate).
    fn next_member_connection(&self, index: usize) -> usize {
        let connection = self.sender_connection(index);
        let room = connection / self.members;
        room * self.members + (connection % self.members + 1) % self.members
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    pub sent: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Messages a connection received after a later one of the same sender (must be 0).
    pub reordered: u64,
    pub elapsed: Duration,
    pub latency: Latencies,
}

impl Outcome {
    pub fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64()
    }

    pub fn acked_per_second(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "sent": self.sent,
            "acked": self.acked,
            "stored_per_second": self.acked_per_second(),
            "deliveries": self.deliveries,
            "deliveries_per_second": self.deliveries_per_second(),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "seconds": self.elapsed.as_secs_f64(),
            "latency": self.latency.to_json(),
        })
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    message: Option<FrameMessage<'a>>,
}

#[derive(Deserialize)]
struct FrameMessage<'a> {
    body: &'a str,
    /// The server's batch time; the bare relay stores nothing and sends none.
    created_at: Option<&'a str>,
}

/// A body: `b|<sender>|<counter>|<nanos since the run's epoch>`.
fn parse_body(body: &str) -> Option<(u32, u64, u64)> {
    let mut parts = body.strip_prefix("b|")?.split('|');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    received: HashSet<(u32, u64)>,
    duplicated: u64,
    reordered: u64,
    /// The latest counter seen from each sender.
    latest: std::collections::HashMap<u32, u64>,
    /// Every delivery: (send time, latency, the server's batch time less the send time), in
    /// nanoseconds; send times count from the run's epoch.
    samples: Vec<(u64, u64, i64)>,
    acked: Vec<(u32, u64)>,
}

/// Drives the load through `urls` (one WebSocket URL per member, room-major: connection
/// `r * members + m` is member `m` of room `r`) and returns what it measured.
pub async fn drive(urls: Vec<String>, room_ids: Vec<i64>, load: &Load) -> anyhow::Result<Outcome> {
    let epoch = Instant::now();
    let epoch_wall_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i64;
    let mut sinks = Vec::with_capacity(urls.len());
    let mut readers = Vec::with_capacity(urls.len());
    let windows: Arc<Vec<Arc<Semaphore>>> = Arc::new((0..urls.len()).map(|_| Arc::new(Semaphore::new(load.window))).collect());
    let stop_reading = Arc::new(tokio::sync::Notify::new());
    for (connection, url) in urls.iter().enumerate() {
        // TCP_NODELAY, as browsers set it: Nagle would hold a small frame until the server's
        // delayed ACK (up to 40 ms).
        let (stream, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(crate::websocket_config()), true)
            .await
            .with_context(|| format!("connecting {}", url.split('?').next().unwrap_or("")))?;
        let (mut sink, mut stream) = stream.split();
        // As a real client does on connecting: sync (nothing to catch up on here).
        sink.send(Message::text(json!({"type": "sync", "cursors": {}}).to_string())).await?;
        let (windows, load_shape) = (windows.clone(), load.clone());
        let stop = stop_reading.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    _ = stop.notified() => break,
                };
                let Some(Ok(Message::Text(text))) = next else {
                    if matches!(next, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                        break;
                    }
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                let Some((sender, counter, sent_ns)) = frame.message.as_ref().and_then(|m| parse_body(m.body)) else { continue };
                if frame.kind != "message" && frame.kind != "ack" {
                    continue;
                }
                let now_ns = epoch.elapsed().as_nanos() as u64;
                let stored_ns =
                    frame.message.as_ref().and_then(|m| m.created_at).map_or(sent_ns as i64, |at| stored_at_ns(at) - epoch_wall_ns);
                seen.samples.push((sent_ns, now_ns.saturating_sub(sent_ns), stored_ns - sent_ns as i64));
                if !seen.received.insert((sender, counter)) {
                    seen.duplicated += 1;
                }
                let latest = seen.latest.entry(sender).or_insert(counter);
                if counter < *latest {
                    seen.reordered += 1;
                }
                *latest = (*latest).max(counter);
                if frame.kind == "ack" {
                    seen.acked.push((sender, counter));
                }
                let frees_a_slot = match load_shape.gate {
                    Gate::Ack => frame.kind == "ack",
                    Gate::Delivery => frame.kind == "message" && load_shape.next_member_connection(sender as usize) == connection,
                };
                if frees_a_slot {
                    windows[load_shape.sender_connection(sender as usize)].add_permits(1);
                }
            }
            seen
        }));
        sinks.push(Some(sink));
    }

    // Senders: spread over the rooms, one per member slot, in order.
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut senders = Vec::new();
    for index in 0..load.senders {
        let connection = load.sender_connection(index);
        let Some(mut sink) = sinks[connection].take() else { continue };
        let window = windows[connection].clone();
        let room_id = room_ids[connection / load.members];
        let interval = (load.rate > 0.0).then(|| Duration::from_secs_f64(load.senders as f64 / load.rate));
        let full_window = load.window as u32;
        senders.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let mut next_at = Instant::now();
            while Instant::now() < deadline {
                if let Some(interval) = interval {
                    next_at += interval;
                    tokio::time::sleep_until(next_at.into()).await;
                }
                let Ok(permit) = tokio::time::timeout(Duration::from_secs(5), window.acquire()).await else { break };
                let Ok(permit) = permit else { break };
                permit.forget();
                let body = format!("b|{index}|{sent}|{}", epoch.elapsed().as_nanos());
                let frame = json!({"type": "send", "room_id": room_id, "client_id": format!("{index}-{sent}"), "body": body});
                if sink.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            // The whole window free again: every send acknowledged (or delivered).
            let _ = tokio::time::timeout(Duration::from_secs(10), window.acquire_many(full_window)).await;
            (sent, sink)
        }));
    }
    let mut sent = 0;
    let mut keep_open = Vec::new();
    for sender in senders {
        let (count, sink) = sender.await?;
        sent += count;
        keep_open.push(sink);
    }
    let elapsed = started.elapsed();
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_reading.notify_waiters();
    let mut seen = Vec::with_capacity(readers.len());
    for reader in readers {
        seen.push(reader.await?);
    }
    drop(keep_open);

    let mut acked_by_room: Vec<HashSet<(u32, u64)>> = vec![HashSet::new(); load.rooms];
    for (connection, s) in seen.iter().enumerate() {
        acked_by_room[connection / load.members].extend(s.acked.iter().copied());
    }
    if let Some(path) = std::env::var_os("CHAT_BENCH_TRACE") {
        write_trace(&path, &seen, started.duration_since(epoch), epoch_wall_ns)?;
    }
    let (mut deliveries, mut lost, mut duplicated, mut reordered, mut latencies) = (0u64, 0u64, 0u64, 0u64, Vec::new());
    for (connection, s) in seen.into_iter().enumerate() {
        let expected = &acked_by_room[connection / load.members];
        lost += expected.iter().filter(|id| !s.received.contains(id)).count() as u64;
        deliveries += s.received.len() as u64;
        duplicated += s.duplicated;
        reordered += s.reordered;
        latencies.extend(s.samples.into_iter().map(|(_, latency, _)| Duration::from_nanos(latency)));
    }
    let acked = acked_by_room.iter().map(|set| set.len() as u64).sum();
    Ok(Outcome { sent, acked, deliveries, lost, duplicated, reordered, elapsed, latency: Latencies::new(latencies) })
}

/// Writes one line per delivery, `<send ms since the senders started> <latency ms> <ms from
/// send to the server's batch time> <connection>`, in send order: where the slow deliveries sit
/// in time tells a stall of the whole server (a run of neighbours) from a slow connection
/// (scattered), and the batch time splits each latency into before and after the writer. A
/// first line gives the senders' start in wall-clock time, to line the trace up with others.
fn write_trace(path: &std::ffi::OsStr, seen: &[Seen], senders_started: Duration, epoch_wall_ns: i64) -> anyhow::Result<()> {
    use std::io::Write;
    let origin = senders_started.as_nanos() as u64;
    let mut lines: Vec<(u64, u64, i64, usize)> = seen
        .iter()
        .enumerate()
        .flat_map(|(c, s)| s.samples.iter().map(move |&(sent, latency, to_batch)| (sent, latency, to_batch, c)))
        .collect();
    lines.sort_unstable();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "# senders started at {} ns since 1970", epoch_wall_ns + origin as i64)?;
    for (sent, latency, to_batch, connection) in lines {
        let ms = |ns: f64| ns / 1e6;
        writeln!(out, "{:.3} {:.3} {:.3} {connection}", ms(sent.saturating_sub(origin) as f64), ms(latency as f64), ms(to_batch as f64))?;
    }
    out.flush()?;
    Ok(())
}

/// An RFC 3339 UTC timestamp (as the server writes `created_at`) in nanoseconds since 1970.
fn stored_at_ns(created_at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(created_at).ok().and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0)
}

/// Server-side costs of a run.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
}

/// Runs the load against fresh `chat-api` nodes with `server_env`: one node, or several on one
/// database linked through `redis` (connection `i` goes to node `i % nodes`). CPU is summed over the
/// nodes, peak RSS is the largest node's.
pub async fn against_chat(
    binary: &std::path::Path,
    storage: crate::server::Storage,
    load: &Load,
    server_env: &[(&str, &str)],
    nodes: usize,
    redis: &str,
) -> anyhow::Result<(Outcome, Costs)> {
    use crate::server::{Database, JWT_SECRET, Server};
    let users = load.rooms * load.members;
    let database = Database::create(storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::seed::users(&database, users, &hash)?;
    crate::seed::groups(&database, load.rooms, load.members)?;
    let tokens = crate::seed::access_tokens(&database, users, JWT_SECRET)?;
    let servers = Server::start_nodes(binary, &database, server_env, nodes, redis).await?;
    let urls = tokens.iter().enumerate().map(|(i, token)| format!("{}/ws/?token={token}", servers[i % servers.len()].ws_base())).collect();
    let rooms = (1..=load.rooms as i64).collect();
    let cpu_before: f64 = servers.iter().map(|s| crate::procstat::cpu_seconds(s.pid())).sum();
    let outcome = drive(urls, rooms, load).await?;
    let costs = Costs {
        cpu_seconds: servers.iter().map(|s| crate::procstat::cpu_seconds(s.pid())).sum::<f64>() - cpu_before,
        peak_rss_bytes: servers.iter().map(|s| crate::procstat::peak_rss_bytes(s.pid())).max().unwrap_or(0),
    };
    Ok((outcome, costs))
}

/// Runs the load against the bare relay.
pub async fn against_relay(load: &Load) -> anyhow::Result<(Outcome, Costs)> {
    let relay = crate::server::Server::start_relay()?;
    let base = relay.ws_base();
    let urls = (0..load.rooms)
        .flat_map(|room| (0..load.members).map(move |member| (room, member)))
        .map(|(room, member)| format!("{base}/ws/?token={}:{member}", room + 1))
        .collect();
    let rooms = (1..=load.rooms as i64).collect();
    let cpu_before = crate::procstat::cpu_seconds(relay.pid());
    let outcome = drive(urls, rooms, load).await?;
    let costs = Costs {
        cpu_seconds: crate::procstat::cpu_seconds(relay.pid()) - cpu_before,
        peak_rss_bytes: crate::procstat::peak_rss_bytes(relay.pid()),
    };
    Ok((outcome, costs))
}

/// One table line.
pub fn line(label: &str, outcome: &Outcome, costs: &Costs) -> String {
    format!(
        "{label:<22} {:>9.0} deliveries/s  {:>7.0} stored/s  {}  lost {} dup {} reordered {}  cpu {:.1} s  peak rss {:.0} MB",
        outcome.deliveries_per_second(),
        outcome.acked_per_second(),
        outcome.latency.brief(),
        outcome.lost,
        outcome.duplicated,
        outcome.reordered,
        costs.cpu_seconds,
        costs.peak_rss_bytes as f64 / 1e6
    )
}
