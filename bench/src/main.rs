//! `chat-bench`: drives the real `chat-api` over loopback (only), bounded in count and time,
//! prints a table and writes the figures as JSON.

mod search;
mod seed;
mod server;
mod stats;

use std::path::PathBuf;

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: chat-bench SCENARIO [OPTIONS]

scenarios:
  search    people search over many seeded users
            --users N (100000)  --requests N (2000)  --concurrency N (8)

common options:
  --database sqlite|postgres   storage of the server under test (sqlite)
  --server PATH                chat-api binary (the one beside chat-bench)
  --json FILE                  also write the figures as JSON";

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
    let binary = args.value("--server").map(PathBuf::from).unwrap_or_else(server::default_server_binary);
    if !binary.exists() {
        bail!("no chat-api at {}: build it (cargo build --release -p chat-api) or pass --server", binary.display());
    }
    let storage = args.parse("--database", server::Storage::Sqlite)?;
    let figures = match scenario.as_str() {
        "search" => {
            let options = search::Options {
                users: args.parse("--users", 100_000)?,
                requests: args.parse("--requests", 2000)?,
                concurrency: args.parse("--concurrency", 8)?,
                storage,
            };
            search::run(&binary, options).await?
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
