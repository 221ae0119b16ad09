//! `run --verify-fraction`'s canary through the library: an honest backend passes its spot
//! checks untouched; a broken one (holding batches in flight, as a GPU does) fails every file
//! after the mismatch, or falls back so every file is still right.

mod common;

use std::path::{Path, PathBuf};

use melkit::verify::{OnMismatch, Verified};
use melkit::{Backend, BackendKind, Config, OutputFormat, OutputOptions, Pipeline};
use melkit_core::testing::Perturbed;

/// A broken kernel on a device that keeps one batch in flight: values off by 0.2 %.
fn broken() -> Box<dyn Backend> {
    let perturbed = Perturbed { inner: cpu(), error: 2e-3 };
    Box::new(common::Streaming::new(Box::new(perturbed), std::time::Duration::ZERO))
}

fn config() -> Config {
    let mut c = Config::default();
    c.set("sample_length", "full").unwrap();
    c.set("batch_size", "1").unwrap();
    c
}

fn corpus(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in
        ["tones_4096_pcm16", "knobs_8000_pcm16_full", "tiny_4096_pcm16_full", "bursts_16000_pcm16"]
    {
        std::fs::copy(
            common::golden_dir().join(format!("{name}.wav")),
            input.join(format!("{name}.wav")),
        )
        .unwrap();
    }
    input
}

fn cpu() -> Box<dyn Backend> {
    melkit::create_backend(BackendKind::Cpu, &config()).unwrap()
}

/// Runs `backend` over the corpus into `out`; the report and each output's bytes (sorted by name).
fn run(
    backend: Box<dyn Backend>,
    input: &Path,
    out: &Path,
) -> (melkit::RunReport, Vec<(String, Vec<u8>)>) {
    let mut pipeline = Pipeline::with_backend(config(), backend).unwrap();
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let report = pipeline.process_paths(&[input.to_path_buf()], out, &options).unwrap();
    let mut outputs: Vec<_> = std::fs::read_dir(out)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    outputs.sort();
    (report, outputs)
}

#[test]
fn an_honest_backend_passes_its_spot_checks_and_its_outputs_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let (_, plain) = run(cpu(), &input, &dir.path().join("plain"));
    let verified = Verified::new(cpu(), &config(), 0.2, OnMismatch::Fail, None, 7).unwrap();
    let stats = verified.stats();
    let (report, outputs) = run(Box::new(verified), &input, &dir.path().join("verified"));
    assert!(report.success(), "{report}");
    assert_eq!(outputs, plain);
    let s = stats.lock().unwrap().clone();
    assert_eq!(s.computed, report.long_segments);
    assert!(s.checked >= 4 && s.checked < s.computed, "{s:?}");
    assert!(s.max_error > 0.0 && s.max_error < 1e-5, "{s:?}");
    assert_eq!(s.mismatch, None);
}

#[test]
fn a_broken_backend_fails_every_file_after_the_mismatch_and_writes_nothing_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let verified = Verified::new(broken(), &config(), 0.05, OnMismatch::Fail, None, 7).unwrap();
    let stats = verified.stats();
    let (report, outputs) = run(Box::new(verified), &input, &dir.path().join("out"));
    assert_eq!(outputs, vec![]);
    assert_eq!(report.failures.len(), 4, "{report}");
    for f in &report.failures {
        assert_eq!(f.stage, "compute");
        assert_eq!(
            f.reason,
            "backend perturbed failed: verification failed: backend perturbed differs from the \
             reference on a checked long segment by 2.000e-3 (max|a-b|/max|b|), beyond the \
             tolerance 1e-5"
        );
    }
    assert!(stats.lock().unwrap().mismatch.is_some());
}

#[test]
fn a_broken_backend_falls_back_and_every_output_is_still_right() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let (_, plain) = run(cpu(), &input, &dir.path().join("plain"));
    let verified =
        Verified::new(broken(), &config(), 0.05, OnMismatch::Fallback, Some(cpu()), 7).unwrap();
    let stats = verified.stats();
    let (report, outputs) = run(Box::new(verified), &input, &dir.path().join("out"));
    assert!(report.success(), "{report}");
    assert_eq!(outputs, plain);
    let s = stats.lock().unwrap().clone();
    assert!(s.mismatch.is_some());
    // The first batch checked tripped the canary: it and every later one were recomputed.
    assert!(s.fallback_batches >= 2 && s.checked >= 1, "{s:?}");
}

/// One file at a time, on one worker (the calling thread computes, `compute_here`) and on
/// two (the pool computes).
#[test]
fn one_file_at_a_time_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path()).join("tones_4096_pcm16.wav");
    let mut plain = Pipeline::with_backend(config(), cpu()).unwrap();
    let (want, _) = plain.process_file(&input).unwrap();
    for workers in ["1", "2"] {
        let with_workers = || {
            let mut c = config();
            c.set("max_workers", workers).unwrap();
            c
        };
        let verified = Verified::new(cpu(), &config(), 0.2, OnMismatch::Fail, None, 7).unwrap();
        let stats = verified.stats();
        let mut pipeline = Pipeline::with_backend(with_workers(), Box::new(verified)).unwrap();
        let (got, _) = pipeline.process_file(&input).unwrap();
        assert_eq!(got, want, "{workers} workers");
        assert!(stats.lock().unwrap().checked >= 1, "{workers} workers");
        let verified = Verified::new(broken(), &config(), 0.05, OnMismatch::Fail, None, 7).unwrap();
        let mut pipeline = Pipeline::with_backend(with_workers(), Box::new(verified)).unwrap();
        let e = pipeline.process_file(&input).unwrap_err().to_string();
        assert!(e.contains("verification failed: backend perturbed differs"), "{e}");
        let fallback = Some(cpu());
        let verified =
            Verified::new(broken(), &config(), 0.05, OnMismatch::Fallback, fallback, 7).unwrap();
        let mut pipeline = Pipeline::with_backend(with_workers(), Box::new(verified)).unwrap();
        assert_eq!(pipeline.process_file(&input).unwrap().0, want, "{workers} workers");
    }
}
