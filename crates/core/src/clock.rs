//! The clock seam: every wall-clock reading in the data plane goes through [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of physical time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Current physical time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock, with an adjustable skew used by fault injection
/// (`meridian fault skew`). The skew is applied to every reading.
#[derive(Debug, Default)]
pub struct SystemClock {
    skew_ms: AtomicI64,
}

impl SystemClock {
    /// A wall clock with no skew.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets the skew (positive = this clock runs ahead).
    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::Relaxed);
    }

    /// The current skew in milliseconds.
    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        real.saturating_add_signed(self.skew_ms.load(Ordering::Relaxed))
    }
}

/// A clock moved by hand, for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A manual clock starting at `ms`.
    pub fn new(ms: u64) -> Arc<Self> {
        Arc::new(Self {
            ms: AtomicU64::new(ms),
        })
    }

    /// Sets the current time.
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::Relaxed);
    }

    /// Moves the clock forward (or keeps it) by `delta` milliseconds.
    pub fn advance(&self, delta: u64) {
        self.ms.fetch_add(delta, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::Relaxed)
    }
}
