//! The profiler on real runs: a planted bottleneck is found (how well its what-if predicts a
//! run without it is measured by `cargo xtask bench`, `tests/model.rs`); the regression check
//! flags a planted slowdown;
//! `validate` passes real backends and fails a perturbed one with the numbers; `show` puts each
//! value where it belongs on the colour scale.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Throttled, config, corpus, cpu, high_and_low_rates, profiled};
use melkit::discover::discover;
use melkit::{Backend, BackendKind, Config, Pipeline};
use melkit_core::testing::Perturbed;

/// Timing tests run one at a time: tests sharing the machine's two cores would otherwise time
/// each other.
fn timing() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_slow_backend_is_the_bottleneck() {
    // 10 calls of 60 ms of sleep against tens of ms of work: named on a loaded machine too.
    // (How well its what-if predicts a run without the delay is measured by `cargo xtask bench`:
    // two runs' wall times are compared there, not in a test.)
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 10, 4096, 4.0);
    let config = config(2, 1);
    let slow = Throttled { inner: cpu(&config), delay: Duration::from_millis(60) };
    let slow = profiled(&config, Box::new(slow), dir.path(), 1);
    assert_eq!(slow.analysis.bottleneck.as_deref(), Some("compute"), "{slow}");
    assert!(slow.analysis.stage("compute/throttle").is_some());
    let predicted = slow.analysis.stage("compute").unwrap().what_if_seconds.unwrap();
    assert!(predicted < 0.6 * slow.analysis.wall_seconds, "the model sees no gain\n{slow}");
}

#[test]
fn heavy_resampling_on_one_worker_is_the_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    let (high, low) = high_and_low_rates(dir.path());
    let config = config(1, 0);
    let slow = profiled(&config, cpu(&config), &high, 3);
    assert_eq!(slow.analysis.bottleneck.as_deref(), Some("resample"), "{slow}");
    // Every stage runs on the one worker, so a loaded machine slows them alike.
    let fast = profiled(&config, cpu(&config), &low, 1);
    assert_eq!(fast.report.segments, slow.report.segments);
    assert_eq!(fast.analysis.stage("resample").unwrap().thread_seconds, 0.0);
}

#[test]
fn the_regression_check_flags_a_planted_slowdown() {
    // 6 calls of 250 ms of sleep on a run of about 0.1 s: flagged however loaded the machine.
    // (That an honest rerun is not flagged depends on the machine staying as idle as it was:
    // `cargo xtask bench` checks it.)
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 12, 4096, 4.0);
    let config = config(2, 2);
    let base = profiled(&config, cpu(&config), dir.path(), 5).baseline();
    let slow = Throttled { inner: cpu(&config), delay: Duration::from_millis(250) };
    let slow = profiled(&config, Box::new(slow), dir.path(), 3).baseline();
    let found = base.compare(&slow, 0.10).unwrap();
    let stages: Vec<&str> = found.iter().map(|r| r.stage.as_str()).collect();
    assert!(stages.contains(&"total") && stages.contains(&"compute"), "{found:?}");
    assert!(found.iter().all(|r| r.slower_by > 0.10 && r.current > r.baseline), "{found:?}");
    // Saved and read back, a baseline compares the same.
    let file = dir.path().join("baseline.json");
    base.save(&file).unwrap();
    let loaded = melkit_profiler::Baseline::load(&file).unwrap();
    assert_eq!(loaded.compare(&slow, 0.10).unwrap(), found);
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/audio")
}

fn validation(backend: Box<dyn Backend>, f16: bool) -> melkit_profiler::Validation {
    let config = Config::default();
    let mut fast = Pipeline::with_backend(config.clone(), backend).unwrap();
    let mut reference = Pipeline::new(config, BackendKind::Reference).unwrap();
    melkit_profiler::validate(&mut fast, &mut reference, &discover(&[examples()]), f16)
}

#[test]
fn validate_passes_the_cpu_backend_and_fails_a_perturbed_one_with_the_numbers() {
    let _timing = timing();
    let config = Config::default();
    let v = validation(cpu(&config), true);
    assert!(v.passed(), "{v}");
    assert_eq!(v.files.len(), 4);
    for file in &v.files {
        let c = file.result.as_ref().unwrap();
        let exact = file.input.ends_with("tones_4096.wav");
        assert_eq!(
            c.class == melkit::compare::ToleranceClass::Exact,
            exact,
            "{}",
            file.input.display()
        );
        assert!(c.error.max_rel < 1e-5 && c.error.max_rel > 0.0, "{:?}", c.error);
        let h = c.f16.unwrap();
        assert_eq!(h.f32_bytes, 2 * h.f16_bytes);
        // f16 keeps 11 significant bits: about 5e-4 at worst, far more than f32's error.
        assert!(
            h.error.max_rel > 10.0 * c.error.max_rel && h.error.max_rel < 1e-3,
            "{:?}",
            h.error
        );
    }
    let broken = Perturbed { inner: cpu(&config), error: 2e-3 };
    let v = validation(Box::new(broken), false);
    assert!(!v.passed());
    for file in &v.files {
        let c = file.result.as_ref().unwrap();
        assert!(!c.passed);
        assert!((c.error.max_rel - 2e-3).abs() < 1e-5, "{:?}", c.error);
        assert!((c.error.rel_l2 - 2e-3).abs() < 1e-5, "{:?}", c.error);
    }
    let text = v.to_string();
    assert!(text.contains("FAILED: 4 of 4 files"), "{text}");
    assert!(text.contains("(2.000e-3 > 1e-5)"), "{text}");
    assert!(text.contains("(2.000e-3 > 1e-3)"), "{text}");
}

#[test]
fn every_gpu_backend_present_validates_and_reports_its_device_memory_and_use() {
    let _timing = timing();
    melkit_core::testing::quiet_lavapipe();
    let config = Config::default();
    for (name, factory) in [
        (
            "wgpu",
            (|c: &Config| melkit::create_backend(BackendKind::Wgpu, c))
                as melkit_core::testing::Factory,
        ),
        ("cuda", |c: &Config| melkit::create_backend(BackendKind::Cuda, c)),
    ] {
        let Some(backend) = melkit_core::testing::backend_or_skip(factory, &config) else {
            continue;
        };
        let v = validation(backend, false);
        assert!(v.passed(), "{name}: {v}");
        let p = profiled(&config, factory(&config).unwrap(), &examples(), 1);
        assert!(p.report.on_device, "{name}");
        // At least the mel output of one batch chunk and its readback copy.
        let bytes = p.report.device_memory.unwrap();
        assert!(bytes >= 2 * 4 * 2 * 64 * 17, "{name}: {bytes}");
        let busy = p.device_utilisation().unwrap();
        assert!(busy > 0.0 && busy <= 1.0, "{name}: {busy}");
        assert!(p.to_string().contains("device: "), "{p}");
    }
}

#[test]
fn show_draws_each_value_in_its_place_on_the_colour_scale() {
    let _timing = timing();
    let dir = tempfile::tempdir().unwrap();
    let shape = [3usize, 2, 8, 5];
    let mut values = vec![1e-12f32; shape.iter().product()];
    let at = |l: usize, s: usize, m: usize, t: usize| ((l * 2 + s) * 8 + m) * 5 + t;
    values[at(1, 1, 6, 2)] = 1.0; // 0 dB: the top of the scale
    values[at(2, 0, 0, 4)] = 1e-4; // -40 dB: the middle
    let path = dir.path().join("t.npy");
    let mut bytes = melkit_io::npy::npy_header("<f4", &shape);
    melkit_io::npy::write_values(&mut bytes, &values, melkit_io::Dtype::F32, &mut Vec::new())
        .unwrap();
    std::fs::write(&path, bytes).unwrap();
    let tensor = melkit_io::read::read_output(&path).unwrap();
    let png = dir.path().join("t.png");
    let layout = melkit_profiler::show::render(&tensor, "t", &png, 64).unwrap();
    let image = image::open(&png).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), layout.size);
    assert_eq!(layout.tiles, 3);
    let pixel = |l: usize, s: usize, m: usize, t: usize| {
        let (x0, y0) = layout.tile_origin(l);
        let x = x0 + (s * 5 + t) as u32 * layout.cell;
        let y = y0 + (8 - 1 - m) as u32 * layout.cell;
        image.get_pixel(x, y).0
    };
    let [r, g, b] = pixel(1, 1, 6, 2);
    assert!(r > 200 && g > 200 && b < 80, "top of viridis is yellow: {:?}", [r, g, b]);
    let [r, g, b] = pixel(0, 0, 0, 0);
    assert!(r < 90 && g < 20 && b > 60, "bottom of viridis is dark purple: {:?}", [r, g, b]);
    let [r, g, b] = pixel(2, 0, 0, 4);
    assert!(r < 60 && g > 120 && b > 120, "the middle is teal: {:?}", [r, g, b]);
}
