//! The lane path against the reference backend on seeded signals, over every power-of-two
//! `n_fft` from 16 to 4096 and every frame count modulo the lane width (8, and 16 where the CPU
//! has AVX-512), in power and in dB, under every instruction set the CPU has.

use melkit_backend_cpu::{CpuBackend, CpuFft, Simd};
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
    config_with_hop(n_fft, n_fft / 4, frames, scale)
}

/// A configuration of `n_fft` and `hop` whose short segments hold `frames` frames.
fn config_with_hop(n_fft: usize, hop: usize, frames: usize, scale: Scale) -> Config {
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
        // 61 from n_fft 256 on: the lane path's last block of eight filters holds five.
        n_mels: (n_fft / 4).clamp(4, 61),
        scale,
        ..Config::default()
    };
    config.validate().unwrap_or_else(|e| panic!("n_fft {n_fft}, {frames} frames: {e}"));
    config
}

/// The instruction sets this CPU has, from the best down.
fn levels() -> Vec<Simd> {
    let best = Simd::detect();
    [Simd::Avx512, Simd::Avx2Fma, Simd::Baseline].into_iter().filter(|&s| s <= best).collect()
}

/// Every case: `(frames, scale, the instruction sets to run it under)`. Power: every residue of
/// the frame count mod 8 (8..16) under every instruction set, and mod 16 (8..32: each residue
/// of at least 8 both with fewer frames than 16 and with more, so both with its last frames
/// copied out and as the segment's last whole vector) under AVX-512's sixteen lanes; dB (eight
/// f64 lanes, in AVX-512 registers or arrays): a third of the residues mod 8 under every
/// instruction set.
fn cases(levels: &[Simd]) -> Vec<(usize, Scale, Vec<Simd>)> {
    let mut cases: Vec<_> = (8..16).map(|f| (f, Scale::Power, levels.to_vec())).collect();
    cases.extend((8..16).filter(|f| f % 3 == 0).map(|f| (f, Scale::Db, levels.to_vec())));
    if levels.contains(&Simd::Avx512) {
        cases.extend((16..32).map(|f| (f, Scale::Power, vec![Simd::Avx512])));
    }
    cases
}

#[test]
fn every_power_of_two_and_every_frame_count_modulo_the_lanes_matches_the_reference() {
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Cpu };
    let levels = levels();
    eprintln!("instruction sets tested: {levels:?}");
    // One thread a size: the reference's naive DFT is the cost.
    std::thread::scope(|scope| {
        for log in 4..=12 {
            let levels = &levels;
            scope.spawn(move || size(1 << log, levels, tolerance));
        }
    });
}

/// Every case at one `n_fft`.
fn size(n_fft: usize, levels: &[Simd], tolerance: Tolerance) {
    for (frames, scale, simds) in cases(levels) {
        let config = config(n_fft, frames, scale);
        let mut reference = ReferenceBackend::new(&config).unwrap();
        // One long segment of three short ones (the leftover frames of each short segment
        // are gathered across them).
        let long = (config.long_segment_scale * f64::from(config.sample_rate)).round() as usize;
        let signal = &melkit_core::testing::signals(config.sample_rate, &[long])[0];
        let want = run(&mut reference, signal);
        for simd in simds {
            let mut lanes = CpuBackend::with_simd(&config, CpuFft::Lanes, simd).unwrap();
            assert_eq!(lanes.fft(), CpuFft::Lanes);
            let wide = simd == Simd::Avx512 && scale == Scale::Power;
            assert_eq!(lanes.lanes(), if wide { 16 } else { 8 }, "{simd:?} {scale:?}");
            let report = compare(&run(&mut lanes, signal), &want);
            assert!(
                tolerance.passes(&report),
                "n_fft {n_fft}, {frames} frames, {scale:?}, {simd:?}: {report}"
            );
        }
    }
}

/// One frame a short segment past the whole vectors, with `n_fft / hop` a multiple of 8 (as
/// the defaults have): with AVX2 or AVX-512 a whole vector of segments' last frames is copied
/// out by 8x8 transposes and a part vector cell by cell (on the baseline both cell by cell);
/// against the reference, under every instruction set the CPU has.
#[test]
fn the_last_frames_of_whole_vectors_of_segments_match_the_reference() {
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Cpu };
    for simd in levels() {
        let lanes = if simd == Simd::Avx512 { 16 } else { 8 };
        for n_fft in [64, 256, 1024] {
            let config = config_with_hop(n_fft, n_fft / 8, lanes + 1, Scale::Power);
            let mut reference = ReferenceBackend::new(&config).unwrap();
            // Seven long segments of three short ones: one whole vector of last frames (16
            // lanes) or two (8), and a part one.
            let long = (config.long_segment_scale * f64::from(config.sample_rate)).round() as usize;
            let signal = &melkit_core::testing::signals(config.sample_rate, &[7 * long])[0];
            let want = run(&mut reference, signal);
            let mut backend = CpuBackend::with_simd(&config, CpuFft::Lanes, simd).unwrap();
            assert_eq!(backend.lanes(), lanes);
            let report = compare(&run(&mut backend, signal), &want);
            assert!(tolerance.passes(&report), "n_fft {n_fft}, {simd:?}: {report}");
        }
    }
}

/// A hop that does not divide `n_fft / 4` (3/32 of it), so the first pass reads its table one
/// input at a time instead of by the strided form the defaults take; against the reference,
/// under every instruction set the CPU has.
#[test]
fn a_hop_that_does_not_divide_a_quarter_of_n_fft_matches_the_reference() {
    let tolerance = Tolerance { class: ToleranceClass::Exact, precision: Precision::Cpu };
    for simd in levels() {
        for n_fft in [64, 256, 1024] {
            let config = config_with_hop(n_fft, 3 * n_fft / 32, 11, Scale::Power);
            let mut reference = ReferenceBackend::new(&config).unwrap();
            let long = (config.long_segment_scale * f64::from(config.sample_rate)).round() as usize;
            let signal = &melkit_core::testing::signals(config.sample_rate, &[2 * long])[0];
            let want = run(&mut reference, signal);
            let mut backend = CpuBackend::with_simd(&config, CpuFft::Lanes, simd).unwrap();
            assert_eq!(backend.fft(), CpuFft::Lanes);
            let report = compare(&run(&mut backend, signal), &want);
            assert!(tolerance.passes(&report), "n_fft {n_fft}, {simd:?}: {report}");
        }
    }
}
