//! The REST scenario: an authenticated read route (the friends list) under concurrent load.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::server::{Database, JWT_SECRET, Server, Storage};
use crate::stats::Latencies;

pub struct Options {
    pub friends: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub storage: Storage,
}

pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Value> {
    let database = Database::create(options.storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Users 1..=friends+1 in one group makes user 1 a friend of every other.
    crate::seed::users(&database, options.friends + 1, &hash)?;
    crate::seed::groups(&database, 1, options.friends + 1)?;
    let token = crate::seed::access_tokens(&database, 1, JWT_SECRET)?.remove(0);
    let server = Server::start(binary, &database, &[])?;
    let url = format!("{}/api/contact/friends/", server.base_url);
    let check: Value = reqwest::Client::new().get(&url).bearer_auth(&token).send().await?.json().await?;
    ensure!(check.as_array().map(Vec::len) == Some(options.friends), "unexpected friends list: {check}");

    let deadline = Instant::now() + options.duration;
    let started = Instant::now();
    let cpu_before = crate::procstat::cpu_seconds(server.pid());
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let request: Arc<[u8]> = format!(
        "GET /api/contact/friends/ HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    )
    .into_bytes()
    .into();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency {
        let (address, request) = (address.clone(), request.clone());
        workers.spawn(async move {
            let mut connection = KeepAlive::connect(&address).await?;
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                connection.get(&request).await?;
                samples.push(sent.elapsed());
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = workers.join_next().await {
        samples.extend(done??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::procstat::cpu_seconds(server.pid()) - cpu_before;
    let latencies = Latencies::new(samples);
    let rate = latencies.count() as f64 / elapsed;
    // Server CPU per request moves far less than req/s with this machine's speed.
    let cpu_per_request_us = cpu_seconds * 1e6 / latencies.count().max(1) as f64;
    println!(
        "rest    friends list ({} friends)  {:?}  concurrency {}: {:.0} req/s  {}  server cpu {:.0} us/request",
        options.friends,
        options.storage,
        options.concurrency,
        rate,
        latencies.brief(),
        cpu_per_request_us
    );
    Ok(json!({"scenario": "rest", "route": "GET /api/contact/friends/", "friends": options.friends,
              "database": format!("{:?}", options.storage).to_lowercase(), "concurrency": options.concurrency,
              "requests_per_second": rate, "latency": latencies.to_json(),
              "server_cpu_seconds": cpu_seconds, "server_cpu_us_per_request": cpu_per_request_us}))
}

/// One keep-alive HTTP/1.1 connection that sends a prepared GET and reads the whole answer,
/// as wrk does: the load generator must cost the shared machine as little as it can, so the
/// figure is the server's, not reqwest's.
struct KeepAlive {
    stream: BufReader<TcpStream>,
    line: String,
}

impl KeepAlive {
    async fn connect(address: &str) -> anyhow::Result<KeepAlive> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive { stream: BufReader::with_capacity(64 * 1024, stream), line: String::new() })
    }

    /// Sends `request` and reads the response; anything but a 200 with a body is an error.
    async fn get(&mut self, request: &[u8]) -> anyhow::Result<()> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        ensure!(self.line.starts_with("HTTP/1.1 200"), "friends list failed: {}", self.line.trim_end());
        let mut length = None;
        loop {
            self.line.clear();
            ensure!(self.stream.read_line(&mut self.line).await? > 0, "connection closed mid-response");
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let length = length.ok_or_else(|| anyhow::anyhow!("response without content-length"))?;
        ensure!(length > 0, "empty friends list response");
        let mut remaining = length;
        while remaining > 0 {
            let buffered = self.stream.fill_buf().await?;
            ensure!(!buffered.is_empty(), "connection closed mid-body");
            let take = buffered.len().min(remaining);
            self.stream.consume(take);
            remaining -= take;
        }
        Ok(())
    }
}
