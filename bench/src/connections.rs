//! The connections scenario: C authenticated WebSockets held open and idle. Reports the time
//! to open them all and the servers' memory per connection.
//!
//! An open-file limit caps how many sockets one process may hold (20,000 on the machines this
//! was measured on, and only root with CAP_SYS_RESOURCE may raise it). So the client side is
//! spread over worker processes (`chat-bench connections-worker`, this binary), and past what
//! one server process may hold, over several `chat-api` nodes on PostgreSQL linked by Redis, as
//! a deployment on such a machine would run them. Client sockets are bound to several
//! 127.0.0.x source addresses, so the count is not capped by one address's ephemeral ports.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::procstat;
use crate::server::{Database, JWT_SECRET, Server, Storage};

/// Connections per source address. The ephemeral range holds about 28,000 ports, but binding
/// to port 0 searches that range on every bind and slows down as it fills, so stay well below.
const PER_SOURCE: usize = 4_000;

/// File descriptors a process keeps for everything but its sockets (pool, logs, epoll, …).
const SPARE_FILES: u64 = 512;

pub struct Options {
    pub connections: usize,
    pub storage: Storage,
    /// How long to hold them all open before measuring.
    pub hold: Duration,
    /// Server processes; `None` picks the fewest the open-file limit allows.
    pub nodes: Option<usize>,
    /// Redis linking the nodes when there are several.
    pub redis: String,
}

/// This process's open-file limit: (soft, hard).
fn file_limit() -> anyhow::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct passed to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("getrlimit failed");
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Raises this process's open-file limit to `wanted` (children, such as the servers and the
/// workers, inherit it).
pub fn raise_file_limit(wanted: u64) -> anyhow::Result<()> {
    let (soft, hard) = file_limit()?;
    if soft >= wanted {
        return Ok(());
    }
    let raised = libc::rlimit { rlim_cur: wanted, rlim_max: wanted.max(hard) };
    // SAFETY: setrlimit only reads the struct passed to it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        bail!("cannot raise the open-file limit to {wanted} (now {soft}/{hard}): run as root or raise `ulimit -n`");
    }
    Ok(())
}

/// What a worker is asked to open: its share of the tokens, from global index `first`.
#[derive(Serialize, Deserialize)]
struct Job {
    first: usize,
    targets: Vec<SocketAddr>,
    tokens: Vec<String>,
}

/// A worker's report once its connections are open, and after the ping sample.
#[derive(Serialize, Deserialize, Default)]
struct Report {
    held: usize,
    failed: usize,
    errors: Vec<String>,
    sampled: usize,
    alive: usize,
}

pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Value> {
    let (_, hard) = file_limit()?;
    let per_process = hard.saturating_sub(SPARE_FILES).max(1) as usize;
    let nodes = options.nodes.unwrap_or_else(|| options.connections.div_ceil(per_process)).max(1);
    let per_node = options.connections.div_ceil(nodes);
    ensure!(per_node <= per_process, "{per_node} connections per server process exceed the open-file limit of {hard}: add nodes (--nodes)");
    if nodes > 1 && options.storage != Storage::Postgres {
        bail!(
            "{} connections take {nodes} server processes under the open-file limit of {hard}, and several nodes share \
             one PostgreSQL database: add --database postgres",
            options.connections
        );
    }
    raise_file_limit(hard.min(per_node.max(PER_WORKER) as u64 + SPARE_FILES))?;

    let database = Database::create(options.storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::seed::users(&database, options.connections, &hash)?;
    let tokens = crate::seed::access_tokens(&database, options.connections, JWT_SECRET)?;
    let servers = Server::start_nodes(binary, &database, &[], nodes, &options.redis).await?;
    let targets = servers
        .iter()
        .map(|s| s.base_url.trim_start_matches("http://").parse().context("server address"))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before: Vec<u64> = servers.iter().map(|s| procstat::rss_bytes(s.pid())).collect();

    let started = Instant::now();
    let per_worker = per_process.min(PER_WORKER);
    let mut workers = tokens
        .chunks(per_worker)
        .enumerate()
        .map(|(i, share)| Worker::start(Job { first: i * per_worker, targets: targets.clone(), tokens: share.to_vec() }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut opened = Report::default();
    for worker in &mut workers {
        let report = worker.report()?;
        opened.held += report.held;
        opened.failed += report.failed;
        opened.errors.extend(report.errors);
    }
    let open_secs = started.elapsed().as_secs_f64();
    for error in opened.errors.iter().take(3) {
        eprintln!("connection failed: {error}");
    }
    tokio::time::sleep(options.hold).await;
    let rss_after: Vec<u64> = servers.iter().map(|s| procstat::rss_bytes(s.pid())).collect();

    // Every connection is still alive: a sample answers a ping.
    let mut sampled = Report::default();
    for worker in &mut workers {
        worker.ask("ping")?;
    }
    for worker in &mut workers {
        let report = worker.report()?;
        sampled.sampled += report.sampled;
        sampled.alive += report.alive;
    }
    drop(workers);

    let held = opened.held;
    let rss_total: u64 = rss_after.iter().sum();
    let per_connection = rss_total.saturating_sub(rss_before.iter().sum()) as f64 / held.max(1) as f64;
    println!(
        "connections {held} held ({} failed) on {nodes} node{} in {open_secs:.1} s  server rss {:.0} MB ({:.1} KB per connection)  \
         {}/{} sampled answered a ping",
        opened.failed,
        if nodes == 1 { "" } else { "s" },
        rss_total as f64 / 1e6,
        per_connection / 1024.0,
        sampled.alive,
        sampled.sampled
    );
    Ok(json!({
        "scenario": "connections",
        "database": format!("{:?}", options.storage).to_lowercase(),
        "requested": options.connections,
        "nodes": nodes,
        "held": held,
        "failed": opened.failed,
        "open_seconds": open_secs,
        "server_rss_bytes": rss_total,
        "server_rss_before_bytes": rss_before.iter().sum::<u64>(),
        "server_rss_per_node_bytes": rss_after,
        "rss_per_connection_bytes": per_connection,
        "sampled": sampled.sampled,
        "sampled_alive": sampled.alive,
    }))
}

/// Connections one worker process opens, at most (well inside its open-file limit).
const PER_WORKER: usize = 18_000;

/// A `chat-bench connections-worker` child: takes its job on stdin, answers a report line per
/// request, and closes its connections when its stdin closes.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(job: Job) -> anyhow::Result<Worker> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("connections-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a connections worker")?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        serde_json::to_writer(&mut stdin, &job)?;
        stdin.write_all(b"\n")?;
        Ok(Worker { child, stdin: Some(stdin), stdout })
    }

    fn ask(&mut self, request: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("worker closed")?;
        writeln!(stdin, "{request}")?;
        Ok(())
    }

    fn report(&mut self) -> anyhow::Result<Report> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        serde_json::from_str(&line).with_context(|| format!("worker report {line:?}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// The worker's side: opens the job's connections (connection `i` to target `i % targets`,
/// from source address 127.0.0.(2 + i / PER_SOURCE)), reports, then on `ping` pings a sample
/// of about 100 and reports again, and exits when its stdin closes.
pub async fn worker() -> anyhow::Result<()> {
    let mut input = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let job: Job = serde_json::from_str(&input.next_line().await?.context("no job")?)?;
    let in_flight = Arc::new(Semaphore::new(256));
    let mut opening = tokio::task::JoinSet::new();
    for (offset, token) in job.tokens.into_iter().enumerate() {
        let index = job.first + offset;
        let permit = in_flight.clone().acquire_owned().await?;
        let source = Ipv4Addr::new(127, 0, 0, 2 + (index / PER_SOURCE) as u8);
        let target = job.targets[index % job.targets.len()];
        opening.spawn(async move {
            let _permit = permit;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source.into(), 0))?;
            let stream = socket.connect(target).await?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(
                format!("ws://{target}/ws/?token={token}"),
                stream,
                Some(crate::websocket_config()),
            )
            .await?;
            anyhow::Ok(ws)
        });
    }
    let mut sockets = Vec::new();
    let mut report = Report::default();
    while let Some(done) = opening.join_next().await {
        match done? {
            Ok(ws) => sockets.push(ws),
            Err(error) => {
                report.failed += 1;
                if report.errors.len() < 3 {
                    report.errors.push(format!("{error:#}"));
                }
            }
        }
    }
    report.held = sockets.len();
    println!("{}", serde_json::to_string(&report)?);

    while let Some(request) = input.next_line().await? {
        if request == "ping" {
            let step = (sockets.len() / 100).max(1);
            for ws in sockets.iter_mut().step_by(step) {
                report.sampled += 1;
                if ws.send(Message::text(json!({"type": "ping"}).to_string())).await.is_ok() && answers_pong(ws).await {
                    report.alive += 1;
                }
            }
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

async fn answers_pong<S>(ws: &mut S) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let answer = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && text.contains("pong")
            {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(5), answer).await.unwrap_or(false)
}
