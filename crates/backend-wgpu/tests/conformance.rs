//! The core conformance suite on the wgpu backend (lavapipe in CI), against the reference
//! backend within the GPU tolerance. With no adapter every case skips with the reason, unless
//! `MELKIT_REQUIRE_GPU=1`.

use melkit_backend_wgpu::WgpuBackend;
use melkit_core::compare::Precision;
use melkit_core::{Backend, BackendError, Config};

fn wgpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    melkit_core::testing::quiet_lavapipe();
    Ok(Box::new(WgpuBackend::new(config)?))
}

melkit_core::conformance_tests!(wgpu, Precision::Gpu);
