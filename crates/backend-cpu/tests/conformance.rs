//! The core conformance suite, run for the CPU backend against the reference backend, on both
//! FFT paths (the lane path is the default; the pair path serves non-power-of-two sizes).

use melkit_backend_cpu::{CpuBackend, CpuFft};
use melkit_core::compare::Precision;
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

#[test]
fn the_lane_path_is_taken_for_powers_of_two_and_the_pair_path_otherwise() {
    for (n_fft, fft) in [(256, CpuFft::Lanes), (16, CpuFft::Lanes), (400, CpuFft::Pairs)] {
        let config = Config { n_fft, ..Config::default() };
        assert_eq!(CpuBackend::new(&config).unwrap().fft(), fft, "n_fft {n_fft}");
    }
    let config = Config::default();
    assert_eq!(CpuBackend::with_fft(&config, CpuFft::Pairs).unwrap().fft(), CpuFft::Pairs);
}
