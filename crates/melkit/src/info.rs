//! What this build and this machine offer: backends, devices, CPU features, output formats.

use std::fmt;

use melkit_core::{BackendError, Config};
use melkit_io::OutputFormat;

use crate::backends::{BackendKind, create_backend};

/// A description of the build and the machine, for `melkit info` and bug reports.
#[derive(Clone, Debug)]
pub struct SystemInfo {
    /// melkit's version.
    pub version: &'static str,
    /// Each backend and whether it starts here (`Err` says why not).
    pub backends: Vec<(BackendKind, Result<(), String>)>,
    /// What `--backend auto` picks.
    pub auto: String,
    /// GPU devices seen by the compiled-in GPU backends.
    pub devices: Vec<String>,
    /// The CPU architecture.
    pub arch: &'static str,
    /// Threads the machine offers.
    pub threads: usize,
    /// SIMD features detected at run time.
    pub cpu_features: Vec<&'static str>,
    /// Output formats this build writes, with library versions.
    pub formats: Vec<String>,
}

/// What melkit decodes (recognised by content): containers and their codecs.
pub const INPUT_FORMATS: &str = "WAV (PCM 8-32 bit, float 32/64), FLAC, Ogg Vorbis, MP3 (MP1, MP2), AAC and ALAC in MP4/M4A, AIFF, CAF, Matroska/WebM (no Opus)";

impl SystemInfo {
    /// Looks at the build and the machine.
    pub fn collect() -> Self {
        let config = Config::default();
        let backends =
            [BackendKind::Reference, BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
                .into_iter()
                .map(|kind| {
                    let state = create_backend(kind, &config).map(|_| ()).map_err(|e| match e {
                        BackendError::Unavailable { reason, .. } => reason,
                        other => other.to_string(),
                    });
                    (kind, state)
                })
                .collect();
        let auto = create_backend(BackendKind::Auto, &config)
            .map_or_else(|e| format!("unavailable ({e})"), |b| b.name().to_string());
        let formats = [OutputFormat::H5, OutputFormat::Npy, OutputFormat::Npz]
            .into_iter()
            .filter(|f| f.available())
            .map(|f| match (f, melkit_io::output::hdf5_version()) {
                (OutputFormat::H5, Some(v)) => format!("h5 (HDF5 {v})"),
                _ => f.to_string(),
            })
            .collect();
        SystemInfo {
            version: crate::VERSION,
            backends,
            auto,
            devices: gpu_devices(),
            arch: std::env::consts::ARCH,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_features: cpu_features(),
            formats,
        }
    }
}

/// The CUDA devices (name, memory, compute capability, driver) and the adapters wgpu sees
/// (name, type, backend, driver).
fn gpu_devices() -> Vec<String> {
    #[allow(unused_mut)]
    let mut devices = Vec::new();
    #[cfg(feature = "cuda")]
    devices.extend(melkit_backend_cuda::devices().into_iter().map(|d| {
        format!(
            "cuda {}: {} ({:.1} GiB, compute capability {}.{}, CUDA driver {})",
            d.ordinal,
            d.name,
            d.memory as f64 / f64::from(1u32 << 30),
            d.compute_capability.0,
            d.compute_capability.1,
            d.driver_version
        )
    }));
    #[cfg(feature = "wgpu")]
    devices.extend(melkit_backend_wgpu::adapters().into_iter().map(|a| {
        format!("wgpu: {} ({}, {}, driver {})", a.name, a.device_type, a.backend, a.driver)
    }));
    devices
}

fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { found.push($f); } )* };
        }
        probe!("sse2", "sse4.1", "avx", "avx2", "fma", "avx512f");
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            found.push("neon");
        }
    }
    found
}

impl fmt::Display for SystemInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "melkit {}", self.version)?;
        writeln!(f, "backends:")?;
        for (kind, state) in &self.backends {
            match state {
                Ok(()) => writeln!(f, "  {kind:<10} ready")?,
                Err(why) => writeln!(f, "  {kind:<10} unavailable: {why}")?,
            }
        }
        writeln!(f, "  auto picks {}", self.auto)?;
        if self.devices.is_empty() {
            let why = if cfg!(any(feature = "wgpu", feature = "cuda")) {
                "no CUDA device, no GPU adapter"
            } else {
                "no GPU backend compiled in"
            };
            writeln!(f, "GPU devices: none seen ({why})")?;
        } else {
            writeln!(f, "GPU devices:")?;
            for d in &self.devices {
                writeln!(f, "  {d}")?;
            }
        }
        writeln!(
            f,
            "CPU: {}, {} threads, features: {}",
            self.arch,
            self.threads,
            if self.cpu_features.is_empty() {
                "none detected".to_string()
            } else {
                self.cpu_features.join(" ")
            }
        )?;
        writeln!(f, "input formats: {}", INPUT_FORMATS)?;
        write!(f, "output formats: {}", self.formats.join(", "))
    }
}
