//! The library pipeline: in-memory and file paths agree, batching never changes a number,
//! the report counts what happened, f16 output reports its error.

mod common;

use std::fs::File;
use std::path::Path;

use melkit::compare::{Precision, compare};
use melkit::{BackendKind, Config, OutputFormat, OutputOptions, Pipeline};
use ndarray::{Array4, ArrayD};
use ndarray_npy::ReadNpyExt;

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut c = Config::default();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    c
}

#[test]
fn a_signal_in_memory_gives_what_its_file_gives() {
    let case = common::case("bursts_16000_pcm16");
    let mut pipeline = Pipeline::new(case.config.clone(), BackendKind::Cpu).unwrap();
    let (from_file, _) = pipeline.process_file(&case.input).unwrap();
    let audio = melkit_io_decode(&case.input);
    let in_memory = pipeline.process_signal(&audio.0, audio.1).unwrap();
    assert_eq!(in_memory, from_file);
    case.check("process_signal", in_memory.shape(), in_memory.data(), Precision::Cpu);
}

fn melkit_io_decode(path: &Path) -> (Vec<f32>, u32) {
    // Decoding is the io crate's; read the WAV here independently with hound.
    let mut reader = hound::WavReader::open(path).unwrap();
    let samples = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    (samples, reader.spec().sample_rate)
}

fn copy_golden(dir: &Path) {
    for (i, name) in
        ["tones_4096_pcm16", "knobs_8000_pcm16_full", "tiny_4096_pcm16_full", "bursts_16000_pcm16"]
            .iter()
            .enumerate()
    {
        let to = dir.join(format!("d{}/{name}.wav", i % 2));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(common::golden_dir().join(format!("{name}.wav")), to).unwrap();
    }
}

#[test]
fn batch_size_and_workers_never_change_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    copy_golden(&dir.path().join("in"));
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let mut runs = Vec::new();
    for (batch, workers) in [("1", "1"), ("3", "2"), ("0", "0")] {
        let c = config(&[
            ("sample_length", "full"),
            ("batch_size", batch),
            ("max_workers", workers),
            ("cpu_workers", "1"),
        ]);
        let mut pipeline = Pipeline::new(c, BackendKind::Cpu).unwrap();
        let out = dir.path().join(format!("out-{batch}-{workers}"));
        let report = pipeline.process_paths(&[dir.path().join("in")], &out, &options).unwrap();
        assert_eq!((report.files_ok, report.failures.len()), (4, 0));
        let mut files: Vec<_> = [
            "d0/tones_4096_pcm16",
            "d1/knobs_8000_pcm16_full",
            "d0/tiny_4096_pcm16_full",
            "d1/bursts_16000_pcm16",
        ]
        .iter()
        .map(|r| std::fs::read(out.join(format!("{r}.npy"))).unwrap())
        .collect();
        files.push(report.segments.to_le_bytes().to_vec());
        runs.push(files);
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[test]
fn the_report_counts_files_segments_and_stages() {
    let dir = tempfile::tempdir().unwrap();
    copy_golden(&dir.path().join("in"));
    std::fs::write(dir.path().join("in/d0/bad.wav"), b"RIFF....WAVEfmt ").unwrap();
    let mut pipeline = Pipeline::new(Config::default(), BackendKind::Cpu).unwrap();
    let out = dir.path().join("out");
    let report = pipeline
        .process_paths(
            &[dir.path().join("in"), dir.path().join("gone")],
            &out,
            &OutputOptions::default(),
        )
        .unwrap();
    assert_eq!(report.files_ok, 4);
    let failed: Vec<_> =
        report.failures.iter().map(|f| (f.path.file_name().unwrap().to_owned(), f.stage)).collect();
    // In input order: the folder's bad file, then the missing input given after it.
    assert_eq!(failed, [("bad.wav".into(), "decode"), ("gone".into(), "discover")]);
    // Four 10 s files of 40 long segments (two short segments each).
    assert_eq!(report.long_segments, 160);
    assert_eq!(report.segments, 320);
    // 10 s + 3 s + 409 samples at 4096 Hz + 10 s of audio decoded.
    let seconds = 23.0 + 409.0 / 4096.0;
    assert!((report.audio_seconds - seconds).abs() < 1e-9, "{}", report.audio_seconds);
    for stage in [
        melkit::Stage::Decode,
        melkit::Stage::Compute,
        melkit::Stage::Write,
        melkit::Stage::Resample,
    ] {
        assert!(!report.stages.get(stage).is_zero(), "{stage:?}");
    }
    assert!(report.backend_steps.total() > std::time::Duration::ZERO);
    assert!(report.files_per_second() > 0.0);
    assert!(report.to_string().contains("6 files in "));
}

#[test]
fn f16_output_halves_the_size_and_reports_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let case = common::case("tones_4096_pcm16");
    let mut c = case.config.clone();
    c.set("dtype", "f16").unwrap();
    let mut pipeline = Pipeline::new(c, BackendKind::Cpu).unwrap();
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    let report =
        pipeline.process_paths(std::slice::from_ref(&case.input), dir.path(), &options).unwrap();
    let error = report.f16_error.unwrap();
    assert!(error > 0.0 && error < 1e-3, "f16 error {error}");
    // The library call reports the same error.
    assert_eq!(pipeline.process_file(&case.input).unwrap().1.f16_error, Some(error));
    assert!(report.to_string().contains("f16 output: largest rounding error"));
    let path = dir.path().join("tones_4096_pcm16.npy");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 128 + 2 * 40 * 2 * 64 * 17);
    // numpy's "<f2" read back through its bytes.
    let bytes = std::fs::read(&path).unwrap();
    let values: Vec<f32> = bytes[128..]
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    let report = compare(&values, &case.expected);
    assert!(report.max_rel <= error + 1e-6, "{report}");
    assert!(ArrayD::<f32>::read_npy(File::open(&path).unwrap()).is_err(), "stored as f16, not f32");
}

#[test]
fn npy_output_of_a_library_run_matches_the_golden_case() {
    let dir = tempfile::tempdir().unwrap();
    let case = common::case("knobs_8000_pcm16_full");
    let mut pipeline = Pipeline::new(case.config.clone(), BackendKind::Reference).unwrap();
    let options = OutputOptions { format: OutputFormat::Npz, ..OutputOptions::default() };
    let report =
        pipeline.process_paths(std::slice::from_ref(&case.input), dir.path(), &options).unwrap();
    assert!(report.success());
    let mut zip =
        zip::ZipArchive::new(File::open(dir.path().join("knobs_8000_pcm16_full.npz")).unwrap())
            .unwrap();
    let mel = Array4::<f32>::read_npy(zip.by_name("mel.npy").unwrap()).unwrap();
    case.check(
        "npz",
        [mel.shape()[0], mel.shape()[1], mel.shape()[2], mel.shape()[3]],
        mel.as_slice().unwrap(),
        Precision::Cpu,
    );
}

#[test]
fn gpu_batch_size_sets_the_batch_of_a_gpu_backend_only() {
    melkit_core::testing::quiet_lavapipe();
    let mut config = Config::default();
    config.set("gpu_batch_size", "3").unwrap();
    config.set("batch_size", "2").unwrap();
    let cpu = Pipeline::new(config.clone(), BackendKind::Cpu).unwrap();
    assert_eq!(cpu.budget().batch_longs, 2 * 40);
    match Pipeline::new(config, BackendKind::Wgpu) {
        Ok(gpu) => assert_eq!(gpu.budget().batch_longs, 3 * 40),
        Err(e) => eprintln!("skipping the wgpu half: {e}"),
    }
}

#[test]
fn a_backend_that_keeps_batches_in_flight_gets_every_batch_back_in_place() {
    let dir = tempfile::tempdir().unwrap();
    copy_golden(&dir.path().join("in"));
    let options = OutputOptions { format: OutputFormat::Npy, ..OutputOptions::default() };
    // One file per batch, two runs through one pipeline.
    let c = config(&[("gpu_batch_size", "1")]);
    // A slow device (100 ms a call, against a few ms to decode a file): the next files are
    // decoded meanwhile, so a batch waits for the pipeline, on a loaded machine too.
    let cpu = melkit::create_backend(BackendKind::Cpu, &c).unwrap();
    let streaming = common::Streaming::new(cpu, std::time::Duration::from_millis(100));
    let counts = streaming.counts();
    let mut pipeline = Pipeline::with_backend(c.clone(), Box::new(streaming)).unwrap();
    let mut cpu = Pipeline::new(c, BackendKind::Cpu).unwrap();
    let want = cpu.process_paths(&[dir.path().join("in")], &dir.path().join("cpu"), &options);
    assert_eq!(want.unwrap().failures.len(), 0);
    for run in ["a", "b"] {
        let out = dir.path().join(run);
        let report = pipeline.process_paths(&[dir.path().join("in")], &out, &options).unwrap();
        assert_eq!((report.files_ok, report.failures.len()), (4, 0));
        for r in [
            "d0/tones_4096_pcm16",
            "d1/knobs_8000_pcm16_full",
            "d0/tiny_4096_pcm16_full",
            "d1/bursts_16000_pcm16",
        ] {
            let got = std::fs::read(out.join(format!("{r}.npy"))).unwrap();
            let want = std::fs::read(dir.path().join(format!("cpu/{r}.npy"))).unwrap();
            assert!(got == want, "{run}: {r} differs from the CPU pipeline's");
        }
    }
    let [given_back, overlapped] =
        [0, 1].map(|i| counts[i].load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(given_back, 8, "one batch per file, each run");
    assert!(overlapped >= 2, "batches submitted while another was in flight: {overlapped}");
}

#[test]
fn a_backend_built_for_another_configuration_is_refused() {
    // Any key that changes the numbers, not only the segmentation.
    let keys = [
        ("n_mels", "32"),
        ("window", "hamming"),
        ("mel_scale", "htk"),
        ("mel_norm", "none"),
        ("fmin", "20"),
        ("fmax", "1500"),
        ("power", "1"),
        ("scale", "db"),
        ("amin", "1e-8"),
    ];
    for (key, value) in keys {
        let other = config(&[(key, value)]);
        let backend = melkit::create_backend(BackendKind::Cpu, &other).unwrap();
        let e = Pipeline::with_backend(Config::default(), backend).err().unwrap();
        assert_eq!(
            e.to_string(),
            "backend cpu failed: it was built for another configuration",
            "{key}"
        );
    }
    // Run-control keys do not matter.
    let backend =
        melkit::create_backend(BackendKind::Cpu, &config(&[("max_workers", "1")])).unwrap();
    assert!(Pipeline::with_backend(Config::default(), backend).is_ok());
}

/// Several signals in one call give what each gives alone, on one worker (the calling thread
/// computes) and on two (the pool computes), in power and in dB.
#[test]
fn signals_in_one_call_give_what_each_gives_alone_on_one_worker_or_two() {
    let signals: Vec<Vec<f32>> = [40_960usize, 9_000, 70_000]
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| ((i * (k + 3)) as f32 * 0.013).sin() * 0.4).collect())
        .collect();
    let refs: Vec<&[f32]> = signals.iter().map(Vec::as_slice).collect();
    for scale in ["power", "db"] {
        let mut alone = Pipeline::new(config(&[("scale", scale)]), BackendKind::Cpu).unwrap();
        let want: Vec<_> = signals.iter().map(|s| alone.process_signal(s, 4096).unwrap()).collect();
        for workers in ["1", "2"] {
            let c = config(&[("scale", scale), ("max_workers", workers)]);
            let got = Pipeline::new(c, BackendKind::Cpu).unwrap().process_signals(&refs).unwrap();
            assert!(got == want, "{scale}, {workers} workers");
            assert!(got.iter().all(|t| t.data().iter().all(|v| v.is_finite())), "{scale}");
        }
    }
}
