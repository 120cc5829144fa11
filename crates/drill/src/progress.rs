//! Progress on stderr: an overall bar (scenarios done), a spinner for the current phase, and
//! one plain line per phase — the bars only on a terminal, the lines always (CI logs).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display of one drill run.
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    phase: ProgressBar,
    bars: bool,
    start: Instant,
}

impl Progress {
    /// A display for `total` scenarios; bars only when stderr is a terminal.
    pub fn new(total: u64) -> Progress {
        let bars = std::io::stderr().is_terminal();
        let target = if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template("drills {bar:30.cyan/blue} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let phase = multi.add(ProgressBar::new_spinner());
        phase.set_style(
            ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if bars {
            phase.enable_steady_tick(Duration::from_millis(120));
        }
        Progress {
            multi,
            overall,
            phase,
            bars,
            start: Instant::now(),
        }
    }

    /// Prints one line (above the bars on a terminal).
    pub fn line(&self, msg: &str) {
        let stamped = format!("[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
        if self.bars {
            let _ = self.multi.println(stamped);
        } else {
            eprintln!("{stamped}");
        }
    }

    /// A scenario starts.
    pub fn scenario(&self, name: &str) {
        self.overall.set_message(name.to_owned());
    }

    /// A phase of the current scenario starts.
    pub fn phase(&self, scenario: &str, phase: &str) {
        self.phase.reset_elapsed();
        self.phase.set_message(format!("{scenario}: {phase}"));
        self.line(&format!("{scenario}: {phase}"));
    }

    /// The current scenario is done.
    pub fn scenario_done(&self) {
        self.overall.inc(1);
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.phase.finish_and_clear();
        self.overall.finish_and_clear();
    }
}
