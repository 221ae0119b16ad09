//! The progress bar (on a terminal) and failure messages as files finish.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use melkit::{FileOutcome, Progress};

/// Shows files done, files/s and time left on a terminal; logs each failure as it happens.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar on stderr when it is a terminal and `quiet` is off; otherwise nothing is drawn.
    pub fn new(quiet: bool) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files  {rate}  ETA {eta}",
                )
                .map(|style| {
                    style.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&rate(state.per_sec()));
                    })
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Bar { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A rate as a person reads it: whole files per second, or one decimal below 10.
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "- files/s".to_string()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1} files/s")
    } else {
        format!("{per_sec:.0} files/s")
    }
}

impl Progress for Bar {
    fn start(&self, files: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(files as u64);
        }
    }

    fn file_done(&self, outcome: &FileOutcome) {
        if let Err(e) = &outcome.result {
            match &self.bar {
                Some(bar) => bar.suspend(|| tracing::warn!("{e}")),
                None => tracing::warn!("{e}"),
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_are_rounded() {
        assert_eq!(rate(795.6565), "796 files/s");
        assert_eq!(rate(2.96), "3.0 files/s");
        assert_eq!(rate(f64::NAN), "- files/s");
        assert_eq!(rate(0.0), "- files/s");
    }
}
