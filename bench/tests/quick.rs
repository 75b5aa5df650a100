//! Every scenario of chat-bench in a quick mode (seconds, small numbers) against the debug
//! `chat-api`, so the load tool cannot rot. The full runs are in BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The `chat-api` built beside this test's `chat-bench` (cargo test --workspace builds both).
fn server() -> PathBuf {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_chat-bench")).with_file_name("chat-api");
    assert!(server.exists(), "build chat-api first (cargo test --workspace does): {}", server.display());
    server
}

/// Runs `chat-bench ARGS --json FILE` and returns the figures.
fn bench(args: &[&str]) -> Value {
    let out = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chat-bench"))
        .args(args)
        .arg("--server")
        .arg(server())
        .arg("--json")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chat-bench {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.path()).unwrap()).unwrap()
}

#[test]
fn fanout_quick_mode_delivers_everything_once_on_the_server_and_the_bare_relay() {
    let figures = bench(&["fanout", "--rooms", "2", "--members", "3", "--senders", "2", "--window", "4", "--seconds", "1"]);
    for target in ["chat", "relay"] {
        let run = &figures[target];
        assert!(run["acked"].as_u64().unwrap() > 0, "{target}: nothing was acknowledged: {run}");
        assert_eq!(run["lost"], 0, "{target}: {run}");
        assert_eq!(run["duplicated"], 0, "{target}: {run}");
        assert_eq!(run["reordered"], 0, "{target}: {run}");
        assert_eq!(run["deliveries"].as_u64().unwrap(), run["acked"].as_u64().unwrap() * 3, "{target}: every member got every message");
    }
    assert!(figures["chat_fraction_of_relay"].as_f64().unwrap() > 0.0);
}

#[test]
fn fanout_gated_by_delivery_delivers_everything_once_on_the_server_and_the_bare_relay() {
    let figures =
        bench(&["fanout", "--rooms", "2", "--members", "3", "--senders", "2", "--window", "4", "--seconds", "1", "--gate", "delivery"]);
    assert_eq!(figures["gate"], "delivery");
    for target in ["chat", "relay"] {
        let run = &figures[target];
        assert!(run["acked"].as_u64().unwrap() > 0, "{target}: nothing was acknowledged: {run}");
        assert_eq!(
            (run["lost"].as_u64(), run["duplicated"].as_u64(), run["reordered"].as_u64()),
            (Some(0), Some(0), Some(0)),
            "{target}: {run}"
        );
        assert_eq!(run["deliveries"].as_u64().unwrap(), run["acked"].as_u64().unwrap() * 3, "{target}: every member got every message");
    }
}

#[test]
fn fanout_rounds_report_every_round_and_the_median_ratio() {
    let figures =
        bench(&["fanout", "--rooms", "2", "--members", "2", "--senders", "2", "--window", "4", "--seconds", "0.5", "--repeat", "3"]);
    let rounds = figures["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    let mut fractions: Vec<f64> = rounds.iter().map(|r| r["chat_fraction_of_relay"].as_f64().unwrap()).collect();
    fractions.sort_by(f64::total_cmp);
    assert_eq!(figures["chat_fraction_of_relay"]["median"].as_f64().unwrap(), fractions[1]);
    assert_eq!(figures["chat_fraction_of_relay"]["min"].as_f64().unwrap(), fractions[0]);
    for round in rounds {
        assert_eq!(round["chat"]["lost"], 0, "{round}");
        assert_eq!(round["relay"]["lost"], 0, "{round}");
    }
}

#[test]
fn fanout_quick_mode_across_two_nodes_loses_and_reorders_nothing() {
    let reachable = |address: &str| std::net::TcpStream::connect(address).is_ok();
    if !reachable("127.0.0.1:5432") || !reachable("127.0.0.1:6379") {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "PostgreSQL and Redis are required under CI=true");
        eprintln!("SKIPPED: two nodes need PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379");
        return;
    }
    let figures = bench(&[
        "fanout",
        "--rooms",
        "2",
        "--members",
        "4",
        "--senders",
        "4",
        "--window",
        "8",
        "--seconds",
        "1",
        "--target",
        "chat",
        "--database",
        "postgres",
        "--nodes",
        "2",
    ]);
    let run = &figures["chat"];
    assert_eq!(figures["nodes"], 2);
    assert!(run["acked"].as_u64().unwrap() > 0, "nothing was acknowledged: {run}");
    assert_eq!((run["lost"].as_u64(), run["duplicated"].as_u64(), run["reordered"].as_u64()), (Some(0), Some(0), Some(0)), "{run}");
    assert_eq!(run["deliveries"].as_u64().unwrap(), run["acked"].as_u64().unwrap() * 4, "every member got every message");
}

#[test]
fn connections_quick_mode_holds_every_connection() {
    let figures = bench(&["connections", "--connections", "50", "--hold-seconds", "0.5"]);
    assert_eq!(figures["held"], 50);
    assert_eq!(figures["sampled_alive"], figures["sampled"]);
    assert!(figures["rss_per_connection_bytes"].as_f64().unwrap() > 0.0);
    // Past one process's open-file limit the scenario spreads over nodes on PostgreSQL.
    let spread = bench(&["connections", "--connections", "60", "--hold-seconds", "0.5", "--nodes", "2", "--database", "postgres"]);
    assert_eq!((spread["held"].as_u64(), spread["nodes"].as_u64()), (Some(60), Some(2)), "{spread}");
    assert_eq!(spread["server_rss_per_node_bytes"].as_array().map(Vec::len), Some(2));
    assert_eq!(spread["sampled_alive"], spread["sampled"]);
}

#[test]
fn history_quick_mode_pages_a_seeded_room() {
    let figures = bench(&["history", "--messages", "2000", "--requests", "30"]);
    assert_eq!(figures["latency"]["count"], 30);
}

#[test]
fn rest_and_search_quick_modes_answer() {
    let rest = bench(&["rest", "--friends", "5", "--concurrency", "2", "--seconds", "0.5"]);
    assert!(rest["requests_per_second"].as_f64().unwrap() > 0.0);
    let search = bench(&["search", "--users", "500", "--requests", "20", "--concurrency", "2"]);
    assert_eq!(search["latency"]["count"], 20);
}

#[test]
fn store_quick_mode_stores_every_send_on_both_backends() {
    for database in ["sqlite", "postgres"] {
        let figures = bench(&["store", "--batches", "5", "--batch", "20", "--rooms", "3", "--members", "4", "--database", database]);
        assert_eq!(figures["messages"], 100, "{database}: {figures}");
        assert!(figures["cpu_us_per_message"].as_f64().unwrap() > 0.0);
    }
}
