//! Backend selection: the names `--backend` accepts and what `auto` picks.

use std::fmt;

use melkit_core::{Backend, BackendError, Config, ReferenceBackend};

/// A backend choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The fastest backend available here (the CPU backend until a GPU backend is compiled in).
    Auto,
    /// realfft + rayon.
    Cpu,
    /// Plain f64, the reference every other backend is checked against.
    Reference,
    /// WGSL compute shaders through wgpu.
    Wgpu,
    /// NVIDIA GPUs through CUDA.
    Cuda,
}

impl BackendKind {
    /// Every choice, as `--backend` names them.
    pub const NAMES: &'static [&'static str] = &["auto", "cpu", "reference", "wgpu", "cuda"];

    /// Parses a backend name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Some(BackendKind::Auto),
            "cpu" => Some(BackendKind::Cpu),
            "reference" | "ref" => Some(BackendKind::Reference),
            "wgpu" => Some(BackendKind::Wgpu),
            "cuda" => Some(BackendKind::Cuda),
            _ => None,
        }
    }

    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Reference => "reference",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The backends compiled into this build.
    pub fn compiled() -> Vec<BackendKind> {
        let mut kinds = vec![BackendKind::Reference];
        if cfg!(feature = "cpu") {
            kinds.push(BackendKind::Cpu);
        }
        kinds
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

fn not_compiled(backend: &'static str) -> BackendError {
    BackendError::Unavailable { backend, reason: "not compiled into this build of melkit".into() }
}

/// Builds the backend `kind` for a configuration. `auto` takes the fastest one compiled in
/// and able to start, falling back to the CPU backend (with a logged warning) when a GPU
/// backend fails to start.
///
/// # Errors
/// The configuration is invalid, or the backend asked for is unavailable here.
pub fn create_backend(
    kind: BackendKind,
    config: &Config,
) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Reference => Ok(Box::new(ReferenceBackend::new(config)?)),
        #[cfg(feature = "cpu")]
        BackendKind::Cpu | BackendKind::Auto => {
            Ok(Box::new(melkit_backend_cpu::CpuBackend::new(config)?))
        }
        #[cfg(not(feature = "cpu"))]
        BackendKind::Cpu => Err(not_compiled("cpu")),
        #[cfg(not(feature = "cpu"))]
        BackendKind::Auto => {
            tracing::warn!("no fast backend compiled in: using the reference backend");
            Ok(Box::new(ReferenceBackend::new(config)?))
        }
        BackendKind::Wgpu => Err(not_compiled("wgpu")),
        BackendKind::Cuda => Err(not_compiled("cuda")),
    }
}
