//! The connections scenario: C authenticated WebSockets held open and idle. Client sockets are
//! bound to several 127.0.0.x source addresses, so the count is not capped by one address's
//! ephemeral ports. Reports the time to open them all and the server's memory per connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::procstat;
use crate::server::{Database, JWT_SECRET, Server, Storage};

/// Connections per source address. The ephemeral range holds about 28,000 ports, but binding
/// to port 0 searches that range on every bind and slows down as it fills, so stay well below.
const PER_SOURCE: usize = 4_000;

pub struct Options {
    pub connections: usize,
    pub storage: Storage,
    /// How long to hold them all open before measuring.
    pub hold: Duration,
}

/// Raises this process's open-file limit (children, such as the server, inherit it).
pub fn raise_file_limit(wanted: u64) -> anyhow::Result<()> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit failed");
        }
        if limit.rlim_cur >= wanted {
            return Ok(());
        }
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: wanted.max(limit.rlim_max) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            bail!(
                "cannot raise the open-file limit to {wanted} (now {}/{}): run as root or raise `ulimit -n`",
                limit.rlim_cur,
                limit.rlim_max
            );
        }
    }
    Ok(())
}

pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Value> {
    // The bench and the server (which inherits the limit) each hold one end of every connection.
    raise_file_limit(options.connections as u64 + 512)?;
    let database = Database::create(options.storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::seed::users(&database, options.connections, &hash)?;
    let tokens = crate::seed::access_tokens(&database, options.connections, JWT_SECRET)?;
    let server = Server::start(binary, &database, &[])?;
    let address: SocketAddr = server.base_url.trim_start_matches("http://").parse().context("server address")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = procstat::rss_bytes(server.pid());

    let started = Instant::now();
    let in_flight = Arc::new(Semaphore::new(256));
    let mut opening = tokio::task::JoinSet::new();
    for (index, token) in tokens.into_iter().enumerate() {
        let permit = in_flight.clone().acquire_owned().await?;
        let source = Ipv4Addr::new(127, 0, 0, 2 + (index / PER_SOURCE) as u8);
        let url = format!("ws://{address}/ws/?token={token}");
        opening.spawn(async move {
            let _permit = permit;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source.into(), 0))?;
            let stream = socket.connect(address).await?;
            let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
            anyhow::Ok(ws)
        });
    }
    let mut sockets = Vec::with_capacity(options.connections);
    let mut failed = 0;
    while let Some(done) = opening.join_next().await {
        match done? {
            Ok(ws) => sockets.push(ws),
            Err(error) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("connection failed: {error:#}");
                }
            }
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(options.hold).await;
    let rss_after = procstat::rss_bytes(server.pid());

    // Every connection is still alive: a sample answers a ping.
    let mut alive = 0;
    let step = (sockets.len() / 100).max(1);
    for ws in sockets.iter_mut().step_by(step) {
        if ws.send(Message::text(json!({"type": "ping"}).to_string())).await.is_ok() {
            let answer = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message
                        && text.contains("pong")
                    {
                        return true;
                    }
                }
                false
            });
            if answer.await.unwrap_or(false) {
                alive += 1;
            }
        }
    }
    let sampled = sockets.len().div_ceil(step);
    let held = sockets.len();
    let per_connection = rss_after.saturating_sub(rss_before) as f64 / held.max(1) as f64;
    println!(
        "connections {held} held ({failed} failed) in {open_secs:.1} s  server rss {:.0} MB ({:.1} KB per connection)  {alive}/{sampled} sampled answered a ping",
        rss_after as f64 / 1e6,
        per_connection / 1024.0
    );
    Ok(json!({
        "scenario": "connections",
        "database": format!("{:?}", options.storage).to_lowercase(),
        "requested": options.connections,
        "held": held,
        "failed": failed,
        "open_seconds": open_secs,
        "server_rss_bytes": rss_after,
        "server_rss_before_bytes": rss_before,
        "rss_per_connection_bytes": per_connection,
        "sampled": sampled,
        "sampled_alive": alive,
    }))
}
