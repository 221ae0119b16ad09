//! The lane path against the reference backend on seeded signals, over every power-of-two
//! `n_fft` from 16 to 4096 and every frame count modulo the lane width (8), in power and in dB.

use melkit_backend_cpu::{CpuBackend, CpuFft};
use melkit_core::compare::{Precision, Tolerance, ToleranceClass, compare};
use melkit_core::config::Scale;
use melkit_core::{Backend, Config, ReferenceBackend, SignalBatch};

/// The whole output of `backend` on `signal`.
fn run(backend: &mut dyn Backend, signal: &[f32]) -> Vec<f32> {
    let mut batch = SignalBatch::new();
    batch.push(backend.plan(), signal);
    let mut out = vec![f32::NAN; batch.output_len(backend.plan())];
    backend.compute(&batch, &mut out).unwrap();
    out
}

/// A configuration of `n_fft` whose short segments hold `frames` frames.
fn config(n_fft: usize, frames: usize, scale: Scale) -> Config {
    let hop = n_fft / 4;
    let points = (frames - 1) * hop;
    let sample_rate = 16_384;
    let config = Config {
        sample_rate,
        sample_length: None,
        n_fft,
        hop_length: hop,
        short_segment_points: points,
        // Three short segments a long one (whole samples at this rate).
        long_segment_scale: (3 * points) as f64 / f64::from(sample_rate),
        n_mels: (n_fft / 4).clamp(4, 64),
        scale,
        ..Config::default()
    };
    config.validate().unwrap_or_else(|e| panic!("n_fft {n_fft}, {frames} frames: {e}"));
    config
}

#[test]
fn every_power_of_two_and_every_frame_count_modulo_the_lanes_matches_the_reference() {
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Cpu };
    for log in 4..=12 {
        let n_fft = 1 << log;
        for frames in 8..16 {
            let scale = if frames % 3 == 0 { Scale::Db } else { Scale::Power };
            let config = config(n_fft, frames, scale);
            let mut lanes = CpuBackend::new(&config).unwrap();
            assert_eq!(lanes.fft(), CpuFft::Lanes);
            let mut reference = ReferenceBackend::new(&config).unwrap();
            let long = (config.long_segment_scale * f64::from(config.sample_rate)).round() as usize;
            let signal = &melkit_core::testing::signals(config.sample_rate, &[long + 123])[0];
            let (got, want) = (run(&mut lanes, signal), run(&mut reference, signal));
            let report = compare(&got, &want);
            assert!(
                tolerance.passes(&report),
                "n_fft {n_fft}, {frames} frames, {scale:?}: {report}"
            );
        }
    }
}
