//! Latency summaries: percentiles over recorded samples.

use std::time::Duration;

use serde_json::{Value, json};

/// Sorted latency samples.
#[derive(Debug)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    /// The `p`-th percentile (0-100), nearest-rank, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil().max(1.0) as usize;
        self.0[rank.min(self.0.len()) - 1].as_secs_f64() * 1000.0
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count(),
            "p50_ms": self.percentile_ms(50.0),
            "p99_ms": self.percentile_ms(99.0),
            "p999_ms": self.percentile_ms(99.9),
            "max_ms": self.percentile_ms(100.0),
        })
    }

    /// `p50 … p99 … max …` for a table cell.
    pub fn brief(&self) -> String {
        format!("p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms", self.percentile_ms(50.0), self.percentile_ms(99.0), self.percentile_ms(100.0))
    }
}

/// The median of `sorted` (the mean of the middle two for an even count); 0 when empty.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.percentile_ms(50.0), 50.0);
        assert_eq!(l.percentile_ms(99.0), 99.0);
        assert_eq!(l.percentile_ms(100.0), 100.0);
        assert_eq!(Latencies::new(vec![]).percentile_ms(50.0), 0.0);
    }
}
