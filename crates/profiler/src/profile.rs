//! `melkit profile`: runs the pipeline (repeatedly, for a baseline), analyses its stages, probes
//! the machine's peaks and reports it all as a table or JSON.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use melkit::discover::Discovery;
use melkit::{OutputOptions, Pipeline, RunReport};
use serde_json::json;

use crate::analysis::{Analysis, analyse};
use crate::baseline::Baseline;
use crate::probe::{self, Peaks, Roofline};

/// How to profile.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// Runs of the inputs (the reported run is the one of median wall time).
    pub repeats: usize,
    /// Whether to probe the machine's FFT and memory peaks for the roofline.
    pub probe: bool,
    /// Where outputs go (a temporary folder, removed after, when none).
    pub out_dir: Option<PathBuf>,
    /// The output options.
    pub output: OutputOptions,
}

/// A profiled run.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The report of the run of median wall time.
    pub report: RunReport,
    /// Its analysis.
    pub analysis: Analysis,
    /// Every run's analysis, in order.
    pub runs: Vec<Analysis>,
    /// The machine's measured peaks.
    pub peaks: Option<Peaks>,
    /// The compute stage against them.
    pub roofline: Option<Roofline>,
    /// Peak resident memory of the process.
    pub peak_rss: Option<u64>,
}

/// Profiles `pipeline` on the inputs found.
///
/// # Errors
/// What stops a run before it starts (see [`Pipeline::process_discovered`]), or no temporary
/// folder.
pub fn profile(
    pipeline: &mut Pipeline,
    found: &Discovery,
    options: &ProfileOptions,
) -> Result<Profile, melkit::Error> {
    let mut runs = Vec::new();
    for _ in 0..options.repeats.max(1) {
        let temp;
        let out = match &options.out_dir {
            Some(dir) => dir.clone(),
            None => {
                temp = tempfile::tempdir().map_err(|e| melkit::Error::OutputDir {
                    path: std::env::temp_dir(),
                    reason: e.to_string(),
                })?;
                temp.path().to_path_buf()
            }
        };
        let report = pipeline.process_discovered(found.clone(), &out, &options.output, &())?;
        runs.push(report);
    }
    runs.sort_by_key(|r| r.total_time);
    let analyses: Vec<Analysis> = runs.iter().map(analyse).collect();
    let middle = runs.len() / 2;
    let report = runs.swap_remove(middle);
    // Before the probes, whose buffers are not the pipeline's.
    let peak_rss = probe::peak_rss();
    let peaks =
        options.probe.then(|| probe::measure(pipeline.plan().n_fft, Duration::from_millis(150)));
    let roofline = peaks.and_then(|p| probe::roofline(&report, pipeline.plan(), &p));
    Ok(Profile {
        analysis: analyses[middle].clone(),
        report,
        runs: analyses,
        peaks,
        roofline,
        peak_rss,
    })
}

impl Profile {
    /// The baseline these runs make.
    pub fn baseline(&self) -> Baseline {
        Baseline::from_runs(&self.runs, &self.report.backend, self.report.segments)
    }

    /// The device's busy fraction: the backend's `kernel` step over the wall time (GPU
    /// backends report it; the host measures it while it waits for the device).
    pub fn device_utilisation(&self) -> Option<f64> {
        let (_, kernel) = self.report.backend_steps.steps().iter().find(|(n, _)| *n == "kernel")?;
        (self.analysis.wall_seconds > 0.0)
            .then(|| (kernel.as_secs_f64() / self.analysis.wall_seconds).min(1.0))
    }

    /// Everything as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "run": self.report.to_json(),
            "analysis": self.analysis,
            "runs_wall_seconds": self.runs.iter().map(|r| r.wall_seconds).collect::<Vec<_>>(),
            "peaks": self.peaks,
            "roofline": self.roofline,
            "peak_rss_bytes": self.peak_rss,
            "device_utilisation": self.device_utilisation(),
        })
    }
}

fn si(v: f64, unit: &str) -> String {
    let (scaled, prefix) = match v {
        v if v >= 1e12 => (v / 1e12, "T"),
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    format!("{scaled:.2} {prefix}{unit}")
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, r) = (&self.analysis, &self.report);
        writeln!(
            f,
            "{} files, {} segments in {:.3} s on backend {} with {} workers ({:.0} segments/s){}",
            r.files_total(),
            r.segments,
            a.wall_seconds,
            r.backend,
            a.workers,
            r.segments_per_second(),
            if self.runs.len() > 1 {
                format!(", median of {} runs", self.runs.len())
            } else {
                String::new()
            }
        )?;
        // The first column fits the longest step name (backends name their own steps).
        let width = a.stages.iter().map(|s| s.name.len() + 2).max().unwrap_or(0).max(24);
        writeln!(
            f,
            "{:<width$} {:>10} {:>7} {:>8} {:>10} {:>13} {:>16}",
            "stage", "thread-s", "share", "lane", "lane-s", "segments/s", "run without it"
        )?;
        for row in &a.stages {
            let what_if = match row.what_if_seconds {
                Some(t) if t > 0.0 => format!("{t:.3} s ×{:.2}", a.wall_seconds / t),
                Some(t) => format!("{t:.3} s"),
                None => String::new(),
            };
            let lane = match row.lane {
                crate::analysis::Lane::Pool => "pool",
                crate::analysis::Lane::Backend => "backend",
                crate::analysis::Lane::Writer => "writer",
            };
            let name = if row.what_if_seconds.is_none() {
                format!("  {}", row.name)
            } else {
                row.name.clone()
            };
            let rate = if row.segments_per_second.is_finite() {
                format!("{:.0}", row.segments_per_second)
            } else {
                "-".into()
            };
            writeln!(
                f,
                "{name:<width$} {:>10.3} {:>6.1}% {lane:>8} {:>10.3} {rate:>13} {what_if:>16}",
                row.thread_seconds,
                100.0 * row.share,
                row.lane_seconds,
            )?;
        }
        match &a.bottleneck {
            Some(b) => {
                let t = a.stage(b).and_then(|s| s.what_if_seconds).unwrap_or(a.wall_seconds);
                writeln!(
                    f,
                    "bottleneck: {b} (the run would take {t:.3} s without it, {:.2}× faster)",
                    a.wall_seconds / t.max(1e-9)
                )?;
            }
            None => writeln!(f, "bottleneck: none (no stage's removal would gain 5 %)")?,
        }
        writeln!(f, "lanes explain {:.0} % of the wall time", 100.0 * a.explained)?;
        if let (Some(p), Some(roof)) = (&self.peaks, &self.roofline) {
            writeln!(
                f,
                "roofline: compute achieved {} and {} ({:.2} FLOP/byte); this machine's peaks: FFT {}, memory {} ({} threads); {}-bound, {:.1} % of attainable",
                si(roof.flops, "FLOP/s"),
                si(roof.bytes, "B/s"),
                roof.intensity,
                si(p.fft_flops, "FLOP/s"),
                si(p.memory_bytes, "B/s"),
                p.threads,
                if roof.memory_bound { "memory" } else { "compute" },
                100.0 * roof.efficiency
            )?;
            if r.on_device {
                writeln!(
                    f,
                    "  (the peaks are this machine's CPU; the backend computes on a device)"
                )?;
            }
        }
        if let Some(bytes) = r.device_memory {
            write!(f, "device: {} of buffers", si(bytes as f64, "B"))?;
            match self.device_utilisation() {
                Some(u) => writeln!(
                    f,
                    ", busy {:.0} % of the run (kernel time, as the host waited for it, over the wall time)",
                    100.0 * u
                )?,
                None => writeln!(f)?,
            }
        }
        if let Some(rss) = self.peak_rss {
            write!(f, "peak RSS: {}", si(rss as f64, "B"))?;
        }
        Ok(())
    }
}
