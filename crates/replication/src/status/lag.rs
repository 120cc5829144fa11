//! Per-entry replication lag histograms.

/// Per-entry replication lag: a histogram from 1 ms to 1 hour at 3 significant digits.
pub struct LagHistogram(hdrhistogram::Histogram<u64>);

impl Default for LagHistogram {
    fn default() -> Self {
        Self(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3)
                .expect("constant histogram bounds are valid"),
        )
    }
}

impl LagHistogram {
    /// Records one entry's lag (clamped into the histogram's range).
    pub fn record(&mut self, lag_ms: u64) {
        self.0.saturating_record(lag_ms.max(1));
    }

    /// Forgets everything recorded.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// `{count, p50, p90, p99, p999, max}` in ms.
    pub fn summary(&self) -> serde_json::Value {
        let h = &self.0;
        serde_json::json!({
            "count": h.len(),
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    }
}
