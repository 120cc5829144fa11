//! The pure up/down state machine of one endpoint: `fall` consecutive failures take it down,
//! `rise` consecutive successes bring it back, anything in between keeps the current state.

/// Check results folded into a stable healthy/unhealthy verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    fall: u32,
    rise: u32,
    healthy: Option<bool>,
    streak_ok: u32,
    streak_fail: u32,
}

impl Hysteresis {
    /// A fresh endpoint, not yet checked.
    pub fn new(fall: u32, rise: u32) -> Self {
        Hysteresis {
            fall: fall.max(1),
            rise: rise.max(1),
            healthy: None,
            streak_ok: 0,
            streak_fail: 0,
        }
    }

    /// The same endpoint under new thresholds: its verdict and streaks are kept, so a config
    /// change neither forgets a down endpoint nor restarts one's rise.
    pub fn with_thresholds(&self, fall: u32, rise: u32) -> Self {
        Hysteresis {
            fall: fall.max(1),
            rise: rise.max(1),
            ..self.clone()
        }
    }

    /// The verdict: `None` until the first check. Routing treats an unchecked endpoint as
    /// healthy so that a restarted DNS server or gateway answers at once.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// The endpoint answered that it takes no traffic now (a region draining or catching up):
    /// down at once — an explicit answer is not a lost packet to ride out. Coming back still
    /// takes `rise` successes. Returns the new verdict when it changed.
    pub fn observe_refusal(&mut self) -> Option<bool> {
        self.streak_fail = self.streak_fail.saturating_add(1).max(self.fall);
        self.streak_ok = 0;
        let changed = self.healthy != Some(false);
        self.healthy = Some(false);
        changed.then_some(false)
    }

    /// Feeds one check result; returns the new verdict when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.streak_ok = self.streak_ok.saturating_add(1);
            self.streak_fail = 0;
        } else {
            self.streak_fail = self.streak_fail.saturating_add(1);
            self.streak_ok = 0;
        }
        let next = match self.healthy {
            // The first result decides directly: there is no earlier state to protect.
            None => ok,
            Some(true) => self.streak_fail < self.fall,
            Some(false) => self.streak_ok >= self.rise,
        };
        let changed = self.healthy != Some(next);
        self.healthy = Some(next);
        changed.then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_table() {
        // (fall, rise, results, verdict after each)
        let cases: &[(u32, u32, &str, &str)] = &[
            (3, 2, "+", "U"),
            (3, 2, "-", "D"),
            (3, 2, "+--+--+", "UUUUUUU"), // flapping never reaches 3 failures
            (3, 2, "+---", "UUUD"),
            (3, 2, "+---+-++", "UUUDDDDU"), // a single success is not enough to rise
            (1, 1, "+-+-", "UDUD"),
        ];
        for (fall, rise, results, want) in cases {
            let mut h = Hysteresis::new(*fall, *rise);
            let got: String = results
                .chars()
                .map(|c| {
                    h.observe(c == '+');
                    if h.healthy() == Some(true) { 'U' } else { 'D' }
                })
                .collect();
            assert_eq!(&got, want, "fall={fall} rise={rise} results={results}");
        }
    }

    #[test]
    fn reports_only_changes() {
        let mut h = Hysteresis::new(2, 2);
        assert_eq!(h.healthy(), None);
        assert_eq!(h.observe(true), Some(true));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
    }

    #[test]
    fn a_refusal_takes_the_endpoint_down_at_once_and_rise_still_applies() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.observe(true), Some(true));
        assert_eq!(h.observe_refusal(), Some(false));
        assert_eq!(h.observe_refusal(), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
    }
}
