//! Every golden case of `../shared/golden` through the library API, on the reference and the
//! CPU backend (and the GPU backends where they run), within its tolerance class (SPEC §2).

mod common;

use melkit::BackendKind;

fn run_all(kind: BackendKind) {
    common::check_all(&common::cases(), kind, "golden");
}

#[test]
fn golden_cases_on_the_reference_backend() {
    run_all(BackendKind::Reference);
}

#[test]
fn golden_cases_on_the_cpu_backend() {
    run_all(BackendKind::Cpu);
}

#[test]
fn golden_cases_on_the_wgpu_backend() {
    melkit_core::testing::quiet_lavapipe();
    run_all(BackendKind::Wgpu);
}

/// The CUDA backend's host code and kernels on an emulated device (the `cuda-emulated`
/// feature; skips without it unless `MELKIT_REQUIRE_CUDA_EMULATED=1`).
#[test]
fn golden_cases_on_the_emulated_cuda_backend() {
    run_all(BackendKind::CudaEmulated);
}
