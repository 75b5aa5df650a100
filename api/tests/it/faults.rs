//! Storage faults under load: PostgreSQL restarted while messages flow, every connection of a
//! node dropped by the database, and a disk that fills up under SQLite. The server must answer 503 (retry) instead of failing, recover on its own,
//! and store every message exactly once once the client retries with the same client_id.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::faults::drop_every_connection;
use crate::common::{Backend, WsClient, free_port};
use crate::spawn_app;

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Ends the test early outside CI when the machine cannot host it; fails it under CI.
fn unavailable(why: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "required under CI=true: {why}");
    eprintln!("SKIPPED: {why}");
}

/// A PostgreSQL server of the test's own (Debian's binaries, run as user `postgres`), so the
/// test can crash and restart it.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        if !is_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        Command::new("chown").args(["postgres:", &dir.path().display().to_string()]).status().unwrap();
        let port = free_port();
        let postgres = OwnPostgres { bin, dir, port };
        let data = postgres.data().display().to_string();
        postgres.as_postgres("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        postgres.restart();
        Some(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{tool} {args:?} failed");
    }

    fn restart(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("server.log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data().display().to_string(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    /// Stops at once, as a crash would (no checkpoint, connections cut), and starts again
    /// two seconds later.
    fn crash_and_restart(&self) {
        self.as_postgres("pg_ctl", &["-D", &self.data().display().to_string(), "-m", "immediate", "-w", "stop"]);
        std::thread::sleep(Duration::from_secs(2));
        self.restart();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data().display().to_string(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn send(room: i64, client_id: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": client_id, "body": format!("body of {client_id}")})
}

/// Sends every client id of `pending` until each is acknowledged (retrying those answered
/// with `service_unavailable`), within `deadline`. Returns the acked seqs by client id and the
/// error codes seen.
async fn send_until_stored(
    socket: &mut WsClient,
    room: i64,
    mut pending: Vec<String>,
    deadline: Duration,
) -> (BTreeMap<String, i64>, Vec<String>) {
    let until = tokio::time::Instant::now() + deadline;
    let mut acked = BTreeMap::new();
    let mut codes = Vec::new();
    while !pending.is_empty() {
        assert!(tokio::time::Instant::now() < until, "{} sends never stored (errors seen: {codes:?})", pending.len());
        for client_id in &pending {
            socket.send(send(room, client_id)).await;
        }
        let mut answered: HashSet<String> = HashSet::new();
        while answered.len() < pending.len() {
            let frame = socket.next().await;
            let Some(client_id) = frame["client_id"].as_str().map(str::to_owned) else { continue };
            match frame["type"].as_str() {
                Some("ack") => {
                    acked.insert(client_id.clone(), frame["message"]["seq"].as_i64().unwrap());
                }
                Some("error") => codes.push(frame["code"].as_str().unwrap_or("?").to_owned()),
                _ => continue,
            }
            answered.insert(client_id);
        }
        pending.retain(|id| !acked.contains_key(id));
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    (acked, codes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_answers_503_and_loses_nothing() {
    let Some(postgres) = tokio::task::spawn_blocking(OwnPostgres::start).await.unwrap().map(std::sync::Arc::new) else {
        return unavailable("a PostgreSQL server of the test's own needs Debian's PostgreSQL binaries and root (runuser)");
    };
    let app = spawn_app!(Backend::Sqlite, &[("DATABASE_URL", &postgres.url())]);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    let mut ann_ws = app.ws_ready(&ann.access).await;

    let first: Vec<String> = (0..40).map(|i| format!("before-{i}")).collect();
    let (mut acked, _) = send_until_stored(&mut ann_ws, room, first, Duration::from_secs(20)).await;

    // PostgreSQL crashes while a burst is in flight, and comes back 2 s later.
    let burst: Vec<String> = (0..60).map(|i| format!("during-{i}")).collect();
    for client_id in &burst {
        ann_ws.send(send(room, client_id)).await;
    }
    let crashing = postgres.clone();
    tokio::task::spawn_blocking(move || crashing.crash_and_restart());
    // Reads during the outage answer 503, not 500.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let answer = app.get("/api/contact/friends/", Some(&bob.access)).await;
        statuses.push((answer.status, answer.code().to_owned()));
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(statuses.iter().all(|(s, _)| *s != StatusCode::INTERNAL_SERVER_ERROR), "{statuses:?}");

    // The client retries what was refused; everything ends up stored once.
    let (during, codes) = send_until_stored(&mut ann_ws, room, burst, Duration::from_secs(60)).await;
    assert!(codes.iter().all(|code| code == "service_unavailable"), "only retryable errors: {codes:?}");
    acked.extend(during);
    let after: Vec<String> = (0..20).map(|i| format!("after-{i}")).collect();
    acked.extend(send_until_stored(&mut ann_ws, room, after, Duration::from_secs(20)).await.0);

    assert_eq!(acked.len(), 120);
    let mut seqs: Vec<i64> = acked.values().copied().collect();
    seqs.sort_unstable();
    let stored = app.all_seqs(bob, room).await;
    assert_eq!(stored, (1..=120).collect::<Vec<_>>(), "each message stored once, no gap");
    assert_eq!(seqs, stored, "every ack names a stored seq");
    assert_eq!(app.get("/api/contact/friends/", Some(&bob.access)).await.status, StatusCode::OK, "reads recovered");
    assert!(!app.server_log().contains("panicked"), "{}", app.server_log());
}

/// PostgreSQL drops every connection of the node (an administrator's terminate, a failover): the
/// first request to meet a dead pooled connection answers 503, and the ones after it find live
/// connections, instead of each of the pool's dead connections costing a request of its own.
#[tokio::test]
async fn when_postgres_drops_every_connection_a_node_fails_at_most_one_request() {
    let app = spawn_app!(Backend::Postgres);
    let users = app.friends(&["ann", "bob"]).await;
    let ann = &users[0];
    // Requests at once, so the pool holds several open connections.
    let warm = (0..16).map(|_| app.get("/api/contact/friends/", Some(&ann.access)));
    for answer in futures_util::future::join_all(warm).await {
        assert_eq!(answer.status, StatusCode::OK);
    }

    let dropped = drop_every_connection(&app.database_url).await;
    assert!(dropped >= 2, "the node had several connections open: {dropped}");

    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(app.get("/api/contact/friends/", Some(&ann.access)).await.status);
    }
    let failed: Vec<&StatusCode> = statuses.iter().filter(|s| **s != StatusCode::OK).collect();
    assert!(failed.iter().all(|s| **s == StatusCode::SERVICE_UNAVAILABLE), "only 503s: {statuses:?}");
    assert!(failed.len() <= 1, "one failed request at most, not one per dead connection: {statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::OK));
}

/// A device's first sync fails (the database dropped its connections); the live messages that
/// arrived meanwhile stay held, and the retried sync brings everything after the cursor, in
/// order and once: the failed sync cost the device nothing.
#[tokio::test]
async fn a_sync_that_fails_on_a_database_blip_costs_the_device_nothing_when_retried() {
    let app = spawn_app!(Backend::Postgres);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    app.say_numbered(ann, room, 1..=8).await;
    let mut device = app.ws(&bob.access).await;
    app.say_numbered(ann, room, 9..=10).await;
    assert!(drop_every_connection(&app.database_url).await >= 1);
    device.send(json!({"type": "sync", "cursors": {room.to_string(): 3}})).await;
    let failed = device.next().await;
    assert_eq!((failed["type"].as_str(), failed["code"].as_str()), (Some("error"), Some("service_unavailable")), "{failed}");

    device.send(json!({"type": "sync", "cursors": {room.to_string(): 3}})).await;
    let (seqs, _) = device.message_seqs_until_synced(room).await;
    assert_eq!(seqs, (4..=10).collect::<Vec<_>>(), "everything after the cursor, in order, once");
    app.say(ann, room, "m11", "c11").await;
    assert_eq!(device.next_of("message").await["message"]["seq"], 11, "the held 9 and 10 are not sent again");
}

/// A small tmpfs of the test's own: a disk that can be filled.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        if !is_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"]).arg(dir.path()).status().ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers() {
    let Some(disk) = SmallDisk::mount(16) else {
        return unavailable("mounting a small tmpfs needs root");
    };
    let url = format!("sqlite://{}", disk.dir.path().join("chat.db").display());
    let app = spawn_app!(Backend::Sqlite, &[("DATABASE_URL", &url)]);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    let mut ann_ws = app.ws_ready(&ann.access).await;
    let first: Vec<String> = (0..10).map(|i| format!("before-{i}")).collect();
    let (mut acked, _) = send_until_stored(&mut ann_ws, room, first, Duration::from_secs(20)).await;

    let filler = disk.fill();
    // Messages with large bodies until the database cannot grow.
    let mut refused = Vec::new();
    let mut codes = Vec::new();
    for i in 0..400 {
        let client_id = format!("full-{i}");
        ann_ws.send(json!({"type": "send", "room_id": room, "client_id": client_id, "body": "x".repeat(3900)})).await;
        let frame = ann_ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => {
                acked.insert(client_id, frame["message"]["seq"].as_i64().unwrap());
            }
            Some("error") => {
                codes.push(frame["code"].as_str().unwrap_or("?").to_owned());
                refused.push(client_id);
                if refused.len() >= 5 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(!refused.is_empty(), "the disk never filled up");
    assert!(codes.iter().all(|code| code == "service_unavailable"), "a full disk is a retryable condition: {codes:?}");
    // Reads go on, and so does the rest of the API that does not write.
    assert_eq!(app.get("/api/contact/friends/", Some(&bob.access)).await.status, StatusCode::OK);
    let history = app.get(&format!("/api/contact/chat-room/message/{room}/"), Some(&bob.access)).await;
    assert_eq!(history.status, StatusCode::OK, "{:?}", history.body);

    // Space comes back: the refused sends, retried, are stored once each.
    std::fs::remove_file(filler).unwrap();
    let (retried, _) = send_until_stored(&mut ann_ws, room, refused, Duration::from_secs(30)).await;
    acked.extend(retried);
    let stored = app.all_seqs(bob, room).await;
    assert_eq!(stored, (1..=acked.len() as i64).collect::<Vec<_>>(), "each message stored once, no gap");
    let mut seqs: Vec<i64> = acked.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, stored);
    assert!(!app.server_log().contains("panicked"), "{}", app.server_log());
}
