//! melkit-backend-cuda: the NVIDIA backend, through cudarc with the driver, NVRTC and cuFFT
//! loaded at run time (so it builds, and reports "no CUDA device", on a machine with no CUDA
//! at all). Two FFT paths: a fused kernel (framing + window → FFT in shared memory → power →
//! sparse mel → scaling in one launch, one read of the signal and one write of the mel) and
//! cuFFT's batched R2C between a framing kernel and a power + mel kernel; the faster on the
//! device is chosen by measurement when both can run. Kernels are compiled by NVRTC for the
//! device (cached per process); every device seen (or `gpu_workers` of them) takes batches in
//! turn, each with two streams, pinned host buffers and device buffers reused across batches, so
//! that a batch is uploaded and computed while the one before is read back.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod driver;
mod engine;
pub mod kernels;
mod stream;

use std::time::Instant;

use melkit_core::backend::{Backend, Done, Job, SignalBatch, StepTimings, check_output};
use melkit_core::config::Config;
use melkit_core::device::DeviceTables;
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;

pub use driver::{DeviceSummary, cufft_present, devices, driver_present};
pub use engine::FftPath;
use engine::{DeviceError, Engine, Real, Times};
use stream::Stream;

/// Device memory a slot's buffers may take at most, whatever the device has free.
const SLOT_BYTES: usize = 512 << 20;

fn unavailable(reason: impl ToString) -> BackendError {
    BackendError::Unavailable { backend: "cuda", reason: reason.to_string() }
}

fn failed(e: DeviceError) -> BackendError {
    BackendError::Failed { backend: "cuda", reason: e.reason }
}

/// The engines of every device used, in f32 or (for dB output) f64.
enum Engines {
    Single(Vec<Engine<f32>>),
    Double(Vec<Engine<f64>>),
}

/// The CUDA backend (see the crate documentation).
pub struct CudaBackend {
    plan: SegmentPlan,
    engines: Engines,
    path: FftPath,
    stream: Stream,
}

impl CudaBackend {
    /// The backend on the CUDA devices of this machine (`gpu_workers` of them, 0 for all), with
    /// the faster FFT path.
    ///
    /// # Errors
    /// An invalid configuration, "no CUDA device" (with the reason), or a device that fails.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        Self::build(config, None)
    }

    /// As [`new`](Self::new), with the FFT path given.
    ///
    /// # Errors
    /// As [`new`](Self::new), and a path this configuration cannot take.
    pub fn with_path(config: &Config, path: FftPath) -> Result<Self, BackendError> {
        Self::build(config, Some(path))
    }

    fn build(config: &Config, path: Option<FftPath>) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let count = driver::device_count().map_err(unavailable)?;
        let used = match config.gpu_workers {
            0 => count,
            n => n.min(count),
        };
        let tables = DeviceTables::new(config, &plan);
        let double = tables.db.is_some();
        let real_bytes = if double { 8 } else { 4 };
        let fused_fits = kernels::fused_shared_bytes(plan.n_fft, real_bytes) <= 48 << 10;
        let cufft = driver::cufft_present();
        let candidates: Vec<FftPath> = match path {
            Some(FftPath::Fused) if !fused_fits => {
                return Err(unavailable(format!(
                    "the fused kernel does not fit n_fft {} in shared memory",
                    plan.n_fft
                )));
            }
            Some(FftPath::CuFft) if !cufft => {
                return Err(unavailable("the cuFFT library (libcufft) was not found"));
            }
            Some(p) => vec![p],
            None => [(FftPath::Fused, fused_fits), (FftPath::CuFft, cufft)]
                .into_iter()
                .filter_map(|(p, ok)| ok.then_some(p))
                .collect(),
        };
        let Some(&first) = candidates.first() else {
            return Err(unavailable("n_fft too large for the fused kernel and no cuFFT library"));
        };
        let per_long = plan.long_output_len() * 4 + plan.long_len.max(plan.long_hop) * 4;
        let mut engines = if double {
            Engines::Double(start_engines::<f64>(used, &plan, &tables, first, per_long)?)
        } else {
            Engines::Single(start_engines::<f32>(used, &plan, &tables, first, per_long)?)
        };
        let mut chosen = first;
        if candidates.len() > 1 {
            chosen = fastest(&mut engines, &plan, &tables, &candidates, per_long)?;
        }
        tracing::info!(devices = used, path = ?chosen, "CUDA backend ready");
        Ok(CudaBackend { plan, engines, path: chosen, stream: Stream::new(used) })
    }

    /// The FFT path in use.
    pub fn path(&self) -> FftPath {
        self.path
    }

    /// Devices the backend computes on.
    pub fn device_count(&self) -> usize {
        match &self.engines {
            Engines::Single(e) => e.len(),
            Engines::Double(e) => e.len(),
        }
    }

    fn start(
        &mut self,
        device: usize,
        slot: usize,
        batch: &SignalBatch,
    ) -> Result<Times, BackendError> {
        let mut times = Times::default();
        match &mut self.engines {
            Engines::Single(e) => e[device].start(slot, batch, &mut times),
            Engines::Double(e) => e[device].start(slot, batch, &mut times),
        }
        .map_err(failed)?;
        Ok(times)
    }

    fn wait(
        &mut self,
        device: usize,
        slot: usize,
        out: &mut [f32],
        times: &mut Times,
    ) -> Result<(), BackendError> {
        match &mut self.engines {
            Engines::Single(e) => e[device].wait(slot, out, times),
            Engines::Double(e) => e[device].wait(slot, out, times),
        }
        .map_err(failed)
    }
}

/// An engine on each of the first `count` devices, with chunks sized from free device memory.
fn start_engines<R: Real>(
    count: usize,
    plan: &SegmentPlan,
    tables: &DeviceTables,
    path: FftPath,
    per_long: usize,
) -> Result<Vec<Engine<R>>, BackendError> {
    (0..count)
        .map(|ordinal| {
            let ctx = driver::context(ordinal).map_err(unavailable)?;
            let (free, _) = ctx.mem_get_info().map_err(|e| unavailable(driver::describe(e)))?;
            // Two slots, each with its signal and output (and the cuFFT path's frames and
            // spectra, about as big again), within a quarter of the free memory.
            let slot_bytes = (free / 8).min(SLOT_BYTES);
            let chunk_longs = (slot_bytes / (per_long * 4)).max(1);
            Engine::new(ctx, plan, tables, path, chunk_longs).map_err(failed)
        })
        .collect()
}

/// Times every candidate path on a batch of noise and keeps the fastest.
fn fastest(
    engines: &mut Engines,
    plan: &SegmentPlan,
    tables: &DeviceTables,
    candidates: &[FftPath],
    per_long: usize,
) -> Result<FftPath, BackendError> {
    let mut batch = SignalBatch::new();
    let samples = 256 * plan.long_hop + plan.long_len;
    let noise: Vec<f32> =
        (0..samples).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0).collect();
    for start in (0..256).map(|i| i * plan.long_hop) {
        batch.push_prepared(plan, &noise[start..start + plan.long_len], 1);
    }
    let mut out = vec![0.0; batch.output_len(plan)];
    let mut best = (candidates[0], f64::INFINITY);
    for &path in candidates {
        let seconds = match engines {
            Engines::Single(e) => time_path(e, plan, tables, path, per_long, &batch, &mut out),
            Engines::Double(e) => time_path(e, plan, tables, path, per_long, &batch, &mut out),
        }?;
        tracing::debug!(?path, seconds, "CUDA path timed");
        if seconds < best.1 {
            best = (path, seconds);
        }
    }
    if *candidates.last().unwrap_or(&best.0) != best.0 {
        // The engines hold the last path timed: rebuild them for the winner.
        match engines {
            Engines::Single(e) => *e = start_engines(e.len(), plan, tables, best.0, per_long)?,
            Engines::Double(e) => *e = start_engines(e.len(), plan, tables, best.0, per_long)?,
        }
    }
    Ok(best.0)
}

fn time_path<R: Real>(
    engines: &mut Vec<Engine<R>>,
    plan: &SegmentPlan,
    tables: &DeviceTables,
    path: FftPath,
    per_long: usize,
    batch: &SignalBatch,
    out: &mut [f32],
) -> Result<f64, BackendError> {
    *engines = start_engines(1.max(engines.len()), plan, tables, path, per_long)?;
    let Some(engine) = engines.first_mut() else { return Ok(f64::INFINITY) };
    let mut times = Times::default();
    let mut best = f64::INFINITY;
    // The first run warms up (module load, plans, buffers); the best of the rest counts.
    for _ in 0..4 {
        let started = Instant::now();
        engine.start(0, batch, &mut times).map_err(failed)?;
        engine.wait(0, out, &mut times).map_err(failed)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    fn on_device(&self) -> bool {
        true
    }

    fn device_memory(&self) -> Option<u64> {
        Some(match &self.engines {
            Engines::Single(e) => e.iter().map(Engine::device_bytes).sum(),
            Engines::Double(e) => e.iter().map(Engine::device_bytes).sum(),
        })
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        check_output(&self.plan, batch, out)?;
        if !self.stream.is_idle() {
            return Err(BackendError::Failed {
                backend: "cuda",
                reason: "compute() called with submitted batches in flight".into(),
            });
        }
        let mut times = self.start(0, 0, batch)?;
        self.wait(0, 0, out, &mut times)?;
        Ok(times.steps())
    }

    fn submit(&mut self, job: Job) -> Option<Done> {
        let mut job = job;
        job.out.resize(job.batch.output_len(&self.plan), 0.0);
        let (device, slot) = self.stream.place();
        // The job that used this slot before is long given back (at most one per device is
        // kept in flight), so the slot is free.
        let started = self.start(device, slot, &job.batch);
        self.stream.push(job, device, slot, started);
        if self.stream.over() { self.flush() } else { None }
    }

    fn flush(&mut self) -> Option<Done> {
        let (mut job, device, slot, started) = self.stream.pop()?;
        let result = started.and_then(|mut times| {
            self.wait(device, slot, &mut job.out, &mut times)?;
            Ok(times.steps())
        });
        Some((job, result))
    }
}
