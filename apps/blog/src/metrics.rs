//! Request counters and a latency histogram, exported as Prometheus text.
//!
//! Hand-written: a fixed-bucket histogram of atomics is all the site needs,
//! and it keeps the request path to a few relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds.
pub const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000,
];

/// Counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Metrics {
    /// Records one response.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = (usize::from(status / 100)).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Responses per status class (1xx..5xx).
    pub fn by_class(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed))
    }

    /// Total responses.
    pub fn total(&self) -> u64 {
        self.by_class().iter().sum()
    }

    /// The latency below which a fraction `q` of requests fell (bucket upper bound).
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                let us = BUCKETS_US
                    .get(i)
                    .copied()
                    .unwrap_or(2 * BUCKETS_US[BUCKETS_US.len() - 1]);
                return Some(Duration::from_micros(us));
            }
        }
        None
    }

    /// Prometheus text for this server, labelled `server`.
    pub fn prometheus(&self, server: &str, out: &mut String) {
        for (i, n) in self.by_class().iter().enumerate() {
            out.push_str(&format!(
                "blog_http_responses_total{{server=\"{server}\",class=\"{}xx\"}} {n}\n",
                i + 1
            ));
        }
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            out.push_str(&format!(
                "blog_http_request_duration_seconds_bucket{{server=\"{server}\",le=\"{}\"}} {cumulative}\n",
                *b as f64 / 1e6
            ));
        }
        cumulative += self.buckets[BUCKETS_US.len()].load(Ordering::Relaxed);
        out.push_str(&format!("blog_http_request_duration_seconds_bucket{{server=\"{server}\",le=\"+Inf\"}} {cumulative}\n"));
        out.push_str(&format!(
            "blog_http_request_duration_seconds_sum{{server=\"{server}\"}} {}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!(
            "blog_http_request_duration_seconds_count{{server=\"{server}\"}} {cumulative}\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_text() {
        let m = Metrics::default();
        for _ in 0..90 {
            m.record(200, Duration::from_micros(80));
        }
        for _ in 0..10 {
            m.record(404, Duration::from_millis(20));
        }
        assert_eq!(m.total(), 100);
        assert_eq!(m.by_class()[1], 90);
        assert_eq!(m.by_class()[3], 10);
        assert_eq!(m.percentile(0.5), Some(Duration::from_micros(100)));
        assert_eq!(m.percentile(0.99), Some(Duration::from_millis(25)));
        let mut s = String::new();
        m.prometheus("blog", &mut s);
        assert!(s.contains("blog_http_responses_total{server=\"blog\",class=\"2xx\"} 90"));
        assert!(s.contains("le=\"+Inf\"} 100"));
    }
}
