//! What a run measured: time per stage, throughput, and every failed file.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use melkit_core::StepTimings;

use crate::error::FileError;

/// A stage of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reading and decoding the file, mixing to mono.
    Decode,
    /// Resampling to `sample_rate`.
    Resample,
    /// Fixing the length, padding, and batching.
    Segment,
    /// The backend: STFT, power, mel and element-wise scaling.
    Compute,
    /// The per-file scaling (`ref = "max"`, `top_db`).
    Scale,
    /// Writing the output.
    Write,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Decode,
        Stage::Resample,
        Stage::Segment,
        Stage::Compute,
        Stage::Scale,
        Stage::Write,
    ];

    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Resample => "resample",
            Stage::Segment => "segment",
            Stage::Compute => "compute",
            Stage::Scale => "scale",
            Stage::Write => "write",
        }
    }
}

/// Time spent in each stage, in thread-seconds: every worker's time is counted (for compute,
/// as the backend reports its steps), so the stages add up to the CPU time of the run and can
/// exceed its wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes([Duration; 6]);

impl StageTimes {
    /// Adds `d` to `stage`.
    pub fn add(&mut self, stage: Stage, d: Duration) {
        self.0[stage as usize] += d;
    }

    /// The time of `stage`.
    pub fn get(&self, stage: Stage) -> Duration {
        self.0[stage as usize]
    }

    /// Adds every stage of `other`.
    pub fn merge(&mut self, other: &StageTimes) {
        for s in Stage::ALL {
            self.add(s, other.get(s));
        }
    }
}

/// What one file took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileStats {
    /// Seconds of audio decoded (before the length is fixed).
    pub audio_seconds: f64,
    /// Long segments in the output.
    pub long_segments: usize,
    /// Short segments in the output (`long × short`).
    pub segments: usize,
    /// Time per stage for this file (compute is shared by a batch and not counted here when the
    /// file was part of one).
    pub times: StageTimes,
    /// With `dtype = "f16"`: the largest rounding error of the conversion, relative to the
    /// file's largest value (infinite when a value overflowed the f16 range).
    pub f16_error: Option<f64>,
}

/// The outcome of one input file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileOutcome {
    /// The input.
    pub input: PathBuf,
    /// The output written, or why there is none.
    pub result: Result<(PathBuf, FileStats), FileError>,
}

/// The summary of a run.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// The backend that computed.
    pub backend: String,
    /// Worker threads.
    pub workers: usize,
    /// Files written.
    pub files_ok: usize,
    /// Files that failed, with their reasons, in input order.
    pub failures: Vec<FileError>,
    /// Inputs skipped because a resumed run found them done.
    pub skipped: usize,
    /// Outputs written from the cache (counted in `files_ok`).
    pub cached: usize,
    /// Long segments written.
    pub long_segments: u64,
    /// Short segments written (each one `[mel_bin, time_frame]` image).
    pub segments: u64,
    /// Seconds of audio decoded.
    pub audio_seconds: f64,
    /// Wall time of the whole run.
    pub total_time: Duration,
    /// Time per stage.
    pub stages: StageTimes,
    /// The backend's own steps.
    pub backend_steps: StepTimings,
    /// Wall time of the backend's calls, which run one at a time: the time the compute lane
    /// was busy (its thread-time is in `stages`).
    pub compute_wall: Duration,
    /// Whether the backend computes on a device of its own (a GPU) rather than on the workers.
    pub on_device: bool,
    /// Bytes the backend held on its device at the end of the run (a GPU backend).
    pub device_memory: Option<u64>,
    /// Whether outputs were written by a thread of their own (HDF5) rather than by the workers.
    pub dedicated_writer: bool,
    /// With `dtype = "f16"`: the largest relative rounding error of any file.
    pub f16_error: Option<f64>,
}

impl RunReport {
    /// Files seen (written or failed).
    pub fn files_total(&self) -> usize {
        self.files_ok + self.failures.len() + self.skipped
    }

    /// Whether every file was written.
    pub fn success(&self) -> bool {
        self.failures.is_empty()
    }

    /// Files written per second of wall time.
    pub fn files_per_second(&self) -> f64 {
        per_second(self.files_ok as f64, self.total_time)
    }

    /// Short segments written per second of wall time.
    pub fn segments_per_second(&self) -> f64 {
        per_second(self.segments as f64, self.total_time)
    }

    /// Records one file's outcome.
    pub fn add(&mut self, outcome: &FileOutcome) {
        match &outcome.result {
            Ok((_, stats)) => {
                self.files_ok += 1;
                self.long_segments += stats.long_segments as u64;
                self.segments += stats.segments as u64;
                self.audio_seconds += stats.audio_seconds;
                self.stages.merge(&stats.times);
                if let Some(e) = stats.f16_error {
                    self.f16_error = Some(self.f16_error.map_or(e, |m| m.max(e)));
                }
            }
            Err(e) => self.failures.push(e.clone()),
        }
    }

    /// The report as JSON (seconds as numbers), for tools and benchmarks.
    pub fn to_json(&self) -> serde_json::Value {
        let stages: serde_json::Map<String, serde_json::Value> = Stage::ALL
            .iter()
            .map(|s| (s.name().to_string(), self.stages.get(*s).as_secs_f64().into()))
            .collect();
        let steps: serde_json::Map<String, serde_json::Value> = self
            .backend_steps
            .steps()
            .iter()
            .map(|(n, d)| (n.to_string(), d.as_secs_f64().into()))
            .collect();
        serde_json::json!({
            "backend": self.backend,
            "workers": self.workers,
            "files_ok": self.files_ok,
            "files_failed": self.failures.len(),
            "files_skipped": self.skipped,
            "files_from_cache": self.cached,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "path": f.path.display().to_string(), "stage": f.stage, "reason": f.reason,
            })).collect::<Vec<_>>(),
            "long_segments": self.long_segments,
            "segments": self.segments,
            "audio_seconds": self.audio_seconds,
            "total_time": self.total_time.as_secs_f64(),
            "throughput": { "files_per_s": self.files_per_second(), "segments_per_s": self.segments_per_second() },
            "stage_seconds": stages,
            "backend_steps": steps,
            "compute_wall": self.compute_wall.as_secs_f64(),
            "on_device": self.on_device,
            "device_memory_bytes": self.device_memory,
            "dedicated_writer": self.dedicated_writer,
            "f16_max_rel_error": self.f16_error,
        })
    }
}

fn per_second(n: f64, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { n / d.as_secs_f64() }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} files in {:.3} s on backend {} with {} workers: {} written, {} failed",
            self.files_total(),
            self.total_time.as_secs_f64(),
            self.backend,
            self.workers,
            self.files_ok,
            self.failures.len()
        )?;
        if self.skipped > 0 {
            writeln!(f, "resumed: {} inputs already done were skipped", self.skipped)?;
        }
        if self.cached > 0 {
            writeln!(f, "cache: {} of the outputs written from the cache", self.cached)?;
        }
        writeln!(
            f,
            "throughput: {:.1} files/s, {:.0} segments/s ({:.1} s of audio)",
            self.files_per_second(),
            self.segments_per_second(),
            self.audio_seconds
        )?;
        write!(f, "stage seconds:")?;
        for s in Stage::ALL {
            write!(f, " {} {:.3}", s.name(), self.stages.get(s).as_secs_f64())?;
        }
        if let Some(e) = self.f16_error {
            write!(f, "\nf16 output: largest rounding error {e:.2e} of a file's maximum")?;
            if e.is_infinite() {
                write!(f, " (values beyond ±65504 overflowed to infinity: use scale = \"db\")")?;
            }
        }
        for e in &self.failures {
            write!(f, "\nfailed: {e}")?;
        }
        Ok(())
    }
}
