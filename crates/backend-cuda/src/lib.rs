//! melkit-backend-cuda: the NVIDIA backend, through cudarc with the driver, NVRTC and cuFFT
//! loaded at run time (so it builds, and reports "no CUDA device", on a machine with no CUDA
//! at all). Two FFT paths: a fused kernel (framing + window → FFT in shared memory → power →
//! sparse mel → scaling in one launch, one read of the signal and one write of the mel) and
//! cuFFT's batched R2C between a framing kernel and a power + mel kernel; the faster on the
//! device is chosen by measurement when both can run. Every device seen (or `gpu_workers` of
//! them) takes batches in turn, each with two streams, host buffers and device buffers reused
//! across batches, so that a batch is uploaded and computed while the one before is read back.
//!
//! The host code runs on any [`Device`]: the real one ([`Cuda`]) or, with the `cuda-emulated`
//! feature, [`emulated::Emulated`], which runs the same kernel sources on the CPU (a test and
//! development aid: it proves the host code and the kernels' arithmetic without a GPU).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod device;
mod driver;
#[cfg(feature = "cuda-emulated")]
pub mod emulated;
mod engine;
pub mod kernels;
mod real;
mod stream;

use std::time::Instant;

use melkit_core::backend::{Backend, Done, Job, SignalBatch, StepTimings, check_output};
use melkit_core::config::Config;
use melkit_core::device::DeviceTables;
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;

pub use device::{Device, DeviceError};
pub use driver::{DeviceSummary, cufft_present, devices, driver_present};
pub use engine::FftPath;
use engine::{Engine, Times};
pub use real::Cuda;
use stream::Stream;

/// How the backend is set up beyond the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CudaOptions {
    /// The FFT path; `None` times both where both can run and keeps the faster.
    pub path: Option<FftPath>,
    /// Long segments per chunk at most; `None` sizes chunks from the device's free memory.
    pub chunk_longs: Option<usize>,
}

fn unavailable<D: Device>(reason: impl ToString) -> BackendError {
    BackendError::Unavailable { backend: D::NAME, reason: reason.to_string() }
}

fn unsupported<D: Device>(reason: String) -> BackendError {
    BackendError::Unsupported { backend: D::NAME, reason }
}

/// The engines of every device used, in f32 or (for dB output) f64.
enum Engines<D: Device> {
    Single(Vec<Engine<D, f32>>),
    Double(Vec<Engine<D, f64>>),
}

/// Runs `$body` with `$e` bound to the engine list, whatever its precision.
macro_rules! each {
    ($engines:expr, $e:ident => $body:expr) => {
        match $engines {
            Engines::Single($e) => $body,
            Engines::Double($e) => $body,
        }
    };
}

/// The CUDA backend on devices `D` (see the crate documentation).
pub struct CudaBackend<D: Device = Cuda> {
    plan: SegmentPlan,
    engines: Engines<D>,
    path: FftPath,
    stream: Stream,
}

impl CudaBackend<Cuda> {
    /// The backend on the CUDA devices of this machine (`gpu_workers` of them, 0 for all), with
    /// the faster FFT path.
    ///
    /// # Errors
    /// An invalid configuration, "no CUDA device" (with the reason), a configuration the
    /// device cannot take ([`BackendError::Unsupported`]), or a device that fails.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        Self::with_options(config, CudaOptions::default())
    }

    /// As [`new`](Self::new), with the FFT path given.
    ///
    /// # Errors
    /// As [`new`](Self::new), and a path this configuration cannot take.
    pub fn with_path(config: &Config, path: FftPath) -> Result<Self, BackendError> {
        Self::with_options(config, CudaOptions { path: Some(path), ..CudaOptions::default() })
    }

    /// As [`new`](Self::new), with options.
    ///
    /// # Errors
    /// As [`with_path`](Self::with_path).
    pub fn with_options(config: &Config, options: CudaOptions) -> Result<Self, BackendError> {
        SegmentPlan::new(config)?;
        let devices = Cuda::devices(config.gpu_workers).map_err(unavailable::<Cuda>)?;
        Self::on_devices(config, devices, options)
    }
}

impl<D: Device> CudaBackend<D> {
    /// The backend on `devices`.
    ///
    /// # Errors
    /// As [`CudaBackend::with_path`].
    pub fn on_devices(
        config: &Config,
        devices: Vec<D>,
        options: CudaOptions,
    ) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let Some(first) = devices.first() else {
            return Err(unavailable::<D>("no CUDA device: none given"));
        };
        let tables = DeviceTables::new(config, &plan);
        let double = tables.db.is_some();
        let shared = kernels::fused_shared_bytes(plan.n_fft, if double { 8 } else { 4 });
        let fused_fits = shared <= first.shared_memory();
        let no_room = format!(
            "the fused kernel needs {shared} bytes of shared memory for n_fft {}; device {} \
             has {}",
            plan.n_fft,
            first.ordinal(),
            first.shared_memory()
        );
        let candidates: Vec<FftPath> = match options.path {
            Some(FftPath::Fused) if !fused_fits => return Err(unsupported::<D>(no_room)),
            Some(FftPath::CuFft) if !first.has_fft() => {
                return Err(unavailable::<D>("the cuFFT library (libcufft) was not found"));
            }
            Some(p) => vec![p],
            None => [(FftPath::Fused, fused_fits), (FftPath::CuFft, first.has_fft())]
                .into_iter()
                .filter_map(|(p, ok)| ok.then_some(p))
                .collect(),
        };
        let Some(&path) = candidates.first() else {
            return Err(unsupported::<D>(format!("{no_room}, and there is no cuFFT library")));
        };
        let count = devices.len();
        let engines = if double {
            Engines::Double(start_engines(devices, &plan, &tables, path, options.chunk_longs)?)
        } else {
            Engines::Single(start_engines(devices, &plan, &tables, path, options.chunk_longs)?)
        };
        let mut backend = CudaBackend { plan, engines, path, stream: Stream::new(count) };
        if candidates.len() > 1 {
            backend.path = backend.fastest(&candidates)?;
        }
        tracing::info!(backend = D::NAME, devices = count, path = ?backend.path, "CUDA backend ready");
        Ok(backend)
    }

    /// The FFT path in use.
    pub fn path(&self) -> FftPath {
        self.path
    }

    /// Devices the backend computes on.
    pub fn device_count(&self) -> usize {
        each!(&self.engines, e => e.len())
    }

    /// Long segments per chunk on each device (halved where a device ran out of memory).
    pub fn chunk_longs(&self) -> Vec<usize> {
        each!(&self.engines, e => e.iter().map(|e| e.chunk_longs).collect())
    }

    fn failed(&self, device: usize, e: DeviceError) -> BackendError {
        let ordinal = each!(&self.engines, engines => engines[device].ordinal());
        BackendError::Failed { backend: D::NAME, reason: format!("device {ordinal}: {}", e.reason) }
    }

    fn start(
        &mut self,
        device: usize,
        slot: usize,
        batch: &SignalBatch,
    ) -> Result<Times, BackendError> {
        let mut times = Times::default();
        each!(&mut self.engines, e => e[device].start(slot, batch, &mut times))
            .map_err(|e| self.failed(device, e))?;
        Ok(times)
    }

    fn wait(
        &mut self,
        (device, slot): (usize, usize),
        out: &mut [f32],
        times: &mut Times,
    ) -> Result<(), BackendError> {
        each!(&mut self.engines, e => e[device].wait(slot, out, times))
            .map_err(|e| self.failed(device, e))
    }

    /// Times every candidate path on a batch of noise on the first device and keeps the
    /// fastest on every device.
    fn fastest(&mut self, candidates: &[FftPath]) -> Result<FftPath, BackendError> {
        let plan = self.plan.clone();
        let mut batch = SignalBatch::new();
        let longs = D::TIMING_LONGS;
        let samples = longs * plan.long_hop + plan.long_len;
        let noise: Vec<f32> =
            (0..samples).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0).collect();
        for start in (0..longs).map(|i| i * plan.long_hop) {
            batch.push_prepared(&plan, &noise[start..start + plan.long_len], 1);
        }
        let mut out = vec![0.0; batch.output_len(&plan)];
        let mut best = (candidates[0], f64::INFINITY);
        for &path in candidates {
            each!(&mut self.engines, e => e[0].set_path(path));
            let mut seconds = f64::INFINITY;
            // The first run warms up (plans, buffers); the best of the rest counts.
            for _ in 0..4 {
                let started = Instant::now();
                let mut times = self.start(0, 0, &batch)?;
                self.wait((0, 0), &mut out, &mut times)?;
                seconds = seconds.min(started.elapsed().as_secs_f64());
            }
            tracing::debug!(?path, seconds, "CUDA path timed");
            if seconds < best.1 {
                best = (path, seconds);
            }
        }
        each!(&mut self.engines, e => e.iter_mut().for_each(|e| e.set_path(best.0)));
        Ok(best.0)
    }
}

/// An engine on each device, its chunks sized from its free memory (or `chunk_longs`).
fn start_engines<D: Device, R: device::Real>(
    devices: Vec<D>,
    plan: &SegmentPlan,
    tables: &DeviceTables,
    path: FftPath,
    chunk_longs: Option<usize>,
) -> Result<Vec<Engine<D, R>>, BackendError> {
    devices
        .into_iter()
        .map(|device| {
            let ordinal = device.ordinal();
            Engine::new(device, plan, tables, path, chunk_longs).map_err(|e| {
                let reason = format!("device {ordinal}: {}", e.reason);
                BackendError::Unavailable { backend: D::NAME, reason }
            })
        })
        .collect()
}

impl<D: Device> Backend for CudaBackend<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    fn on_device(&self) -> bool {
        true
    }

    fn device_memory(&self) -> Option<u64> {
        Some(each!(&self.engines, e => e.iter().map(Engine::device_bytes).sum()))
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        check_output(&self.plan, batch, out)?;
        if !self.stream.is_idle() {
            return Err(BackendError::Failed {
                backend: D::NAME,
                reason: "compute() called with submitted batches in flight".into(),
            });
        }
        let mut times = self.start(0, 0, batch)?;
        self.wait((0, 0), out, &mut times)?;
        Ok(times.steps())
    }

    fn submit(&mut self, job: Job) -> Option<Done> {
        let mut job = job;
        job.out.resize(job.batch.output_len(&self.plan), 0.0);
        let (device, slot) = self.stream.place();
        // The job that used this slot before is long given back (at most one per device is
        // kept in flight), so the slot is free.
        let started = self.start(device, slot, &job.batch);
        self.stream.push(job, (device, slot), started);
        if self.stream.over() { self.flush() } else { None }
    }

    fn flush(&mut self) -> Option<Done> {
        let (place, pending) = self.stream.oldest()?;
        let filled = pending.map(|(mut out, mut times)| {
            let waited = self.wait(place, &mut out, &mut times);
            (out, times, waited)
        });
        self.stream.finish_oldest(filled)
    }
}
