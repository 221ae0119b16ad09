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
    /// The CUDA backend's host code and kernels on emulated devices on the CPU (the
    /// `cuda-emulated` feature; a test and development aid, never picked by `auto`, set up by
    /// `MELKIT_CUDA_EMULATED`).
    CudaEmulated,
}

impl BackendKind {
    /// Every choice, as `--backend` names them.
    pub const NAMES: &'static [&'static str] =
        &["auto", "cpu", "reference", "wgpu", "cuda", "cuda-emulated"];

    /// Parses a backend name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Some(BackendKind::Auto),
            "cpu" => Some(BackendKind::Cpu),
            "reference" | "ref" => Some(BackendKind::Reference),
            "wgpu" => Some(BackendKind::Wgpu),
            "cuda" => Some(BackendKind::Cuda),
            "cuda-emulated" => Some(BackendKind::CudaEmulated),
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
            BackendKind::CudaEmulated => "cuda-emulated",
        }
    }

    /// The backends compiled into this build (the emulated CUDA device aside).
    pub fn compiled() -> Vec<BackendKind> {
        let mut kinds = vec![BackendKind::Reference];
        if cfg!(feature = "cpu") {
            kinds.push(BackendKind::Cpu);
        }
        if cfg!(feature = "wgpu") {
            kinds.push(BackendKind::Wgpu);
        }
        if cfg!(feature = "cuda") {
            kinds.push(BackendKind::Cuda);
        }
        kinds
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[cfg_attr(
    all(feature = "cpu", feature = "wgpu", feature = "cuda", feature = "cuda-emulated"),
    allow(dead_code)
)]
fn not_compiled(backend: &'static str) -> BackendError {
    BackendError::Unavailable { backend, reason: "not compiled into this build of melkit".into() }
}

/// Builds the backend `kind` for a configuration. `auto` takes the fastest one compiled in
/// and able to start: CUDA where there is a CUDA device, else wgpu on a discrete or integrated
/// GPU (not on a CPU adapter such as lavapipe, where the CPU backend is faster), else the CPU
/// backend; a GPU backend that fails to start falls back to the next with a logged warning.
/// Work a GPU backend cannot take on its device (an `n_fft` beyond its shared or workgroup
/// memory) goes to the CPU backend with a logged notice, whichever backend was asked for
/// (SPEC §4).
///
/// # Errors
/// The configuration is invalid, or the backend asked for is unavailable here.
pub fn create_backend(
    kind: BackendKind,
    config: &Config,
) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Reference => Ok(Box::new(ReferenceBackend::new(config)?)),
        BackendKind::Cpu => cpu(config),
        BackendKind::Wgpu => or_cpu(wgpu(config), config),
        BackendKind::Cuda => or_cpu(cuda(config), config),
        BackendKind::CudaEmulated => or_cpu(cuda_emulated(config), config),
        BackendKind::Auto => {
            if cuda_device_present() {
                match or_cpu(cuda(config), config) {
                    Ok(backend) => return Ok(backend),
                    Err(e @ BackendError::Config(_)) => return Err(e),
                    Err(e) => tracing::warn!("{e}; trying the next backend"),
                }
            }
            match wgpu_on_gpu(config) {
                Ok(Some(backend)) => return Ok(backend),
                Err(BackendError::Unsupported { backend, reason }) => {
                    return notice(backend, &reason, config);
                }
                Ok(None) => {}
                Err(e @ BackendError::Config(_)) => return Err(e),
                Err(e) => tracing::warn!("{e}; using the CPU backend"),
            }
            cpu_or_reference(config)
        }
    }
}

/// A GPU backend's result, or the CPU backend where it cannot take the configuration.
fn or_cpu(
    result: Result<Box<dyn Backend>, BackendError>,
    config: &Config,
) -> Result<Box<dyn Backend>, BackendError> {
    match result {
        Err(BackendError::Unsupported { backend, reason }) => notice(backend, &reason, config),
        other => other,
    }
}

/// The CPU backend in place of `backend`, which cannot take the configuration, with a notice.
fn notice(backend: &str, reason: &str, config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    tracing::warn!(
        "{backend} cannot take this configuration ({reason}): the CPU backend computes it"
    );
    cpu_or_reference(config)
}

/// The CPU backend, or the reference one where the CPU backend is not compiled in.
fn cpu_or_reference(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    cpu(config).or_else(|e| match e {
        BackendError::Unavailable { .. } => {
            tracing::warn!("no fast backend compiled in: using the reference backend");
            Ok(Box::new(ReferenceBackend::new(config)?))
        }
        other => Err(other),
    })
}

fn cpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    #[cfg(feature = "cpu")]
    return Ok(Box::new(melkit_backend_cpu::CpuBackend::new(config)?));
    #[cfg(not(feature = "cpu"))]
    {
        let _ = config;
        Err(not_compiled("cpu"))
    }
}

fn cuda(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    #[cfg(feature = "cuda")]
    return Ok(Box::new(melkit_backend_cuda::CudaBackend::new(config)?));
    #[cfg(not(feature = "cuda"))]
    {
        let _ = config;
        Err(not_compiled("cuda"))
    }
}

fn cuda_emulated(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    #[cfg(feature = "cuda-emulated")]
    {
        use melkit_backend_cuda::emulated::Emulator;
        let unavailable = |reason| BackendError::Unavailable { backend: "cuda-emulated", reason };
        let emulator = Emulator::from_env().map_err(unavailable)?;
        let mut devices = emulator.start();
        if config.gpu_workers > 0 {
            devices.truncate(config.gpu_workers);
        }
        let options = melkit_backend_cuda::CudaOptions { path: emulator.path, chunk_longs: None };
        Ok(Box::new(melkit_backend_cuda::CudaBackend::on_devices(config, devices, options)?))
    }
    #[cfg(not(feature = "cuda-emulated"))]
    {
        let _ = config;
        Err(not_compiled("cuda-emulated"))
    }
}

/// Whether the CUDA driver is there and sees a device (no device node, no probe on Linux).
fn cuda_device_present() -> bool {
    #[cfg(feature = "cuda")]
    {
        let nodes = !cfg!(target_os = "linux")
            || std::fs::read_dir("/dev").is_ok_and(|entries| {
                entries.filter_map(Result::ok).any(|e| e.file_name() == "nvidiactl")
            });
        nodes && melkit_backend_cuda::driver_present() && !melkit_backend_cuda::devices().is_empty()
    }
    #[cfg(not(feature = "cuda"))]
    false
}

fn wgpu(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    #[cfg(feature = "wgpu")]
    return Ok(Box::new(melkit_backend_wgpu::WgpuBackend::new(config)?));
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = config;
        Err(not_compiled("wgpu"))
    }
}

/// The wgpu backend on a GPU that is not a CPU adapter, or `None` when there is no such GPU.
/// On Linux a machine with no GPU device node (`/dev/dri/renderD*`, `/dev/nvidia*`) has none,
/// and is not probed: probing loads every Vulkan driver, lavapipe and its LLVM included (tens
/// of MB of memory, tens of ms).
fn wgpu_on_gpu(config: &Config) -> Result<Option<Box<dyn Backend>>, BackendError> {
    #[cfg(feature = "wgpu")]
    if gpu_device_nodes() {
        let backend = melkit_backend_wgpu::WgpuBackend::on_gpu(config)?;
        return Ok(backend.map(|b| Box::new(b) as Box<dyn Backend>));
    }
    let _ = config;
    Ok(None)
}

/// Whether the system may have a GPU (always true off Linux).
#[cfg(feature = "wgpu")]
fn gpu_device_nodes() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let any = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    any("/dev/dri", "renderD") || any("/dev", "nvidia")
}
