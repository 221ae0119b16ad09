//! The core conformance suite, run for the CPU backend against the reference backend, on both
//! FFT paths (the lane path is the default; the pair path serves non-power-of-two sizes), and
//! on the lane path held to eight lanes (AVX2) where the CPU would take sixteen (AVX-512);
//! and compute_here, on the calling thread alone, against compute.

use melkit_backend_cpu::{CpuBackend, CpuFft, Simd};
use melkit_core::compare::Precision;
use melkit_core::config::Scale;
use melkit_core::{Backend, BackendError, Config};

fn cpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(CpuBackend::new(config)?))
}

melkit_core::conformance_tests!(cpu, Precision::Cpu);

mod pairs {
    use super::*;

    fn cpu_pairs(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(CpuBackend::with_fft(config, CpuFft::Pairs)?))
    }

    melkit_core::conformance_tests!(cpu_pairs, Precision::Cpu);
}

mod eight_lanes {
    use super::*;

    fn cpu_avx2(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(CpuBackend::with_simd(config, CpuFft::Lanes, Simd::Avx2Fma)?))
    }

    melkit_core::conformance_tests!(cpu_avx2, Precision::Cpu);
}

#[test]
fn the_lane_path_is_sixteen_wide_in_f32_with_avx512_and_eight_wide_otherwise() {
    let wide = if Simd::detect() == Simd::Avx512 { 16 } else { 8 };
    let power = Config::default();
    let db = Config { scale: Scale::Db, ..Config::default() };
    assert_eq!(CpuBackend::new(&power).unwrap().lanes(), wide);
    assert_eq!(CpuBackend::new(&db).unwrap().lanes(), 8);
    let avx2 = CpuBackend::with_simd(&power, CpuFft::Lanes, Simd::Avx2Fma).unwrap();
    assert_eq!(avx2.lanes(), 8);
    let pairs = CpuBackend::with_simd(&power, CpuFft::Pairs, Simd::Avx512).unwrap();
    assert_eq!((pairs.fft(), pairs.lanes()), (CpuFft::Pairs, 2));
}

#[test]
fn the_lane_path_is_taken_for_powers_of_two_and_the_pair_path_otherwise() {
    for (n_fft, fft) in [(256, CpuFft::Lanes), (16, CpuFft::Lanes), (400, CpuFft::Pairs)] {
        let config = Config { n_fft, ..Config::default() };
        assert_eq!(CpuBackend::new(&config).unwrap().fft(), fft, "n_fft {n_fft}");
    }
    let config = Config::default();
    assert_eq!(CpuBackend::with_fft(&config, CpuFft::Pairs).unwrap().fft(), CpuFft::Pairs);
}

/// `compute_here` gives, bit for bit, what `compute` gives, on both paths and in both
/// precisions, over a batch of copies and blocks with more long segments than one task takes;
/// and it runs on the calling thread: every thread of rayon's global pool is held busy while
/// it computes, so a hand-over to the pool would never come back.
#[test]
fn compute_here_gives_what_compute_gives_on_the_calling_thread() {
    use melkit_core::testing::{mixed_batch, signals};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    let held = Arc::new(AtomicBool::new(true));
    let hold = Arc::clone(&held);
    rayon::spawn_broadcast(move |_| {
        while hold.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for (fft, scale) in [
            (CpuFft::Lanes, Scale::Power),
            (CpuFft::Lanes, Scale::Db),
            (CpuFft::Pairs, Scale::Power),
            (CpuFft::Pairs, Scale::Db),
        ] {
            let config = Config { scale, ..Config::default() };
            let mut backend = CpuBackend::with_fft(&config, fft).unwrap();
            let lens = [40_960, 9_000, 70_000, 300, 40_960];
            let batch = mixed_batch(backend.plan(), &signals(config.sample_rate, &lens));
            let mut here = vec![f32::NAN; batch.output_len(backend.plan())];
            backend.compute_here(&batch, &mut here).unwrap();
            send.send((fft, scale, batch, here)).unwrap();
        }
    });
    let mut got = Vec::new();
    for _ in 0..4 {
        let next = receive.recv_timeout(Duration::from_secs(120));
        got.push(next.expect("compute_here waited on rayon's busy global pool"));
    }
    held.store(false, Ordering::Release);
    for (fft, scale, batch, here) in got {
        let config = Config { scale, ..Config::default() };
        let mut backend = CpuBackend::with_fft(&config, fft).unwrap();
        let mut pooled = vec![f32::NAN; here.len()];
        backend.compute(&batch, &mut pooled).unwrap();
        assert!(batch.n_long() > 100, "{} long segments", batch.n_long());
        assert!(here.iter().all(|v| v.is_finite()), "{fft:?} {scale:?}: a value left unwritten");
        assert!(here == pooled, "{fft:?} {scale:?}: compute_here differs from compute");
    }
}
