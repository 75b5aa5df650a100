//! `chat-bench`: drives the real `chat-api` over loopback (only), bounded in count and time,
//! prints a table and writes the figures as JSON.

mod connections;
mod fanout;
mod history;
mod procstat;
mod relay;
mod rest;
mod search;
mod seed;
mod server;
mod stats;
mod store;

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};

const USAGE: &str = "\
usage: chat-bench SCENARIO [OPTIONS]

scenarios:
  fanout    R rooms of M members, S senders with W sends in flight each, for T seconds:
            deliveries/s, end-to-end latency, loss, duplicates, server CPU and peak RSS
            --rooms R (10)  --members M (10)  --senders S (10)  --window W (16)
            --seconds T (10)  --rate N (0: as fast as the windows allow)
            --target chat|relay|both (both)  --writer-batch N (server default)
            --gate ack|delivery (ack): a window slot frees on the sender's ack, or when
            the message reaches the next member of its room (a conversation's pace)
            --repeat N (1): N rounds, each the relay then chat-api; prints the median ratio
            --nodes N (1): N chat-api nodes on one database, linked through
            --redis URL (redis://127.0.0.1:6379); connections alternate between nodes
  connections  C idle authenticated WebSockets: time to open, server RSS per connection
            --connections C (50000)  --hold-seconds N (5)  --nodes N (as few as the
            open-file limit allows; several need --database postgres and --redis URL)
  rest      an authenticated read route (the friends list) under load
            --friends N (50)  --concurrency N (64)  --seconds T (10)
  history   paging a room of many messages (seeded in bulk)
            --messages N (1000000)  --requests N (2000)
  search    people search over many seeded users
            --users N (100000)  --requests N (2000)  --concurrency N (8)
  store     the durable write path alone, in this process: batches through store_batch
            --batches N (200)  --batch B (100)  --rooms R (10)  --members M (10)
  relay     run the bare relay server (used by fanout)  --bind ADDR

common options:
  --database sqlite|postgres   storage of the server under test (sqlite)
  --server PATH                chat-api binary (the one beside chat-bench)
  --json FILE                  also write the figures as JSON";

/// The Redis that links several nodes unless `--redis` names another.
const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// WebSocket settings of every socket this tool opens or accepts (load clients and the bare
/// relay alike). tungstenite zeroes its whole free read buffer before each read: at the default
/// 128 KiB that was a quarter of the load generator's CPU (`perf record`), taken from the
/// server under test on this shared machine. Chat frames are far smaller; a longer message
/// still grows the buffer as it needs.
pub fn websocket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// Command-line options as `--name value` pairs.
struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.value(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| anyhow::anyhow!("{name} {raw:?}: {e}")),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = raw.first().cloned() else {
        bail!("{USAGE}");
    };
    let args = Args(raw);
    if scenario == "relay" {
        return relay::serve(args.value("--bind").unwrap_or("127.0.0.1:0")).await;
    }
    if scenario == "connections-worker" {
        return connections::worker().await;
    }
    let binary = args.value("--server").map(PathBuf::from).unwrap_or_else(server::default_server_binary);
    if !binary.exists() && scenario != "store" {
        bail!("no chat-api at {}: build it (cargo build --release -p chat-api) or pass --server", binary.display());
    }
    let storage = args.parse("--database", server::Storage::Sqlite)?;
    let figures = match scenario.as_str() {
        "store" => store::run(store::Options {
            batches: args.parse("--batches", 200)?,
            batch: args.parse("--batch", 100)?,
            rooms: args.parse("--rooms", 10)?,
            members: args.parse("--members", 10)?,
            storage,
        })?,
        "search" => {
            let options = search::Options {
                users: args.parse("--users", 100_000)?,
                requests: args.parse("--requests", 2000)?,
                concurrency: args.parse("--concurrency", 8)?,
                storage,
            };
            search::run(&binary, options).await?
        }
        "fanout" => {
            let load = fanout::Load {
                rooms: args.parse("--rooms", 10)?,
                members: args.parse("--members", 10)?,
                senders: args.parse("--senders", 10)?,
                window: args.parse("--window", 16)?,
                duration: std::time::Duration::from_secs_f64(args.parse("--seconds", 10.0)?),
                rate: args.parse("--rate", 0.0)?,
                gate: args.parse("--gate", fanout::Gate::Ack)?,
            };
            let target = args.value("--target").unwrap_or("both");
            let batch = args.value("--writer-batch").map(str::to_owned);
            let mut env: Vec<(&str, &str)> = Vec::new();
            if let Some(batch) = batch.as_deref() {
                env.push(("WRITER_MAX_BATCH", batch));
            }
            println!(
                "fanout: {} rooms x {} members, {} senders, window {} ({}-gated), {:.0} s{}",
                load.rooms,
                load.members,
                load.senders,
                load.window,
                if load.gate == fanout::Gate::Delivery { "delivery" } else { "ack" },
                load.duration.as_secs_f64(),
                if load.rate > 0.0 { format!(", {} sends/s", load.rate) } else { String::new() }
            );
            let mut figures = serde_json::json!({"scenario": "fanout", "rooms": load.rooms, "members": load.members,
                "senders": load.senders, "window": load.window, "seconds": load.duration.as_secs_f64(), "rate": load.rate,
                "gate": if load.gate == fanout::Gate::Delivery { "delivery" } else { "ack" }});
            let repeat: usize = args.parse("--repeat", 1)?;
            ensure!(repeat > 0, "--repeat must be positive");
            let nodes: usize = args.parse("--nodes", 1)?;
            let redis = args.value("--redis").unwrap_or(DEFAULT_REDIS);
            if target != "relay" && nodes > 1 && storage != server::Storage::Postgres {
                bail!("several nodes share a PostgreSQL database: add --database postgres");
            }
            let label = format!(
                "chat-api ({}{})",
                args.value("--database").unwrap_or("sqlite"),
                if nodes > 1 { format!(", {nodes} nodes") } else { String::new() }
            );
            let mut rounds = Vec::with_capacity(repeat);
            for round in 1..=repeat {
                if repeat > 1 {
                    println!("round {round} of {repeat}");
                }
                let mut figures = serde_json::json!({});
                let mut relay_rate = None;
                if target == "relay" || target == "both" {
                    let (outcome, costs) = fanout::against_relay(&load).await?;
                    println!("{}", fanout::line("bare relay", &outcome, &costs));
                    relay_rate = Some(outcome.deliveries_per_second());
                    figures["relay"] = outcome.to_json();
                }
                if target == "chat" || target == "both" {
                    let (outcome, costs) = fanout::against_chat(&binary, storage, &load, &env, nodes, redis).await?;
                    println!("{}", fanout::line(&label, &outcome, &costs));
                    figures["chat"] = outcome.to_json();
                    figures["chat"]["cpu_seconds"] = costs.cpu_seconds.into();
                    figures["chat"]["peak_rss_bytes"] = costs.peak_rss_bytes.into();
                    figures["nodes"] = nodes.into();
                    if let Some(relay) = relay_rate {
                        let fraction = outcome.deliveries_per_second() / relay;
                        println!("chat-api delivers {:.0}% of the bare relay's rate", fraction * 100.0);
                        figures["chat_fraction_of_relay"] = fraction.into();
                    }
                }
                rounds.push(figures);
            }
            if repeat == 1 {
                if let (Some(serde_json::Value::Object(round)), Some(all)) = (rounds.pop(), figures.as_object_mut()) {
                    all.extend(round);
                }
            } else {
                // The ratio of one round moves with the machine between its two halves; over
                // alternating rounds the median tells the two apart.
                let mut fractions: Vec<f64> = rounds.iter().filter_map(|r| r["chat_fraction_of_relay"].as_f64()).collect();
                fractions.sort_by(f64::total_cmp);
                if let (Some(min), Some(max)) = (fractions.first(), fractions.last()) {
                    let median = stats::median(&fractions);
                    let at_least_half = fractions.iter().filter(|f| **f >= 0.5).count();
                    println!(
                        "over {repeat} rounds chat-api delivers {:.0}% of the bare relay's rate at the median ({:.0}-{:.0}%; at least 50% in {at_least_half} of {repeat})",
                        median * 100.0,
                        min * 100.0,
                        max * 100.0
                    );
                    figures["chat_fraction_of_relay"] =
                        serde_json::json!({"median": median, "min": min, "max": max, "rounds_at_least_half": at_least_half});
                }
                figures["rounds"] = rounds.into();
            }
            figures
        }
        "connections" => {
            let options = connections::Options {
                connections: args.parse("--connections", 50_000)?,
                hold: std::time::Duration::from_secs_f64(args.parse("--hold-seconds", 5.0)?),
                storage,
                nodes: args.value("--nodes").map(str::parse).transpose().map_err(|e| anyhow::anyhow!("--nodes: {e}"))?,
                redis: args.value("--redis").unwrap_or(DEFAULT_REDIS).to_owned(),
            };
            connections::run(&binary, options).await?
        }
        "rest" => {
            let options = rest::Options {
                friends: args.parse("--friends", 50)?,
                concurrency: args.parse("--concurrency", 64)?,
                duration: std::time::Duration::from_secs_f64(args.parse("--seconds", 10.0)?),
                storage,
            };
            rest::run(&binary, options).await?
        }
        "history" => {
            let options =
                history::Options { messages: args.parse("--messages", 1_000_000)?, requests: args.parse("--requests", 2000)?, storage };
            history::run(&binary, options).await?
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return Ok(());
        }
        other => bail!("unknown scenario {other:?}\n\n{USAGE}"),
    };
    if let Some(path) = args.value("--json") {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
