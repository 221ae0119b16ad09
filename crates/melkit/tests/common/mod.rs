//! Helpers shared by the integration tests: the golden cases of `../shared/golden`.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;

use melkit::Config;
use melkit::compare::{ErrorReport, Precision, Tolerance, ToleranceClass, compare};
use ndarray::Array4;
use ndarray_npy::ReadNpyExt;

/// The folder of golden cases: `$MELKIT_GOLDEN_DIR`, or `shared/golden` beside the checkout.
pub fn golden_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MELKIT_GOLDEN_DIR") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = here.join("../../../shared/golden");
    assert!(dir.is_dir(), "golden cases not found at {} (set MELKIT_GOLDEN_DIR)", dir.display());
    dir
}

/// One golden case.
pub struct Case {
    pub name: String,
    pub input: PathBuf,
    pub config: Config,
    pub class: ToleranceClass,
    pub expected: Vec<f32>,
    pub shape: [usize; 4],
}

impl Case {
    /// The tolerance for a backend of `precision`.
    pub fn tolerance(&self, precision: Precision) -> Tolerance {
        Tolerance { class: self.class, precision }
    }

    /// Compares `got` with the expected tensor and panics with the numbers when out of bounds.
    pub fn check(
        &self,
        what: &str,
        shape: [usize; 4],
        got: &[f32],
        precision: Precision,
    ) -> ErrorReport {
        assert_eq!(shape, self.shape, "{what}: {}: shape", self.name);
        let report = compare(got, &self.expected);
        let tolerance = self.tolerance(precision);
        assert!(
            tolerance.passes(&report),
            "{what}: {}: {report} exceeds {:e}",
            self.name,
            tolerance.bound()
        );
        report
    }
}

/// Every golden case (each `NAME.json` with its `.npy`), sorted by name.
pub fn cases() -> Vec<Case> {
    let found = cases_in(&golden_dir());
    assert!(found.len() >= 6, "expected at least 6 golden cases, found {}", found.len());
    found
}

/// The format cases made by librosa in `tests/data/formats` (`make_formats.py`).
pub fn format_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats")
}

/// Every case in `dir` (each `NAME.json` with its `.npy`), sorted by name.
pub fn cases_in(dir: &std::path::Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.retain(|n| dir.join(format!("{n}.npy")).is_file());
    names.sort();
    names.into_iter().map(|n| case_in(dir, &n)).collect()
}

/// The golden case `name`.
pub fn case(name: &str) -> Case {
    case_in(&golden_dir(), name)
}

/// The case `name` in `dir`.
pub fn case_in(dir: &std::path::Path, name: &str) -> Case {
    let json: serde_json::Value =
        serde_json::from_reader(File::open(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let mut config = Config::default();
    config.apply_json(&json["config"]).unwrap();
    config.validate().unwrap();
    let expected =
        Array4::<f32>::read_npy(File::open(dir.join(format!("{name}.npy"))).unwrap()).unwrap();
    let shape: Vec<usize> =
        json["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(expected.shape(), &shape[..]);
    Case {
        name: name.to_string(),
        input: dir.join(json["input"].as_str().unwrap()),
        config,
        class: ToleranceClass::parse(json["tolerance"].as_str().unwrap()).unwrap(),
        shape: [shape[0], shape[1], shape[2], shape[3]],
        expected: expected.into_raw_vec_and_offset().0,
    }
}

/// Runs every case through `Pipeline::process_file` on `kind` and fails naming the cases out
/// of tolerance (`what` names the set in the message).
pub fn check_all(cases: &[Case], kind: melkit::BackendKind, what: &str) {
    let precision = Precision::of_backend(kind.name());
    let mut failed = Vec::new();
    for case in cases {
        let mut pipeline = match melkit::Pipeline::new(case.config.clone(), kind) {
            Err(melkit::Error::Backend(melkit::BackendError::Unavailable { reason, .. })) => {
                assert!(
                    !melkit_core::testing::gpu_required(kind.name()),
                    "a GPU is required but backend {kind} is unavailable: {reason}"
                );
                eprintln!("skipping: backend {kind} is unavailable: {reason}");
                return;
            }
            other => other.unwrap(),
        };
        let (tensor, stats) = pipeline.process_file(&case.input).unwrap();
        assert_eq!(stats.long_segments, case.shape[0], "{}", case.name);
        let result = std::panic::catch_unwind(|| {
            case.check(kind.name(), tensor.shape(), tensor.data(), precision)
        });
        match result {
            Ok(report) => eprintln!("{kind} {}: {report}", case.name),
            Err(_) => failed.push(case.name.clone()),
        }
    }
    assert!(failed.is_empty(), "{kind}: {what} cases out of tolerance: {failed:?}");
}

/// A backend keeping one batch in flight between calls, as a device backend does, after a
/// `delay` a batch; it counts the batches it gave back and those it was given while it held
/// another.
pub struct Streaming {
    inner: Box<dyn melkit::Backend>,
    held: Option<melkit::Job>,
    delay: std::time::Duration,
    counts: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

impl Streaming {
    /// `inner`, streamed.
    pub fn new(inner: Box<dyn melkit::Backend>, delay: std::time::Duration) -> Self {
        let counts = std::sync::Arc::new([0, 0].map(std::sync::atomic::AtomicUsize::new));
        Streaming { inner, held: None, delay, counts }
    }

    /// Batches given back, and batches submitted while another was held.
    pub fn counts(&self) -> std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]> {
        self.counts.clone()
    }

    fn run(&mut self, mut job: melkit::Job) -> melkit::Done {
        job.out.resize(job.batch.output_len(self.inner.plan()), 0.0);
        std::thread::sleep(self.delay);
        let result = self.inner.compute(&job.batch, &mut job.out);
        self.counts[0].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (job, result)
    }
}

impl melkit::Backend for Streaming {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn plan(&self) -> &melkit::SegmentPlan {
        self.inner.plan()
    }
    fn on_device(&self) -> bool {
        true
    }
    fn compute(
        &mut self,
        batch: &melkit::SignalBatch,
        out: &mut [f32],
    ) -> Result<melkit::StepTimings, melkit::BackendError> {
        self.inner.compute(batch, out)
    }
    fn submit(&mut self, job: melkit::Job) -> Option<melkit::Done> {
        let previous = self.held.replace(job)?;
        self.counts[1].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(self.run(previous))
    }
    fn flush(&mut self) -> Option<melkit::Done> {
        let job = self.held.take()?;
        Some(self.run(job))
    }
}
