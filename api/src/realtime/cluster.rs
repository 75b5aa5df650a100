//! Several nodes over Redis pub/sub: each node publishes its room events on one shared channel
//! and applies what the others publish to its own connections.
//!
//! Redis carries news, never the record: messages are stored in the shared database before
//! they are published, so a lost publish (Redis down, a node killed) costs only latency — the
//! sequencer fills a gap from the database, and its audit finds a lost last message within
//! seconds. While the
//! subscription is down, this node keeps serving its own connections, stops trusting cached
//! session checks (it cannot hear about revocations elsewhere), and reconnects with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::delivery::Delivery;
use super::link::{ClusterStats, Event, NodeId, Publish, Publisher, WireMessage};
use super::presence::NODE_TIMEOUT;
use super::registry::RegistryHandle;
use super::sequencer::Sequencer;
use crate::db::Db;

/// How often a node says it is alive (and sweeps nodes that stopped saying so).
const ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Every this many beats a node publishes its whole presence state (about once a minute).
const STATE_EVERY_BEATS: u64 = 12;
/// Events waiting to be published, at most; past it they are dropped (and counted).
const PUBLISH_QUEUE: usize = 65_536;
/// Events per published payload, at most.
const PUBLISH_BATCH: usize = 512;
/// Longest wait for Redis to connect or answer.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// When a node's subscription comes back, it exchanges presence at once and once this much later.
const SECOND_JOIN: Duration = Duration::from_secs(3);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Outgoing<'a> {
    node: &'a str,
    events: &'a [Event],
}

#[derive(Deserialize)]
struct Incoming {
    node: NodeId,
    events: Vec<Event>,
}

/// This node's link to the others.
pub struct Cluster {
    pub node: NodeId,
    pub publisher: Publisher,
    pub stats: Arc<ClusterStats>,
    client: redis::Client,
    channel: String,
    queue: mpsc::Receiver<Publish>,
}

impl Cluster {
    /// Prepares the link (connects later, in [`Cluster::start`]).
    pub fn new(redis_url: &str, channel: &str) -> anyhow::Result<Cluster> {
        let client = redis::Client::open(redis_url).map_err(|e| anyhow::anyhow!("REDIS_URL {redis_url:?}: {e}"))?;
        let (tx, queue) = mpsc::channel(PUBLISH_QUEUE);
        let stats = Arc::new(ClusterStats::default());
        let node = crate::auth::sessions::random_token(9);
        Ok(Cluster { node, publisher: Publisher { tx, stats: stats.clone() }, stats, client, channel: channel.to_owned(), queue })
    }

    /// Starts publishing, subscribing and the liveness beat.
    pub fn start(self, registry: RegistryHandle, sequencer: Sequencer, db: Db) -> ClusterHandle {
        let Cluster { node, publisher, stats, client, channel, queue } = self;
        tracing::info!(node, channel, "cluster mode: room events go through Redis");
        tokio::spawn(publish_loop(client.clone(), channel.clone(), node.clone(), queue, stats.clone()));
        tokio::spawn(subscribe_loop(client, channel, node, registry.clone(), sequencer, db, stats.clone()));
        let beat = publisher.clone();
        let leaving = Arc::new(AtomicBool::new(false));
        let left = leaving.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ALIVE_INTERVAL);
            for beats in 1u64.. {
                tick.tick().await;
                if left.load(Relaxed) {
                    return;
                }
                beat.publish(Event::Alive);
                registry.sweep_nodes();
                // Now and then the whole picture, in case a presence change was lost.
                if beats % STATE_EVERY_BEATS == 0 {
                    registry.share_state();
                }
            }
        });
        ClusterHandle { publisher, stats, leaving }
    }
}

/// What the rest of the server keeps of the cluster link.
#[derive(Clone)]
pub struct ClusterHandle {
    publisher: Publisher,
    pub stats: Arc<ClusterStats>,
    /// Set on shutdown: the beat stops, so the other nodes do not think this one came back.
    leaving: Arc<AtomicBool>,
}

impl ClusterHandle {
    /// Says goodbye and waits (briefly) until everything queued is published.
    pub async fn leave(&self) {
        self.leaving.store(true, Relaxed);
        self.publisher.publish(Event::Bye);
        let (done, drained) = oneshot::channel();
        if self.publisher.tx.send(Publish::Drain(done)).await.is_ok() {
            let _ = tokio::time::timeout(REDIS_TIMEOUT, drained).await;
        }
    }
}

async fn connect(client: &redis::Client) -> Option<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(REDIS_TIMEOUT)).set_response_timeout(Some(REDIS_TIMEOUT));
    client.get_multiplexed_async_connection_with_config(&config).await.ok()
}

async fn publish(conn: &mut redis::aio::MultiplexedConnection, channel: &str, payload: &[u8]) -> bool {
    redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(conn).await.is_ok()
}

/// Publishes queued events in batches, one payload per batch. While Redis is down, batches
/// are dropped rather than kept: the receivers catch up from the database.
async fn publish_loop(client: redis::Client, channel: String, node: NodeId, mut queue: mpsc::Receiver<Publish>, stats: Arc<ClusterStats>) {
    let mut connection = None;
    let mut last_attempt: Option<Instant> = None;
    let mut events = Vec::new();
    let mut drains = Vec::new();
    while let Some(first) = queue.recv().await {
        for item in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok()).take(PUBLISH_BATCH)) {
            match item {
                Publish::Event(event) => events.push(event),
                Publish::Drain(done) => drains.push(done),
            }
        }
        if !events.is_empty() {
            if connection.is_none() && last_attempt.is_none_or(|at| at.elapsed() > Duration::from_millis(500)) {
                last_attempt = Some(Instant::now());
                connection = connect(&client).await;
            }
            let payload = serde_json::to_vec(&Outgoing { node: &node, events: &events }).unwrap_or_default();
            let mut sent = match &mut connection {
                Some(conn) => publish(conn, &channel, &payload).await,
                None => false,
            };
            if !sent && connection.is_some() {
                // The connection may have died with a Redis restart: one fresh try.
                connection = connect(&client).await;
                if let Some(conn) = &mut connection {
                    sent = publish(conn, &channel, &payload).await;
                }
            }
            if sent {
                stats.published.fetch_add(events.len() as u64, Relaxed);
            } else {
                connection = None;
                stats.dropped.fetch_add(events.len() as u64, Relaxed);
            }
            events.clear();
        }
        for done in drains.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Keeps a subscription to the channel, forever: applies what other nodes publish, and on every
/// (re)connection tells the registry (presence exchange) and the sequencer (catch up on what
/// was missed).
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: NodeId,
    registry: RegistryHandle,
    sequencer: Sequencer,
    db: Db,
    stats: Arc<ClusterStats>,
) {
    // When this node last knew its subscription to be live: what came after may have been missed.
    // (Its start, at first: messages stored elsewhere before the first subscription.)
    let mut lost_at = Instant::now();
    registry.trust().set_trusted(false);
    loop {
        let pubsub = subscribe(&client, &channel).await;
        rejoin(&channel, &stats, &registry, &sequencer, &db, lost_at);
        let last_heard = listen(pubsub, &node, &stats, &registry, &sequencer).await;
        lost_at = lose(&stats, &registry, last_heard);
    }
}

/// Subscribes to `channel`, retrying with backoff (each attempt bounded by [`REDIS_TIMEOUT`])
/// until Redis answers.
async fn subscribe(client: &redis::Client, channel: &str) -> redis::aio::PubSub {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await.ok()?.ok()?;
            tokio::time::timeout(REDIS_TIMEOUT, pubsub.subscribe(channel)).await.ok()?.ok()?;
            Some(pubsub)
        }
        .await;
        if let Some(pubsub) = subscribed {
            return pubsub;
        }
        if backoff >= MAX_BACKOFF / 2 {
            tracing::warn!("Redis unreachable; serving this node's connections alone and retrying");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The subscription is live (again): trust session checks afresh, exchange presence, and catch
/// up on what may have been missed since `lost_at` (now, and once more a little later).
fn rejoin(channel: &str, stats: &ClusterStats, registry: &RegistryHandle, sequencer: &Sequencer, db: &Db, lost_at: Instant) {
    tracing::info!("subscribed to {channel}");
    stats.connected.store(1, Relaxed);
    // Revocations published while cut off were missed: start the session cache afresh.
    registry.trust().revoked();
    registry.trust().set_trusted(true);
    registry.joined();
    // Messages published meanwhile were missed: audit the rooms active since then at once.
    sequencer.catch_up(lost_at.elapsed());
    // Revocations published meanwhile were missed: check this node's connections.
    tokio::spawn(recheck_logins(db.clone(), registry.clone()));
    // Presence is exchanged once more a little later, for the nodes whose own links were
    // coming back at the same time.
    let registry = registry.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SECOND_JOIN).await;
        registry.joined();
    });
}

/// Applies what the other nodes publish until the link goes silent or breaks; returns when the
/// channel was last heard.
async fn listen(
    mut pubsub: redis::aio::PubSub,
    node: &str,
    stats: &ClusterStats,
    registry: &RegistryHandle,
    sequencer: &Sequencer,
) -> Instant {
    let mut messages = pubsub.on_message();
    let mut last_heard = Instant::now();
    // Our own `Alive` comes back every few seconds: silence means a dead link.
    while let Ok(Some(message)) = tokio::time::timeout(NODE_TIMEOUT, messages.next()).await {
        last_heard = Instant::now();
        dispatch(message.get_payload_bytes(), node, stats, registry, sequencer);
    }
    last_heard
}

/// The subscription is lost: session checks cached here may miss revocations elsewhere.
/// Returns when it was lost: what came after the last message heard may have been missed.
fn lose(stats: &ClusterStats, registry: &RegistryHandle, last_heard: Instant) -> Instant {
    tracing::warn!("lost the Redis subscription; reconnecting");
    stats.connected.store(0, Relaxed);
    registry.trust().set_trusted(false);
    last_heard
}

/// What one payload from the channel asks of this node.
#[derive(Debug)]
enum Payload {
    /// Published by this node, which applied it already.
    Own,
    Unreadable,
    /// Another node's events, in their order, each with the actor that applies it.
    From {
        node: NodeId,
        routes: Vec<Route>,
    },
}

#[derive(Debug)]
enum Route {
    /// Stored messages: put in room order by the sequencer before the registry fans them out.
    Sequencer(Vec<Delivery>),
    /// Any other event: the registry applies it.
    Registry(Event),
}

/// Reads one payload; `own_node` is this node's name.
fn decode(payload: &[u8], own_node: &str) -> Payload {
    let Ok(incoming) = serde_json::from_slice::<Incoming>(payload) else { return Payload::Unreadable };
    if incoming.node == own_node {
        return Payload::Own;
    }
    let routes = incoming
        .events
        .into_iter()
        .map(|event| match event {
            Event::Messages { messages } => Route::Sequencer(messages.into_iter().map(WireMessage::into_delivery).collect()),
            other => Route::Registry(other),
        })
        .collect();
    Payload::From { node: incoming.node, routes }
}

/// Applies one payload from the channel.
fn dispatch(payload: &[u8], own_node: &str, stats: &ClusterStats, registry: &RegistryHandle, sequencer: &Sequencer) {
    match decode(payload, own_node) {
        Payload::Own => {}
        Payload::Unreadable => tracing::warn!("ignoring an unreadable cluster message"),
        Payload::From { node, routes } => {
            stats.received.fetch_add(routes.len() as u64, Relaxed);
            for route in routes {
                match route {
                    Route::Sequencer(deliveries) => sequencer.remote(deliveries),
                    Route::Registry(event) => registry.apply_remote(event, node.clone()),
                }
            }
        }
    }
}

/// Closes the connections of login sessions no longer live.
async fn recheck_logins(db: Db, registry: RegistryHandle) {
    let logins = registry.logins().await;
    let sids: Vec<String> = logins.iter().map(|(_, sid)| sid.clone()).collect();
    match db.run(move |conn| crate::db::sessions::live_among(conn, &sids)).await {
        Ok(live) => {
            for (user_id, sid) in logins.into_iter().filter(|(_, sid)| !live.contains(sid)) {
                tracing::info!(user_id = %user_id, "closing connections of a session revoked while Redis was unreachable");
                registry.kick_logins(user_id, Some(sid), None);
            }
        }
        Err(error) => tracing::error!(error = format!("{error:?}"), "re-checking login sessions failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RoomId, Seq, UserId};

    fn payload(node: &str, events: &[Event]) -> Vec<u8> {
        serde_json::to_vec(&Outgoing { node, events }).unwrap()
    }

    fn wire(seq: i64) -> WireMessage {
        WireMessage {
            room_id: RoomId(3),
            seq: Seq(seq),
            members: vec![UserId(1), UserId(2)],
            message: format!("m{seq}"),
            channels: format!("c{seq}"),
        }
    }

    #[test]
    fn a_payload_from_this_node_is_ignored() {
        assert!(matches!(decode(&payload("me", &[Event::Alive]), "me"), Payload::Own));
    }

    #[test]
    fn an_unreadable_payload_is_ignored() {
        assert!(matches!(decode(b"not json", "me"), Payload::Unreadable));
        assert!(matches!(decode(br#"{"node":"other","events":[{"type":"dance"}]}"#, "me"), Payload::Unreadable));
    }

    #[test]
    fn messages_go_to_the_sequencer_and_other_events_to_the_registry_in_order() {
        let events = [
            Event::Messages { messages: vec![wire(7), wire(8)] },
            Event::Alive,
            Event::ToUsers { users: vec![UserId(1)], frame: "{}".into(), except: None },
        ];
        let Payload::From { node, routes } = decode(&payload("other", &events), "me") else { panic!("another node's payload") };
        assert_eq!(node, "other");
        let [Route::Sequencer(deliveries), Route::Registry(Event::Alive), Route::Registry(Event::ToUsers { .. })] = routes.as_slice()
        else {
            panic!("unexpected routes: {routes:?}")
        };
        let seqs: Vec<(i64, i64, Option<u64>)> =
            deliveries.iter().map(|d| (d.frames.room_id.get(), d.frames.seq.get(), d.origin)).collect();
        assert_eq!(seqs, [(3, 7, None), (3, 8, None)]);
        assert_eq!(&*deliveries[0].members, &[UserId(1), UserId(2)]);
        assert_eq!(deliveries[0].frames.message, "m7");
        assert_eq!(deliveries[0].frames.channels(), "c7");
    }
}
