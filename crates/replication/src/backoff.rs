//! Reconnect delays: capped exponential backoff with jitter. Pure; the randomness comes in
//! through the [`Jitter`] seam so a simulation can replay it from a seed.

/// A source of uniform numbers in `[0, 1)`.
pub trait Jitter: Send {
    /// The next number.
    fn unit(&mut self) -> f64;
}

/// The thread-local OS-seeded generator.
#[derive(Debug, Default)]
pub struct OsJitter;

impl Jitter for OsJitter {
    fn unit(&mut self) -> f64 {
        rand::random::<f64>()
    }
}

/// `delay(n) = min(max, initial · 2ⁿ) · (½ + ½·jitter)`: doubling, capped, and spread so that
/// regions restarted together do not reconnect in lockstep.
#[derive(Debug)]
pub struct Backoff<J> {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
    jitter: J,
}

impl<J: Jitter> Backoff<J> {
    /// A backoff that starts at `initial_ms` and never exceeds `max_ms`.
    pub fn new(initial_ms: u64, max_ms: u64, jitter: J) -> Self {
        Self {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            failures: 0,
            jitter,
        }
    }

    /// The delay before the next attempt (and counts a failure).
    pub fn next_delay_ms(&mut self) -> u64 {
        let exp = self
            .initial_ms
            .saturating_mul(1u64 << self.failures.min(32))
            .min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let j = self.jitter.unit().clamp(0.0, 1.0);
        ((exp as f64) * (0.5 + 0.5 * j)) as u64
    }

    /// A connection succeeded: start again from the initial delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl Jitter for Fixed {
        fn unit(&mut self) -> f64 {
            self.0
        }
    }

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::new(100, 1_000, Fixed(1.0));
        let d: Vec<u64> = (0..6).map(|_| b.next_delay_ms()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1_000, 1_000]);
        b.reset();
        assert_eq!(b.next_delay_ms(), 100);
        let mut b = Backoff::new(100, 1_000, Fixed(0.0));
        assert_eq!(b.next_delay_ms(), 50, "jitter spreads down to half");
    }
}
