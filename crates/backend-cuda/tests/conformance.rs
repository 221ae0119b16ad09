//! The conformance suite on a real CUDA device, through both FFT paths; every case skips with
//! the reason where there is no device (`MELKIT_REQUIRE_GPU=1` or `MELKIT_REQUIRE_CUDA=1` makes
//! that a failure).

use melkit_backend_cuda::{CudaBackend, FftPath};
use melkit_core::{Backend, BackendError, Config};

fn fused(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(CudaBackend::with_path(config, FftPath::Fused)?))
}

fn cufft(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(CudaBackend::with_path(config, FftPath::CuFft)?))
}

mod fused_path {
    melkit_core::conformance_tests!(super::fused, melkit_core::compare::Precision::Gpu);
}

mod cufft_path {
    melkit_core::conformance_tests!(super::cufft, melkit_core::compare::Precision::Gpu);
}
