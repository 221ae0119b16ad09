//! The core conformance suite on the wgpu backend (lavapipe in CI), against the reference
//! backend within the GPU tolerance. With no adapter every case skips with the reason, unless
//! `MELKIT_REQUIRE_GPU=1`.

use melkit_backend_wgpu::WgpuBackend;
use melkit_core::compare::Precision;
use melkit_core::{Backend, BackendError, Config};

fn wgpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    quiet_lavapipe();
    Ok(Box::new(WgpuBackend::new(config)?))
}

/// lavapipe complains when `XDG_RUNTIME_DIR` is unset; give it a private folder.
#[allow(unsafe_code)] // setting the environment before any thread reads it
fn quiet_lavapipe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            let dir = std::env::temp_dir().join(format!("melkit-xdg-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            // SAFETY: set once, before any thread of this test reads the environment.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    });
}

melkit_core::conformance_tests!(wgpu, Precision::Gpu);
