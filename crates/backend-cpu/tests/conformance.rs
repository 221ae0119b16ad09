//! The core conformance suite, run for the CPU backend against the reference backend, on both
//! FFT paths (the lane path is the default; the pair path serves non-power-of-two sizes), and
//! on the lane path held to eight lanes (AVX2) where the CPU would take sixteen (AVX-512).

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
