//! Performance baselines: the stage times of repeated runs saved as JSON, and the noise-aware
//! comparison that flags a stage (or the whole run) slower than its baseline.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;

/// The measurements of repeated runs of one corpus on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The melkit that measured it.
    pub melkit_version: String,
    /// The backend.
    pub backend: String,
    /// Short segments per run: the corpus's fingerprint.
    pub segments: u64,
    /// Wall seconds of each run.
    pub wall: Vec<f64>,
    /// Each stage's lane seconds in each run.
    pub stages: BTreeMap<String, Vec<f64>>,
}

/// A stage slower than its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// The stage (`total` for the whole run's wall time).
    pub stage: String,
    /// The baseline's median, in seconds.
    pub baseline: f64,
    /// This run's median.
    pub current: f64,
    /// `current / baseline - 1`.
    pub slower_by: f64,
}

/// Why two measurements cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file cannot be read or parsed.
    #[error("cannot read the baseline {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// It was measured on other inputs.
    #[error(
        "the baseline was measured on another corpus ({baseline} segments, this run {current}): \
         compare runs of the same inputs"
    )]
    Corpus {
        /// Its segments.
        baseline: u64,
        /// This run's.
        current: u64,
    },
}

impl Baseline {
    /// The baseline of repeated runs (one analysis each) of `segments` segments.
    pub fn from_runs(runs: &[Analysis], backend: &str, segments: u64) -> Self {
        let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run in runs {
            for row in run.stages.iter().filter(|r| r.what_if_seconds.is_some()) {
                stages.entry(row.name.clone()).or_default().push(row.lane_seconds);
            }
        }
        Baseline {
            melkit_version: melkit::VERSION.into(),
            backend: backend.into(),
            segments,
            wall: runs.iter().map(|r| r.wall_seconds).collect(),
            stages,
        }
    }

    /// Reads a baseline saved by [`save`](Self::save).
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let read =
            |reason: String| BaselineError::Read { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| read(e.to_string()))
    }

    /// Writes the baseline as JSON, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        melkit_io::atomic::write_file(path, text.as_bytes()).map_err(std::io::Error::other)
    }

    /// The stages (and `total`) of `current` slower than this baseline: a median more than
    /// `threshold` above the baseline's, by more than twice the runs' spread (see [`spread`]) and
    /// more than 5 % of the baseline's wall time (at least 2 ms), so that noise and
    /// stages too small to matter are not flagged.
    ///
    /// # Errors
    /// The two were measured on different corpora.
    pub fn compare(
        &self,
        current: &Baseline,
        threshold: f64,
    ) -> Result<Vec<Regression>, BaselineError> {
        if self.segments != current.segments {
            return Err(BaselineError::Corpus {
                baseline: self.segments,
                current: current.segments,
            });
        }
        let floor = (0.05 * median(&self.wall)).max(0.002);
        let mut series = vec![("total".to_string(), &self.wall, &current.wall)];
        for (name, base) in &self.stages {
            if let Some(now) = current.stages.get(name) {
                series.push((name.clone(), base, now));
            }
        }
        Ok(series
            .into_iter()
            .filter_map(|(stage, base, now)| {
                let (b, c) = (median(base), median(now));
                // Runs in two processes scatter more than runs in one: twice both spreads.
                let margin = (threshold * b).max(2.0 * (spread(base) + spread(now))) + floor;
                (c > b + margin).then(|| Regression {
                    stage,
                    baseline: b,
                    current: c,
                    slower_by: if b > 0.0 { c / b - 1.0 } else { f64::INFINITY },
                })
            })
            .collect())
    }
}

/// The median of some samples (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// How far the runs scatter: max − min, without the highest and lowest once there are four or
/// more (one run disturbed by the machine should not hide a regression).
fn spread(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n >= 4 => v[n - 2] - v[1],
        n => v[n - 1] - v[0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(wall: &[f64], compute: &[f64]) -> Baseline {
        Baseline {
            melkit_version: "0".into(),
            backend: "cpu".into(),
            segments: 10,
            wall: wall.to_vec(),
            stages: [("compute".to_string(), compute.to_vec())].into(),
        }
    }

    #[test]
    fn a_slower_stage_is_flagged_and_noise_is_not() {
        let base = baseline(&[1.0, 1.02, 0.98], &[0.5, 0.51, 0.49]);
        let noisy = baseline(&[1.05, 0.97, 1.0], &[0.52, 0.5, 0.48]);
        assert_eq!(base.compare(&noisy, 0.1).unwrap(), vec![]);
        let slow = baseline(&[1.5, 1.52, 1.49], &[1.0, 1.01, 0.99]);
        let found = base.compare(&slow, 0.1).unwrap();
        let names: Vec<_> = found.iter().map(|r| r.stage.as_str()).collect();
        assert_eq!(names, ["total", "compute"]);
        assert!((found[1].slower_by - 1.0).abs() < 1e-9);
    }

    #[test]
    fn another_corpus_is_refused() {
        let base = baseline(&[1.0], &[0.5]);
        let other = Baseline { segments: 11, ..base.clone() };
        let e = base.compare(&other, 0.1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the baseline was measured on another corpus (10 segments, this run 11): compare \
             runs of the same inputs"
        );
    }

    #[test]
    fn one_disturbed_run_does_not_widen_the_spread() {
        assert_eq!(spread(&[1.0, 1.1, 1.0, 5.0, 0.9]), 1.1 - 1.0);
        assert_eq!(spread(&[1.0, 3.0]), 2.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
