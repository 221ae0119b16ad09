//! `--backend cuda-emulated` from the command line: the CUDA backend's host code and kernels on
//! emulated devices (`MELKIT_CUDA_EMULATED` sets them up). Every golden case through both FFT
//! paths; two devices giving the numbers one gives; a kernel error failing only its batch's
//! file while the run goes on; and a size the device cannot take handed to the CPU backend with
//! a notice. Where the build lacks the `cuda-emulated` feature (or g++), every test skips with
//! the reason, unless `MELKIT_REQUIRE_CUDA_EMULATED=1` (CI) makes that a failure.

mod common;

use std::path::Path;

use common::*;

/// Whether the emulated backend runs here (else the reason is printed, or the test fails
/// where it is required).
fn available() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let out = dir.path().join("out");
    let args = ["run", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
    let run = melkit(&[&args[..], &["--backend", "cuda-emulated", "--quiet"]].concat());
    if run.status.success() {
        return true;
    }
    let required = std::env::var("MELKIT_REQUIRE_CUDA_EMULATED").is_ok_and(|v| v == "1");
    assert!(!required, "cuda-emulated is required: {}", text(&run.stderr));
    eprintln!("skipping: {}", text(&run.stderr));
    false
}

#[test]
fn every_golden_case_through_both_paths() {
    if !available() {
        return;
    }
    for path in ["fused", "cufft"] {
        let setting = format!("path={path}");
        golden_cases_with("cuda-emulated", &[("MELKIT_CUDA_EMULATED", &setting)]);
    }
}

/// Four copies of a golden file (one batch each, with the default configuration).
fn corpus(dir: &Path) -> std::path::PathBuf {
    let corpus = dir.join("in");
    std::fs::create_dir(&corpus).unwrap();
    for name in ["a", "b", "c", "d"] {
        std::fs::copy(
            golden_dir().join("knobs_8000_pcm16_full.wav"),
            corpus.join(format!("{name}.wav")),
        )
        .unwrap();
    }
    corpus
}

fn run_on(corpus: &Path, out: &Path, backend: &str, setting: &str) -> std::process::Output {
    let mut args: Vec<String> =
        ["run", corpus.to_str().unwrap(), "-o", out.to_str().unwrap()].map(String::from).to_vec();
    args.extend(
        ["--backend", backend, "--format", "npy", "--gpu-batch-size", "1"].map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    melkit_with(&args, &[("MELKIT_CUDA_EMULATED", setting)])
}

fn npy(path: &Path) -> Vec<f32> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let a = <ndarray::Array4<f32> as ndarray_npy::ReadNpyExt>::read_npy(file).unwrap();
    a.iter().copied().collect()
}

/// Two devices take the batches in turn and give the numbers one device gives; a kernel that
/// fails on one batch fails that file alone, with the device's message, and the others are
/// written with the same numbers.
#[test]
fn two_devices_and_a_kernel_error_that_fails_one_file() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let one = dir.path().join("one");
    let run = run_on(&corpus, &one, "cuda-emulated", "path=fused");
    assert!(run.status.success(), "{}", text(&run.stderr));
    let two = dir.path().join("two");
    let run = run_on(&corpus, &two, "cuda-emulated", "path=fused,devices=2");
    assert!(run.status.success(), "{}", text(&run.stderr));
    for name in ["a", "b", "c", "d"] {
        let file = format!("{name}.npy");
        assert!(npy(&one.join(&file)) == npy(&two.join(&file)), "{name}: two devices differ");
    }
    // One launch per batch (a file is one chunk): the second batch fails, whichever file it
    // holds (files are batched as their decodes finish).
    let failing = dir.path().join("failing");
    let run = run_on(&corpus, &failing, "cuda-emulated", "path=fused,error_launch=2");
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("4 files in "), "{stdout}");
    assert!(stdout.contains(": 3 written, 1 failed"), "{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("failed: ")).collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    let reason = ": backend cuda-emulated failed: device 0: unspecified launch failure (injected \
                  at launch 2)";
    let name = ["a", "b", "c", "d"]
        .into_iter()
        .find(|n| {
            failed[0] == format!("failed: {}{reason}", corpus.join(format!("{n}.wav")).display())
        })
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!failing.join(format!("{name}.npy")).exists());
    for other in ["a", "b", "c", "d"].into_iter().filter(|n| *n != name) {
        let file = format!("{other}.npy");
        assert!(npy(&one.join(&file)) == npy(&failing.join(&file)), "{other} differs");
    }
}

/// Without cuFFT, a size beyond the device's shared memory goes to the CPU backend with a
/// notice, and gives the CPU backend's numbers.
#[test]
fn a_size_the_device_cannot_take_goes_to_the_cpu_backend() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = golden_dir().join("tiny_4096_pcm16_full.wav");
    let (emulated, cpu) = (dir.path().join("emulated"), dir.path().join("cpu"));
    let args = |out: &Path, backend: &'static str| {
        let out = out.to_str().unwrap().to_string();
        ["run", input.to_str().unwrap(), "-o", &out, "--backend", backend, "--n-fft", "8192"]
            .map(String::from)
            .into_iter()
            .chain(["--format", "npy"].map(String::from))
            .collect::<Vec<_>>()
    };
    let a = args(&emulated, "cuda-emulated");
    let run = melkit_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("MELKIT_CUDA_EMULATED", "fft=off")],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stdout).contains("on backend cpu"), "{}", text(&run.stdout));
    let notice = "cuda-emulated cannot take this configuration (the fused kernel needs 98312 \
                  bytes of shared memory for n_fft 8192; device 0 has 49152, and there is no \
                  cuFFT library): the CPU backend computes it";
    assert!(text(&run.stderr).contains(notice), "{}", text(&run.stderr));
    let a = args(&cpu, "cpu");
    let run = melkit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run.status.success(), "{}", text(&run.stderr));
    let file = "tiny_4096_pcm16_full.npy";
    assert!(npy(&emulated.join(file)) == npy(&cpu.join(file)));
}
