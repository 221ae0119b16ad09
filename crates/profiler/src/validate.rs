//! `melkit validate`: a backend against the reference backend on the same inputs, file by file,
//! by SPEC §2's measures and bounds; with f16, what the halved output costs in accuracy.

use std::fmt;
use std::path::PathBuf;

use melkit::compare::{ErrorReport, Precision, Tolerance, ToleranceClass, compare};
use melkit::discover::Discovery;
use melkit::{Config, Pipeline};
use serde_json::json;

/// What the f16 output of one file saves and costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F16Cost {
    /// Bytes of the tensor in f32.
    pub f32_bytes: u64,
    /// Bytes in f16.
    pub f16_bytes: u64,
    /// The f16 values against the reference.
    pub error: ErrorReport,
}

/// One file's check.
#[derive(Clone, Debug, PartialEq)]
pub struct FileCheck {
    /// The input.
    pub input: PathBuf,
    /// The errors and the bound they were held to, or why the file could not be checked.
    pub result: Result<Checked, String>,
}

/// The numbers of a checked file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked {
    /// Exact when the file needed no resampling, else resampled.
    pub class: ToleranceClass,
    /// The backend's output against the reference's.
    pub error: ErrorReport,
    /// The bound on the class's measure.
    pub bound: f64,
    /// Whether the measure is within the bound.
    pub passed: bool,
    /// With `--precision f16`.
    pub f16: Option<F16Cost>,
}

/// The outcome of a validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    /// The backend checked.
    pub backend: String,
    /// Every file, in input order.
    pub files: Vec<FileCheck>,
}

impl Validation {
    /// Whether every file was checked and passed.
    pub fn passed(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| matches!(&f.result, Ok(c) if c.passed))
    }

    /// The validation as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|f| match &f.result {
                Ok(c) => json!({
                    "input": f.input.display().to_string(),
                    "class": match c.class { ToleranceClass::Exact => "exact", ToleranceClass::Resampled => "resampled" },
                    "max_rel_error": c.error.max_rel,
                    "rel_l2_error": c.error.rel_l2,
                    "bound": c.bound,
                    "passed": c.passed,
                    "f16": c.f16.map(|h| json!({
                        "f32_bytes": h.f32_bytes, "f16_bytes": h.f16_bytes,
                        "max_rel_error": h.error.max_rel, "rel_l2_error": h.error.rel_l2,
                    })),
                }),
                Err(e) => json!({ "input": f.input.display().to_string(), "error": e, "passed": false }),
            })
            .collect();
        json!({ "backend": self.backend, "passed": self.passed(), "files": files })
    }
}

/// Checks `fast` against `reference` (pipelines of one configuration) on every file found,
/// with the f16 cost when `f16` is set. The precision is the GPU one (1e-4) for wgpu and CUDA.
pub fn validate(
    fast: &mut Pipeline,
    reference: &mut Pipeline,
    found: &Discovery,
    f16: bool,
) -> Validation {
    let precision = Precision::of_backend(fast.backend_name());
    let rate = reference.config().sample_rate;
    let mut files: Vec<FileCheck> = found
        .failures
        .iter()
        .map(|e| FileCheck { input: e.path.clone(), result: Err(e.reason.clone()) })
        .collect();
    for input in &found.files {
        let path = &input.path;
        let result = (|| {
            let class = match melkit_io::AudioStream::open(path) {
                Ok(s) if s.sample_rate() == rate => ToleranceClass::Exact,
                Ok(_) => ToleranceClass::Resampled,
                Err(e) => return Err(e.to_string()),
            };
            let (got, _) = fast.process_file(path).map_err(|e| e.to_string())?;
            let (want, _) = reference.process_file(path).map_err(|e| e.to_string())?;
            let error = compare(got.data(), want.data());
            let tolerance = Tolerance { class, precision };
            let f16 = f16.then(|| {
                let halved: Vec<f32> =
                    got.data().iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                let n = got.data().len() as u64;
                F16Cost { f32_bytes: 4 * n, f16_bytes: 2 * n, error: compare(&halved, want.data()) }
            });
            Ok(Checked {
                class,
                error,
                bound: tolerance.bound(),
                passed: tolerance.passes(&error),
                f16,
            })
        })();
        files.push(FileCheck { input: path.clone(), result });
    }
    Validation { backend: fast.backend_name().into(), files }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "backend {} against the reference backend (SPEC §2):", self.backend)?;
        writeln!(f, "{:<9} {:>12} {:>12} {:>8}  file", "class", "max rel", "rel L2", "result")?;
        let (mut saved, mut total, mut worst) = (0u64, 0u64, None::<ErrorReport>);
        for file in &self.files {
            match &file.result {
                Ok(c) => {
                    let (class, measure) = match c.class {
                        ToleranceClass::Exact => ("exact", c.error.max_rel),
                        ToleranceClass::Resampled => ("resampled", c.error.rel_l2),
                    };
                    let verdict = if c.passed { "pass" } else { "FAIL" };
                    writeln!(
                        f,
                        "{class:<9} {:>12.3e} {:>12.3e} {verdict:>8}  {}{}",
                        c.error.max_rel,
                        c.error.rel_l2,
                        file.input.display(),
                        if c.passed {
                            String::new()
                        } else {
                            format!(" ({measure:.3e} > {:.0e})", c.bound)
                        }
                    )?;
                    if let Some(h) = c.f16 {
                        saved += h.f32_bytes - h.f16_bytes;
                        total += h.f32_bytes;
                        worst = Some(match worst {
                            Some(w) => ErrorReport {
                                max_rel: w.max_rel.max(h.error.max_rel),
                                rel_l2: w.rel_l2.max(h.error.rel_l2),
                            },
                            None => h.error,
                        });
                    }
                }
                Err(e) => writeln!(
                    f,
                    "{:<9} {:>12} {:>12} {:>8}  {}: {e}",
                    "-",
                    "-",
                    "-",
                    "ERROR",
                    file.input.display()
                )?,
            }
        }
        if let Some(w) = worst {
            writeln!(
                f,
                "f16 output: {saved} of {total} bytes saved ({:.0} %), at max rel {:.3e}, rel L2 {:.3e} against the reference",
                100.0 * saved as f64 / total.max(1) as f64,
                w.max_rel,
                w.rel_l2
            )?;
        }
        let failed = self.files.iter().filter(|c| !matches!(&c.result, Ok(c) if c.passed)).count();
        if self.files.is_empty() {
            write!(f, "no audio files found in the inputs")
        } else if failed == 0 {
            write!(f, "passed: {} files within tolerance", self.files.len())
        } else {
            write!(f, "FAILED: {failed} of {} files", self.files.len())
        }
    }
}

/// A reference pipeline for `config` (one worker is enough: it is the slow side either way).
///
/// # Errors
/// An invalid configuration.
pub fn reference_pipeline(config: &Config) -> Result<Pipeline, melkit::Error> {
    Pipeline::new(config.clone(), melkit::BackendKind::Reference)
}
