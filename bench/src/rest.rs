//! The REST scenario: an authenticated read route (the friends list) under concurrent load.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{Value, json};

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
    let token = Arc::new(crate::seed::access_tokens(&database, 1, JWT_SECRET)?.remove(0));
    let server = Server::start(binary, &database, &[])?;
    let url = Arc::new(format!("{}/api/contact/friends/", server.base_url));
    let client = reqwest::Client::builder().pool_max_idle_per_host(options.concurrency).build()?;
    let check: Value = client.get(url.as_str()).bearer_auth(token.as_str()).send().await?.json().await?;
    ensure!(check.as_array().map(Vec::len) == Some(options.friends), "unexpected friends list: {check}");

    let deadline = Instant::now() + options.duration;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        workers.spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(url.as_str()).bearer_auth(token.as_str()).send().await?;
                ensure!(response.status().is_success(), "friends list failed: {}", response.status());
                response.bytes().await?;
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
    let latencies = Latencies::new(samples);
    let rate = latencies.count() as f64 / elapsed;
    println!(
        "rest    friends list ({} friends)  {:?}  concurrency {}: {:.0} req/s  {}",
        options.friends,
        options.storage,
        options.concurrency,
        rate,
        latencies.brief()
    );
    Ok(json!({"scenario": "rest", "route": "GET /api/contact/friends/", "friends": options.friends,
              "database": format!("{:?}", options.storage).to_lowercase(), "concurrency": options.concurrency,
              "requests_per_second": rate, "latency": latencies.to_json()}))
}
