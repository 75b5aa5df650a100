//! Counters for `/metrics` (Prometheus text format): HTTP requests and latency, WebSocket
//! connections, messages stored and delivered, writer batch sizes, AI tokens. Plain atomics,
//! bumped where things happen and read when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A histogram with fixed upper bounds (the last bucket is +Inf).
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let index = self.bounds.iter().position(|bound| value <= *bound).unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((value * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let bound = self.bounds.get(index).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {}", self.count.load(Relaxed));
    }
}

/// Every counter of this node.
pub struct Metrics {
    /// Responses by status class: 1xx … 5xx.
    pub http_responses: [AtomicU64; 5],
    pub http_duration: Histogram,
    pub messages_stored: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub writer_batch_size: Histogram,
    pub ai_tokens_charged: AtomicU64,
    pub slow_consumers_dropped: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http_responses: Default::default(),
            http_duration: Histogram::new(&[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            messages_stored: AtomicU64::new(0),
            messages_delivered: AtomicU64::new(0),
            writer_batch_size: Histogram::new(&[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 512.0]),
            ai_tokens_charged: AtomicU64::new(0),
            slow_consumers_dropped: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn observe_http(&self, status: u16, elapsed: Duration) {
        if let Some(class) = self.http_responses.get(usize::from(status / 100).saturating_sub(1)) {
            class.fetch_add(1, Relaxed);
        }
        self.http_duration.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the gauges read from the registry.
    pub fn render(&self, connections: usize, users_online: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP chat_http_responses_total HTTP responses by status class.\n# TYPE chat_http_responses_total counter");
        for (index, count) in self.http_responses.iter().enumerate() {
            let _ = writeln!(out, "chat_http_responses_total{{status=\"{}xx\"}} {}", index + 1, count.load(Relaxed));
        }
        self.http_duration.render(&mut out, "chat_http_request_duration_seconds", "Time to answer HTTP requests.");
        let gauges = [
            ("chat_websocket_connections", "Open WebSocket connections.", connections as u64),
            ("chat_users_online", "Users with at least one open connection.", users_online as u64),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let counters = [
            ("chat_messages_stored_total", "Messages durably stored.", &self.messages_stored),
            ("chat_messages_delivered_total", "Message frames handed to connections.", &self.messages_delivered),
            ("chat_slow_consumers_dropped_total", "Connections closed because they read too slowly.", &self.slow_consumers_dropped),
            ("chat_ai_tokens_charged_total", "AI tokens charged to users.", &self.ai_tokens_charged),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Relaxed));
        }
        self.writer_batch_size.render(&mut out, "chat_writer_batch_size", "Messages stored per transaction.");
        out
    }
}
