//! The people-search scenario: search latency and throughput with many users.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::seed;
use crate::server::{Database, Server, Storage};
use crate::stats::Latencies;

pub struct Options {
    pub users: usize,
    pub requests: usize,
    pub concurrency: usize,
    pub storage: Storage,
}

/// Registers a user through the API and returns its access token.
pub async fn register(client: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<String> {
    let password = "bench password 1";
    let body = json!({"username": username, "first_name": "Bench", "last_name": "Caller", "email": format!("{username}@caller.test"),
                      "password": password, "password2": password, "tc": true});
    let answer: Value = client.post(format!("{base}/api/account/register/")).json(&body).send().await?.json().await?;
    answer["access"].as_str().map(str::to_owned).with_context(|| format!("register failed: {answer}"))
}

pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Value> {
    let database = Database::create(options.storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let started = Instant::now();
    let hash = chat_api::auth::password::hash_password("seeded password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    seed::users(&database, options.users, &hash)?;
    let seed_secs = started.elapsed().as_secs_f64();
    let server = Server::start(binary, &database, &[])?;
    let client = reqwest::Client::new();
    let token = Arc::new(register(&client, &server.base_url, "bench_caller").await?);

    // Short prefixes are the worst case: they match tens of thousands of users.
    let queries = ["a", "j", "m", "jo", "mar", "user0", "user05", "smi", "mü", "zo", "olga", "nobodyhere", "user012345@bench.test"];
    let mut samples = Vec::with_capacity(options.requests);
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = options.requests.div_ceil(options.concurrency);
    let wall = Instant::now();
    for worker in 0..options.concurrency {
        let (client, base, token) = (client.clone(), server.base_url.clone(), token.clone());
        tasks.spawn(async move {
            let mut local = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let query = queries[(worker + i) % queries.len()];
                let url = format!("{base}/api/contact/find-friend/?query={query}&limit=20");
                let sent = Instant::now();
                let response = client.get(url).bearer_auth(token.as_str()).send().await?;
                ensure!(response.status().is_success(), "search failed: {}", response.status());
                response.bytes().await?;
                local.push(sent.elapsed());
            }
            Ok::<Vec<Duration>, anyhow::Error>(local)
        });
    }
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let latencies = Latencies::new(samples);
    let throughput = latencies.count() as f64 / elapsed;
    println!(
        "search  {:>8} users  {:?}  {} requests, concurrency {}: {}  {:.0} req/s  (seeded in {:.1} s)",
        options.users,
        options.storage,
        latencies.count(),
        options.concurrency,
        latencies.brief(),
        throughput,
        seed_secs
    );
    Ok(json!({
        "scenario": "search",
        "database": format!("{:?}", options.storage).to_lowercase(),
        "users": options.users,
        "concurrency": options.concurrency,
        "latency": latencies.to_json(),
        "requests_per_second": throughput,
    }))
}
