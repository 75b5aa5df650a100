//! Chaos: three real nodes on PostgreSQL and a Redis of the test's own, and devices that send,
//! lose their connection and come back as real clients do (on any live node, `sync` from their
//! cursors, resend what was not acknowledged). While they talk, a script of faults runs: a node
//! killed, Redis stopped, every database connection dropped, a node stopped gracefully, a node
//! killed while Redis is down, and last a node cut off from Redis until the conversation ends. Afterwards, for every device and room: what it received is
//! the room's history, each message once, in seq order, without a gap on any connection.
//!
//! The figures it prints (latency from storage to delivery, by fault) are in the README's
//! reliability section.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::common::faults::{Cuttable, OwnRedis, drop_every_connection};
use crate::common::{Backend, TestApp, TestUser, redis_url, unique_channel};

/// How often each device sends while the faults run.
const SEND_EVERY: Duration = Duration::from_millis(250);
/// How long a device may take, once the history is final, to have all of it.
const CONVERGE_WITHIN: Duration = Duration::from_secs(40);

/// What every device shares with the script.
struct Shared {
    /// The live nodes' addresses: devices (re)connect to one of them.
    addresses: Mutex<Vec<String>>,
    sending: AtomicBool,
    /// Sends not acknowledged yet, over every device.
    pending: AtomicUsize,
    /// Each room's last seq, once nothing is sent any more.
    targets: watch::Receiver<Option<BTreeMap<i64, i64>>>,
}

/// One device of one user: its cursors, what it received, what it still has to resend.
struct Device {
    name: String,
    token: String,
    cursors: BTreeMap<i64, i64>,
    /// Per room, the seqs received (messages and acks of its own sends), in arrival order.
    received: BTreeMap<i64, Vec<i64>>,
    /// Client id → (room, when last sent).
    pending: BTreeMap<String, (i64, Instant)>,
    acked: Vec<String>,
    sent: usize,
    connections: usize,
    /// A message frame that broke the order on its connection.
    violations: Vec<String>,
    /// (stored at, received at) of each message delivered live or by sync.
    latencies: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    give_up_at: Option<Instant>,
}

impl Device {
    fn new(name: String, token: String, rooms: &[i64]) -> Device {
        Device {
            name,
            token,
            cursors: rooms.iter().map(|room| (*room, 0)).collect(),
            received: BTreeMap::new(),
            pending: BTreeMap::new(),
            acked: Vec::new(),
            sent: 0,
            connections: 0,
            violations: Vec::new(),
            latencies: Vec::new(),
            give_up_at: None,
        }
    }

    /// The history is final and the device has waited [`CONVERGE_WITHIN`] for the rest of it.
    fn gave_up(&mut self, shared: &Shared) -> bool {
        if shared.targets.borrow().is_none() {
            return false;
        }
        Instant::now() > *self.give_up_at.get_or_insert(Instant::now() + CONVERGE_WITHIN)
    }

    fn done(&self, shared: &Shared) -> bool {
        let targets = shared.targets.borrow();
        targets.as_ref().is_some_and(|targets| {
            self.pending.is_empty() && self.cursors.iter().all(|(room, cursor)| targets.get(room).is_none_or(|last| cursor >= last))
        })
    }

    /// Takes seq `seq` of `room` as the next one: it must follow the cursor exactly.
    fn take(&mut self, room: i64, seq: i64, what: &str) {
        let cursor = self.cursors.entry(room).or_insert(0);
        if seq != *cursor + 1 {
            self.violations.push(format!("{what} {seq} of room {room} after {cursor} (connection {})", self.connections));
        }
        *cursor = (*cursor).max(seq);
        self.received.entry(room).or_default().push(seq);
    }

    /// Connects to live nodes in turn until the history is all here.
    async fn run(mut self, index: usize, shared: Arc<Shared>) -> Device {
        let mut attempt = index;
        while !self.done(&shared) && !self.gave_up(&shared) {
            let address = {
                let addresses = shared.addresses.lock().unwrap();
                (!addresses.is_empty()).then(|| addresses[attempt % addresses.len()].clone())
            };
            attempt += 1;
            let Some(address) = address else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let url = format!("{}/ws/?token={}", address.replacen("http://", "ws://", 1), self.token);
            match tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await {
                Ok(Ok((socket, _))) => {
                    self.connections += 1;
                    self.converse(socket, index, &shared).await;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        self
    }

    /// One connection: sync from the cursors, resend what is pending, then send and receive
    /// until the connection ends or the device has everything.
    async fn converse<S>(&mut self, mut socket: S, index: usize, shared: &Shared)
    where
        S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + SinkExt<Message> + Unpin,
    {
        let frame = |value: Value| Message::text(value.to_string());
        let sync = |cursors: &BTreeMap<i64, i64>| {
            frame(json!({"type": "sync", "cursors": cursors.iter().map(|(r, c)| (r.to_string(), *c)).collect::<BTreeMap<_, _>>()}))
        };
        if socket.send(sync(&self.cursors)).await.is_err() {
            return;
        }
        let mut synced = false;
        let mut sync_again_at: Option<Instant> = None;
        let mut send = tokio::time::interval_at(Instant::now() + SEND_EVERY * (index as u32 % 4 + 1) / 4, SEND_EVERY);
        let mut check = tokio::time::interval(Duration::from_millis(100));
        let rooms: Vec<i64> = self.cursors.keys().copied().collect();
        loop {
            let mut out = Vec::new();
            tokio::select! {
                incoming = socket.next() => {
                    let Some(Ok(Message::Text(text))) = incoming else {
                        match incoming {
                            Some(Ok(_)) => continue,
                            _ => return,
                        }
                    };
                    let value: Value = serde_json::from_str(&text).unwrap();
                    match value["type"].as_str().unwrap_or("") {
                        "message" => {
                            let message = &value["message"];
                            let (room, seq) = (message["room_id"].as_i64().unwrap(), message["seq"].as_i64().unwrap());
                            let stored: DateTime<Utc> = message["created_at"].as_str().unwrap().parse().unwrap();
                            self.latencies.push((stored, Utc::now()));
                            self.take(room, seq, "message");
                        }
                        "ack" => {
                            let message = &value["message"];
                            let (room, seq) = (message["room_id"].as_i64().unwrap(), message["seq"].as_i64().unwrap());
                            let client_id = value["client_id"].as_str().unwrap().to_owned();
                            if self.pending.remove(&client_id).is_some() {
                                shared.pending.fetch_sub(1, Ordering::SeqCst);
                                self.acked.push(client_id);
                            }
                            // An ack of a send stored before (then received by sync) is below the cursor.
                            if seq > self.cursors[&room] {
                                self.take(room, seq, "ack");
                            }
                        }
                        "synced" => {
                            let more = value["has_more"].as_array().is_some_and(|rooms| !rooms.is_empty());
                            if more {
                                out.push(sync(&self.cursors));
                            } else {
                                synced = true;
                                for (client_id, (room, _)) in &self.pending {
                                    out.push(frame(json!({"type": "send", "room_id": room, "client_id": client_id, "body": client_id})));
                                }
                                let now = Instant::now();
                                self.pending.values_mut().for_each(|(_, at)| *at = now);
                            }
                        }
                        "error" => match value["client_id"].as_str() {
                            // A send refused for now (the database is away): resend soon.
                            Some(client_id) => {
                                if let Some((_, at)) = self.pending.get_mut(client_id) {
                                    *at = Instant::now() - Duration::from_secs(60);
                                }
                            }
                            None if !synced => sync_again_at = Some(Instant::now() + Duration::from_millis(300)),
                            None => {}
                        },
                        _ => {}
                    }
                }
                _ = send.tick(), if synced && shared.sending.load(Ordering::SeqCst) => {
                    self.sent += 1;
                    let client_id = format!("{}-{}", self.name, self.sent);
                    let room = rooms[self.sent % rooms.len()];
                    out.push(frame(json!({"type": "send", "room_id": room, "client_id": client_id, "body": client_id})));
                    self.pending.insert(client_id, (room, Instant::now()));
                    shared.pending.fetch_add(1, Ordering::SeqCst);
                }
                _ = check.tick() => {
                    if self.done(shared) || self.gave_up(shared) {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                    if sync_again_at.is_some_and(|at| Instant::now() >= at) {
                        sync_again_at = None;
                        out.push(sync(&self.cursors));
                    }
                    // Sends refused, or unanswered for long, go again (the client id makes it safe).
                    if synced {
                        let now = Instant::now();
                        for (client_id, (room, at)) in self.pending.iter_mut().filter(|(_, (_, at))| now.duration_since(*at) > Duration::from_secs(3)) {
                            *at = now;
                            out.push(frame(json!({"type": "send", "room_id": room, "client_id": client_id, "body": client_id})));
                        }
                    }
                }
            }
            for message in out {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The deployment under test: three nodes on one database and `redis`.
struct Fleet {
    nodes: Vec<TestApp>,
    shared: Arc<Shared>,
}

impl Fleet {
    fn publish_addresses(&self) {
        *self.shared.addresses.lock().unwrap() =
            self.nodes.iter().filter(|node| !node.address.is_empty()).map(|node| node.address.clone()).collect();
    }

    /// Takes node `index` out of the devices' choice, then kills it (SIGKILL).
    fn kill(&mut self, index: usize) {
        self.nodes[index].address.clear();
        self.publish_addresses();
        self.nodes[index].kill();
    }

    /// SIGTERM: the node answers what it stored, closes its sockets with 1012 and exits.
    fn terminate(&mut self, index: usize) {
        self.nodes[index].address.clear();
        self.publish_addresses();
        let status = tokio::task::block_in_place(|| self.nodes[index].terminate());
        assert!(status.success(), "node {index} exited with {status} on SIGTERM\n{}", self.nodes[index].server_log());
    }

    async fn start(&mut self, index: usize) {
        self.nodes[index].start_server().await;
        self.publish_addresses();
    }
}

/// Per fault, the latency from storage to delivery of the messages stored after it (until the
/// next fault): (fault, messages delivered, median, 99th percentile, max) in milliseconds.
fn latencies_by_phase(phases: &[(&str, DateTime<Utc>)], devices: &[Device]) -> Vec<(String, usize, i64, i64, i64)> {
    let mut rows = Vec::new();
    for (i, (name, start)) in phases.iter().enumerate() {
        let end = phases.get(i + 1).map(|(_, at)| *at);
        let mut millis: Vec<i64> = devices
            .iter()
            .flat_map(|device| &device.latencies)
            .filter(|(stored, _)| stored >= start && end.is_none_or(|end| *stored < end))
            .map(|(stored, received)| (*received - *stored).num_milliseconds())
            .collect();
        millis.sort_unstable();
        let at = |q: f64| millis.get(((millis.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        rows.push((name.to_string(), millis.len(), at(0.5), at(0.99), millis.last().copied().unwrap_or(0)));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_receives_every_acknowledged_message_once_in_order_through_kills_outages_and_restarts() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = OwnRedis::start();
    let channel = unique_channel();
    let Some(first) = TestApp::spawn_with(Backend::Postgres, &[("REDIS_URL", &redis.url()), ("REDIS_CHANNEL", &channel)]).await else {
        return;
    };
    // The second node reaches Redis through a link the script cuts at the end.
    let link = Cuttable::start(redis.url().trim_start_matches("redis://")).await;
    let second = first.spawn_peer_with(&[("REDIS_URL", &format!("redis://127.0.0.1:{}", link.port))]).await;
    let third = first.spawn_peer().await;
    for node in [&first, &second, &third] {
        node.wait_for_metric("chat_cluster_connected", 1.0).await;
    }

    // Six users, two devices each; four groups of five.
    let names = ["ann", "bob", "cat", "dan", "eve", "fay"];
    let users: Vec<TestUser> = first.friends(&names).await;
    let mut rooms_of: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut rooms = Vec::new();
    for k in 0..4 {
        let owner = &users[(k + 1) % users.len()];
        let members: Vec<&TestUser> =
            users.iter().enumerate().filter(|(i, _)| *i != k && *i != (k + 1) % users.len()).map(|(_, u)| u).collect();
        let room = first.group(owner, &format!("room {k}"), &members).await;
        rooms.push(room);
        for i in (0..users.len()).filter(|i| *i != k) {
            rooms_of.entry(i).or_default().push(room);
        }
    }
    let (targets_tx, targets) = watch::channel(None);
    let shared =
        Arc::new(Shared { addresses: Mutex::new(Vec::new()), sending: AtomicBool::new(true), pending: AtomicUsize::new(0), targets });
    let mut fleet = Fleet { nodes: vec![first, second, third], shared: shared.clone() };
    fleet.publish_addresses();
    let mut devices = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let second_login = fleet.nodes[0].login(&user.email, &user.password).await;
        let tokens = [user.access.clone(), second_login.body["access"].as_str().unwrap().to_owned()];
        for (d, token) in tokens.into_iter().enumerate() {
            let device = Device::new(format!("{}{d}", names[i]), token, &rooms_of[&i]);
            devices.push(tokio::spawn(device.run(devices.len(), shared.clone())));
        }
    }

    // The script: each fault, then a few seconds of traffic.
    let pause = || tokio::time::sleep(Duration::from_secs(3));
    let mut phases: Vec<(&str, DateTime<Utc>)> = vec![("no fault", Utc::now())];
    pause().await;
    phases.push(("node SIGKILLed, back 2 s later", Utc::now()));
    fleet.kill(1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet.start(1).await;
    pause().await;
    phases.push(("Redis down 4 s", Utc::now()));
    redis.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.restart();
    pause().await;
    phases.push(("every PostgreSQL connection terminated", Utc::now()));
    let dropped = drop_every_connection(&fleet.nodes[0].database_url).await;
    assert!(dropped >= 3, "the nodes held {dropped} connections");
    pause().await;
    phases.push(("node SIGTERMed, back at once", Utc::now()));
    fleet.terminate(2);
    fleet.start(2).await;
    pause().await;
    phases.push(("node SIGKILLed while Redis is down", Utc::now()));
    redis.stop();
    fleet.kill(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    fleet.start(0).await;
    pause().await;
    // Last, a node cut off from Redis while the others keep it: what it stores is published to
    // no one, and the conversation ends before the link comes back. Nothing later in any room
    // reveals the gap: the nodes must find it on their own.
    phases.push(("node cut off from Redis, until the end", Utc::now()));
    link.cut();
    pause().await;

    // Nothing new: once every send is acknowledged, the history is final.
    shared.sending.store(false, Ordering::SeqCst);
    let settle = Instant::now() + Duration::from_secs(30);
    while shared.pending.load(Ordering::SeqCst) > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reader = &fleet.nodes[1];
    let mut history: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for room in &rooms {
        let member = &users[(rooms.iter().position(|r| r == room).unwrap() + 1) % users.len()];
        history.insert(*room, reader.all_messages(member, *room).await);
    }
    let last: BTreeMap<i64, i64> = history.iter().map(|(room, list)| (*room, list.len() as i64)).collect();
    targets_tx.send_replace(Some(last.clone()));
    let mut finished = Vec::new();
    for device in devices {
        finished.push(device.await.unwrap());
    }

    // The record: each room gapless, each client id stored once, every acknowledged one stored.
    let mut stored_ids = HashSet::new();
    for (room, list) in &history {
        let seqs: Vec<i64> = list.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=list.len() as i64).collect::<Vec<_>>(), "room {room}'s history has gaps");
        for message in list {
            assert!(stored_ids.insert(message["client_id"].as_str().unwrap().to_owned()), "stored twice: {message}");
        }
    }
    let mut problems = Vec::new();
    for device in &finished {
        for id in &device.acked {
            if !stored_ids.contains(id) {
                problems.push(format!("{}: {id} was acknowledged and is not stored", device.name));
            }
        }
        if !device.pending.is_empty() {
            problems.push(format!("{}: never acknowledged: {:?}", device.name, device.pending.keys().collect::<Vec<_>>()));
        }
        problems.extend(device.violations.iter().map(|v| format!("{}: {v}", device.name)));
        for (room, cursor) in &device.cursors {
            let want: Vec<i64> = (1..=last[room]).collect();
            let got = device.received.get(room).cloned().unwrap_or_default();
            if got != want {
                problems.push(format!(
                    "{}: room {room} received {} of {} (cursor {cursor}): {:?}",
                    device.name,
                    got.len(),
                    want.len(),
                    missing(&got, &want)
                ));
            }
        }
    }
    let mut repaired = 0.0;
    for node in fleet.nodes.iter().filter(|node| !node.address.is_empty()) {
        repaired += node.metric("chat_cluster_messages_repaired_total").await;
    }
    let sent: usize = finished.iter().map(|d| d.sent).sum();
    let connections: usize = finished.iter().map(|d| d.connections).sum();
    let deliveries: usize = finished.iter().map(|d| d.received.values().map(Vec::len).sum::<usize>()).sum();
    eprintln!(
        "chaos: {sent} sends, {} stored, {deliveries} deliveries to {} devices over {connections} connections",
        stored_ids.len(),
        finished.len()
    );
    eprintln!("chaos: {repaired} messages read from the database by the nodes alive at the end, the channel having not brought them");
    eprintln!("{:<42} {:>10} {:>8} {:>8} {:>8}", "stored during", "delivered", "p50 ms", "p99 ms", "max ms");
    for (phase, count, p50, p99, max) in latencies_by_phase(&phases, &finished) {
        eprintln!("{phase:<42} {count:>10} {p50:>8} {p99:>8} {max:>8}");
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert!(sent > 500, "too little traffic to mean anything: {sent} sends");
}

/// The seqs of `want` not in `got`, and those in `got` more than once, for a failure message.
fn missing(got: &[i64], want: &[i64]) -> String {
    let have: HashSet<i64> = got.iter().copied().collect();
    let absent: Vec<i64> = want.iter().filter(|seq| !have.contains(seq)).copied().collect();
    let twice = got.len() - have.len();
    format!("missing {absent:?}, {twice} duplicates")
}
