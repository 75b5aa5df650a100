//! The test harness: starts the real `chat-api` binary on a free port with a fresh database
//! (a SQLite file in a temporary folder, or a new PostgreSQL database) and a real SMTP listener,
//! and speaks HTTP to it.

pub mod faults;
pub mod openai;
pub mod smtp;
pub mod ws;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use smtp::SmtpServer;
pub use ws::WsClient;

/// The signing key every test server uses, so tests can forge tokens with other keys.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test and dropped after it.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a fresh database; `None` (with a loud note) when PostgreSQL is unreachable
    /// outside CI. Under `CI=true` an unreachable server fails the test.
    pub fn create() -> Option<PgDatabase> {
        use diesel::{Connection, RunQueryDsl, pg::PgConnection};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = postgres_admin_url();
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: PostgreSQL unreachable at {admin_url}: {error}");
                return None;
            }
            Err(error) => panic!("PostgreSQL unreachable at {admin_url} (required under CI=true): {error}"),
        };
        let name = format!("chat_test_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand::random::<u32>());
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        Some(PgDatabase { url: format!("{base}/{name}"), name })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl, pg::PgConnection};
        if let Ok(mut admin) = PgConnection::establish(&postgres_admin_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut admin);
        }
    }
}

/// The Redis server cluster tests use; `None` (with a loud note) when it is unreachable outside
/// CI. Under `CI=true` an unreachable server fails the test.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = url.trim_start_matches("redis://").trim_end_matches('/').to_owned();
    match std::net::TcpStream::connect_timeout(&address.parse().expect("TEST_REDIS_URL is redis://IP:PORT"), Duration::from_secs(2)) {
        Ok(_) => Some(url),
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: Redis unreachable at {url}: {error}");
            None
        }
        Err(error) => panic!("Redis unreachable at {url} (required under CI=true): {error}"),
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A channel name no other test uses: each test's nodes talk among themselves only.
pub fn unique_channel() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("chat-test:{}:{}:{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand::random::<u32>())
}

/// A running server and what the test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
    pub smtp: SmtpServer,
    pub client: reqwest::Client,
    child: Option<Child>,
    extra_env: Vec<(String, String)>,
    // Declared last: dropped after the server is stopped.
    _pg: Option<PgDatabase>,
}

/// An HTTP answer: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A registered user with live tokens.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// Starts a server on `backend` with extra environment variables (an empty value removes
    /// the variable); `None` only when PostgreSQL is missing outside CI.
    pub async fn spawn_with(backend: Backend, env: &[(&str, &str)]) -> Option<TestApp> {
        let data_dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(tokio::task::spawn_blocking(PgDatabase::create).await.unwrap()?),
        };
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", data_dir.path().join("chat.db").display()),
        };
        let smtp = SmtpServer::start().await;
        let extra_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut app = TestApp {
            address: String::new(),
            database_url,
            smtp,
            client: reqwest::Client::new(),
            child: None,
            extra_env,
            data_dir,
            _pg: pg,
        };
        app.start_server().await;
        Some(app)
    }

    /// Starts another node of the same deployment: same database and settings, its own port,
    /// folder and SMTP listener. The first app owns the database: keep it alive longer.
    pub async fn spawn_peer(&self) -> TestApp {
        self.spawn_peer_with(&[]).await
    }

    /// [`TestApp::spawn_peer`] with some settings of its own (an empty value removes one).
    pub async fn spawn_peer_with(&self, env: &[(&str, &str)]) -> TestApp {
        let mut extra_env = self.extra_env.clone();
        extra_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut peer = TestApp {
            address: String::new(),
            database_url: self.database_url.clone(),
            data_dir: tempfile::tempdir().unwrap(),
            smtp: SmtpServer::start().await,
            client: reqwest::Client::new(),
            child: None,
            extra_env,
            _pg: None,
        };
        peer.start_server().await;
        peer
    }

    /// The command that runs the binary against this test's database and folders.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-api"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHAT_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &self.database_url)
            .env("DATA_DIR", self.data_dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .env("BCRYPT_COST", "4")
            .env("WORKERS", "2")
            .env("SMTP_URL", self.smtp.url())
            .env("PUBLIC_URL", "http://chat.test")
            .env("RUST_LOG", "info")
            // Tests register many users from one address; the limits have their own test.
            .env("RATE_LIMIT_SCALE", "0")
            .current_dir(self.data_dir.path());
        for (key, value) in &self.extra_env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        command
    }

    /// Starts (or restarts) the server process and waits until it listens.
    pub async fn start_server(&mut self) {
        let log = std::fs::File::create(self.data_dir.path().join("server.log")).unwrap();
        let mut child = self.command().stdout(Stdio::piped()).stderr(log).spawn().expect("starting chat-api");
        let stdout = child.stdout.take().unwrap();
        let address = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader.into_inner(), &mut std::io::sink()));
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(60), address).await.expect("server did not start in 60 s").unwrap();
        let Some(address) = line.trim().strip_prefix("chat-api listening on ") else {
            let _ = child.kill();
            panic!("server failed to start: {line:?}\n{}", self.server_log());
        };
        self.address = address.to_owned();
        self.child = Some(child);
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (up to 20 s) for the server to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running server");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        for _ in 0..200 {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("the server did not stop within 20 s of SIGTERM\n{}", self.server_log());
    }

    /// The value of a Prometheus metric without labels (NaN when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|line| line.strip_prefix(&format!("{name} "))).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }

    /// Waits (up to 10 s) until a metric reads `value`.
    pub async fn wait_for_metric(&self, name: &str, value: f64) {
        for _ in 0..100 {
            if self.metric(name).await == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} never reached {value} on {}\n{}", self.address, self.server_log());
    }

    /// The server process's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// What the server wrote to stderr so far.
    pub fn server_log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.data_dir.path().join("server.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional JSON body and bearer token.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>, token: Option<&str>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request failed");
        Answer::read(response).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        self.request(Method::POST, path, Some(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::DELETE, path, None, token).await
    }

    /// Registers `names` and makes every two of them friends.
    pub async fn friends(&self, names: &[&str]) -> Vec<TestUser> {
        let mut users = Vec::new();
        for name in names {
            users.push(self.register(name).await);
        }
        for i in 0..users.len() {
            for j in i + 1..users.len() {
                self.befriend(&users[i], &users[j]).await;
            }
        }
        users
    }

    /// Makes `a` and `b` friends through a request and its acceptance.
    pub async fn befriend(&self, a: &TestUser, b: &TestUser) {
        let sent = self.post("/api/contact/friend-request/", json!({"receiver_id": b.id}), Some(&a.access)).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        let id = sent.body["id"].as_i64().unwrap();
        let accepted =
            self.post(&format!("/api/contact/friend-requests/respond/{id}/"), json!({"action": "accept"}), Some(&b.access)).await;
        assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        self.request(Method::PATCH, path, Some(body), token).await
    }

    /// Registers `username` (email `<username>@example.com`, names "Test" and the username)
    /// and returns its tokens.
    pub async fn register(&self, username: &str) -> TestUser {
        self.register_named(username, "Test", username).await
    }

    /// Registers `username` with the given first and last name.
    pub async fn register_named(&self, username: &str, first_name: &str, last_name: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let password = format!("pw-{username}-secret");
        let answer = self
            .post(
                "/api/account/register/",
                json!({"username": username, "first_name": first_name, "last_name": last_name, "email": email,
                       "password": password, "password2": password, "tc": true}),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "register {username}: {:?}", answer.body);
        TestUser {
            id: answer.body["user"]["id"].as_i64().unwrap(),
            email,
            password,
            access: answer.body["access"].as_str().unwrap().to_owned(),
            refresh: answer.body["refresh"].as_str().unwrap().to_owned(),
        }
    }

    /// The `ws://` URL of `path` with an access token.
    pub fn ws_url(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.address.replacen("http://", "ws://", 1))
    }

    /// Opens `/ws/` as the holder of `token`.
    pub async fn ws(&self, token: &str) -> WsClient {
        self.ws_at("/ws/", token).await
    }

    /// Opens a WebSocket at `path` as the holder of `token`.
    pub async fn ws_at(&self, path: &str, token: &str) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url(path, token)).await.expect("WebSocket connect");
        WsClient::new(stream)
    }

    /// Opens `/ws/` and sends a first frame (a ping, answered), which ends the hold on live
    /// messages: frames sent afterwards arrive without waiting for the grace period.
    pub async fn ws_ready(&self, token: &str) -> WsClient {
        let mut client = self.ws(token).await;
        client.send(json!({"type": "ping"})).await;
        client.next_of("pong").await;
        client
    }

    /// Opens the private room of two friends; returns its id.
    pub async fn private_room(&self, a: &TestUser, b: &TestUser) -> i64 {
        let room = self.post("/api/contact/chat-room/private/", json!({"user2_id": b.id}), Some(&a.access)).await;
        assert!(room.status.is_success(), "{:?}", room.body);
        room.body["id"].as_i64().unwrap()
    }

    /// Creates a group owned by `owner` with `members` (friends of the owner); returns its id.
    pub async fn group(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> i64 {
        let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
        let room = self.post("/api/contact/chat-room/group/", json!({"name": name, "member_ids": ids}), Some(&owner.access)).await;
        assert_eq!(room.status, StatusCode::CREATED, "{:?}", room.body);
        room.body["id"].as_i64().unwrap()
    }

    /// Sends a message over REST; returns the stored message.
    pub async fn say(&self, user: &TestUser, room: i64, body: &str, client_id: &str) -> Value {
        let sent = self
            .post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": body, "client_id": client_id}), Some(&user.access))
            .await;
        assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        sent.body
    }

    /// Sends messages `m{n}` (client id `c{n}`) for each `n` of `numbers`, one after another.
    pub async fn say_numbered(&self, user: &TestUser, room: i64, numbers: std::ops::RangeInclusive<i64>) {
        for n in numbers {
            self.say(user, room, &format!("m{n}"), &format!("c{n}")).await;
        }
    }

    /// The seqs of a room's whole history.
    pub async fn all_seqs(&self, user: &TestUser, room: i64) -> Vec<i64> {
        self.all_messages(user, room).await.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
    }

    /// A room's whole history, read page by page.
    pub async fn all_messages(&self, user: &TestUser, room: i64) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m["seq"].as_i64().unwrap());
            let page = self.get(&format!("/api/contact/chat-room/message/{room}/?after={after}&limit=200"), Some(&user.access)).await;
            assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
            all.extend(page.body["messages"].as_array().unwrap().iter().cloned());
            if !page.body["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }

    /// Logs `user` in again, as a second device would.
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        self.post("/api/account/login/", json!({"email": email, "password": password}), None).await
    }
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, body }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- chat-api log ----\n{}", self.server_log());
        }
    }
}

/// Starts a `TestApp` on a backend, or ends the test early when that backend is unavailable
/// outside CI (the harness prints why).
#[macro_export]
macro_rules! spawn_app {
    ($backend:expr) => {
        $crate::spawn_app!($backend, &[])
    };
    ($backend:expr, $env:expr) => {
        match $crate::common::TestApp::spawn_with($backend, $env).await {
            Some(app) => app,
            None => return,
        }
    };
}

/// Declares each listed `async fn name(backend: Backend)` as a test on SQLite and on
/// PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
