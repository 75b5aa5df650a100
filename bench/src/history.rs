//! The history scenario: paging a room that holds a million messages.

use std::path::Path;
use std::time::Instant;

use anyhow::ensure;
use serde_json::{Value, json};

use crate::server::{Database, JWT_SECRET, Server, Storage};
use crate::stats::Latencies;

pub struct Options {
    pub messages: usize,
    pub requests: usize,
    pub storage: Storage,
}

pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Value> {
    let database = Database::create(options.storage)?;
    Server::run_command(binary, &database, &["migrate"])?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::seed::users(&database, 2, &hash)?;
    crate::seed::groups(&database, 1, 2)?;
    let seeding = Instant::now();
    crate::seed::messages(&database, options.messages)?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    let token = crate::seed::access_tokens(&database, 1, JWT_SECRET)?.remove(0);
    let server = Server::start(binary, &database, &[])?;
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(options.requests);
    let total = options.messages as i64;
    for i in 0..options.requests {
        // Spread the cursors over the whole room: newest page, deep `before`, and `after`.
        let cursor = (i as i64 * 7919) % total.max(1) + 1;
        let query = match i % 3 {
            0 => "limit=50".to_owned(),
            1 => format!("before={cursor}&limit=50"),
            _ => format!("after={cursor}&limit=50"),
        };
        let url = format!("{}/api/contact/chat-room/message/1/?{query}", server.base_url);
        let sent = Instant::now();
        let response = client.get(url).bearer_auth(&token).send().await?;
        ensure!(response.status().is_success(), "history failed: {}", response.status());
        response.bytes().await?;
        samples.push(sent.elapsed());
    }
    let latencies = Latencies::new(samples);
    println!(
        "history {:>8} messages  {:?}  {} pages of 50: {}  (seeded in {:.1} s)",
        options.messages,
        options.storage,
        latencies.count(),
        latencies.brief(),
        seed_secs
    );
    Ok(
        json!({"scenario": "history", "database": format!("{:?}", options.storage).to_lowercase(), "messages": options.messages, "latency": latencies.to_json()}),
    )
}
