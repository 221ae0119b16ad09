//! One device's share of the CUDA backend: its module, its constant tables, and two slots, each
//! a stream with pinned host buffers and device buffers reused from batch to batch, so that one
//! batch is uploaded and computed while the other is read back.

use std::sync::Arc;
use std::time::Instant;

use cudarc::cufft::{CudaFft, result::CufftError, sys as fft};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtrMut, DeviceRepr, DriverError,
    LaunchConfig, PinnedHostSlice, PushKernelArg, ValidAsZeroBits,
};
use melkit_core::backend::SignalBatch;
use melkit_core::device::DeviceTables;
use melkit_core::plan::SegmentPlan;

use crate::driver::{describe, out_of_memory};
use crate::kernels;

/// The two FFT paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftPath {
    /// One launch per chunk: framing, FFT in shared memory, power, mel and scaling fused.
    Fused,
    /// Framing kernel → cuFFT batched R2C (D2Z for f64) → power + mel + scaling kernel.
    CuFft,
}

/// The real type the kernels compute in: f32, or f64 where the output is in dB (an f32 FFT's
/// error swamps the quiet bins a dB scale shows).
pub(crate) trait Real: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync + 'static {
    /// The cuFFT complex type of the same precision.
    type Complex: DeviceRepr + ValidAsZeroBits + Send + Sync + 'static;
    /// Whether this is f64.
    const DOUBLE: bool;
    /// The nearest value to `x`.
    fn of(x: f64) -> Self;
    /// The batched real-to-complex transform of this precision.
    const TRANSFORM: fft::cufftType;
    /// Runs `plan` from `input` into `output`.
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<Self>,
        output: &mut CudaSlice<Self::Complex>,
    ) -> Result<(), CufftError>;
}

impl Real for f32 {
    type Complex = fft::float2;
    const DOUBLE: bool = false;
    const TRANSFORM: fft::cufftType = fft::cufftType::CUFFT_R2C;
    fn of(x: f64) -> Self {
        x as f32
    }
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<f32>,
        output: &mut CudaSlice<fft::float2>,
    ) -> Result<(), CufftError> {
        plan.exec_r2c(input, output)
    }
}

impl Real for f64 {
    type Complex = fft::double2;
    const DOUBLE: bool = true;
    const TRANSFORM: fft::cufftType = fft::cufftType::CUFFT_D2Z;
    fn of(x: f64) -> Self {
        x
    }
    fn execute(
        plan: &CudaFft,
        input: &CudaSlice<f64>,
        output: &mut CudaSlice<fft::double2>,
    ) -> Result<(), CufftError> {
        plan.exec_d2z(input, output)
    }
}

/// What went wrong on the device; `oom` when it ran out of memory (the caller halves and
/// retries).
#[derive(Debug)]
pub(crate) struct DeviceError {
    pub reason: String,
    pub oom: bool,
}

impl From<DriverError> for DeviceError {
    fn from(e: DriverError) -> Self {
        DeviceError { oom: out_of_memory(&e), reason: describe(e) }
    }
}

impl From<CufftError> for DeviceError {
    fn from(e: CufftError) -> Self {
        let oom = e.0 == fft::cufftResult::CUFFT_ALLOC_FAILED;
        DeviceError { reason: format!("cuFFT: {e}"), oom }
    }
}

/// Device memory of one slot, for `longs` long segments at most.
struct Buffers<R: Real> {
    longs: usize,
    signal: CudaSlice<f32>,
    starts: CudaSlice<u32>,
    out: CudaSlice<f32>,
    /// The cuFFT path's frames and spectra.
    frames: Option<(CudaSlice<R>, CudaSlice<R::Complex>)>,
}

/// A stream and its buffers.
struct Slot<R: Real> {
    stream: Arc<CudaStream>,
    host_in: Option<PinnedHostSlice<f32>>,
    host_starts: Option<PinnedHostSlice<u32>>,
    host_out: Option<PinnedHostSlice<f32>>,
    device: Option<Buffers<R>>,
    /// cuFFT plans by number of frames (the last chunk of a batch is shorter).
    plans: Vec<(usize, CudaFft)>,
    /// Output values of the batch in flight.
    in_flight: Option<usize>,
}

/// Host time spent on one batch, per step.
pub(crate) use melkit_core::backend::DeviceTimes as Times;

/// One device.
impl<R: Real> Buffers<R> {
    /// Bytes allocated on the device.
    fn bytes(&self) -> u64 {
        let frames = self.frames.as_ref().map_or(0, |(f, s)| {
            (f.len() * size_of::<R>() + s.len() * size_of::<R::Complex>()) as u64
        });
        ((self.signal.len() + self.out.len()) * 4 + self.starts.len() * 4) as u64 + frames
    }
}

pub(crate) struct Engine<R: Real> {
    ctx: Arc<CudaContext>,
    plan: SegmentPlan,
    path: FftPath,
    fused: CudaFunction,
    framing: CudaFunction,
    mel: CudaFunction,
    frame_index: CudaSlice<i32>,
    window: CudaSlice<R>,
    twiddles: CudaSlice<R>,
    mel_spans: CudaSlice<u32>,
    mel_weights: CudaSlice<R>,
    slots: [Slot<R>; 2],
    /// Long segments per chunk at most (halved on an out-of-memory error).
    pub chunk_longs: usize,
}

fn pinned<T: DeviceRepr + ValidAsZeroBits>(
    ctx: &Arc<CudaContext>,
    buffer: &mut Option<PinnedHostSlice<T>>,
    len: usize,
    read_back: bool,
) -> Result<(), DriverError> {
    if buffer.as_ref().is_some_and(|b| b.len() >= len) {
        return Ok(());
    }
    *buffer = None;
    // Write-combined memory is fast to fill and to upload, slow to read: not for results.
    let flags = if read_back { 0 } else { cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED };
    // SAFETY: the memory is uninitialised, and only ever written before it is read (f32 and u32
    // have no invalid bit patterns anyway).
    #[allow(unsafe_code)]
    let slice = unsafe { ctx.alloc_pinned_with_flags::<T>(len.max(1).next_power_of_two(), flags) }?;
    *buffer = Some(slice);
    Ok(())
}

impl<R: Real> Engine<R> {
    /// Bytes this engine allocated on its device: the tables and both slots' buffers.
    pub fn device_bytes(&self) -> u64 {
        let tables = (self.frame_index.len() * 4 + self.mel_spans.len() * 4) as u64
            + ((self.window.len() + self.twiddles.len() + self.mel_weights.len()) * size_of::<R>())
                as u64;
        tables
            + self.slots.iter().filter_map(|s| s.device.as_ref()).map(Buffers::bytes).sum::<u64>()
    }

    /// The engine on `ctx` for one configuration, its kernels compiled (or taken from the
    /// cache) and its tables uploaded.
    pub fn new(
        ctx: Arc<CudaContext>,
        plan: &SegmentPlan,
        tables: &DeviceTables,
        path: FftPath,
        chunk_longs: usize,
    ) -> Result<Self, DeviceError> {
        let arch = ctx.compute_capability()?;
        let defines = kernels::defines(plan, tables, R::DOUBLE);
        let error = |reason: String| DeviceError { reason, oom: false };
        let mut functions = Vec::new();
        for (file, name) in [
            (kernels::FUSED, "fused"),
            (kernels::FRAMING, "frame_window"),
            (kernels::MEL, "power_mel"),
        ] {
            let ptx = kernels::compile(&kernels::source(&defines, file), arch).map_err(error)?;
            functions.push(ctx.load_module(ptx)?.load_function(name)?);
        }
        let [fused, framing, mel]: [CudaFunction; 3] =
            functions.try_into().map_err(|_| error("kernels missing".into()))?;
        let n = plan.n_fft;
        let twiddles: Vec<R> = (0..n)
            .flat_map(|k| {
                let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                [R::of(angle.cos()), R::of(angle.sin())]
            })
            .collect();
        let stream = ctx.default_stream();
        let reals = |v: &[f64]| v.iter().map(|&x| R::of(x)).collect::<Vec<R>>();
        let spans: Vec<u32> = tables.mel_spans.iter().flatten().copied().collect();
        let engine = Engine {
            frame_index: stream.clone_htod(&tables.frame_index)?,
            window: stream.clone_htod(&reals(&tables.window))?,
            twiddles: stream.clone_htod(&twiddles)?,
            mel_spans: stream.clone_htod(&spans)?,
            mel_weights: stream.clone_htod(&reals(&tables.mel_weights))?,
            slots: [Slot::new(&ctx)?, Slot::new(&ctx)?],
            ctx,
            plan: plan.clone(),
            path,
            fused,
            framing,
            mel,
            chunk_longs: chunk_longs.max(1),
        };
        stream.synchronize()?;
        Ok(engine)
    }

    /// Uploads `batch` and starts computing it on `slot` (which must be free), chunk after
    /// chunk in the slot's stream; on running out of device memory the chunks are halved and
    /// the batch started again.
    pub fn start(
        &mut self,
        slot: usize,
        batch: &SignalBatch,
        times: &mut Times,
    ) -> Result<(), DeviceError> {
        let started = Instant::now();
        loop {
            match self.try_start(slot, batch) {
                Err(e) if e.oom && self.chunk_longs > 1 => {
                    self.slots[slot].stream.synchronize()?;
                    self.chunk_longs /= 2;
                    for s in &mut self.slots {
                        s.device = None;
                        s.plans.clear();
                    }
                    tracing::warn!(
                        "CUDA device {} out of memory: chunks halved to {} long segments",
                        self.ctx.ordinal(),
                        self.chunk_longs
                    );
                }
                other => {
                    if other.is_err() {
                        // Copies of the failed batch may still be queued: let them finish
                        // before the slot's buffers are used again.
                        let _ = self.slots[slot].stream.synchronize();
                    }
                    times.upload += started.elapsed();
                    return other;
                }
            }
        }
    }

    fn try_start(&mut self, slot: usize, batch: &SignalBatch) -> Result<(), DeviceError> {
        let plan = &self.plan;
        let (per_long, starts) = (plan.long_output_len(), batch.long_starts());
        let values = batch.output_len(plan);
        let s = &mut self.slots[slot];
        pinned(&self.ctx, &mut s.host_in, batch.samples().len(), false)?;
        pinned(&self.ctx, &mut s.host_starts, starts.len(), false)?;
        pinned(&self.ctx, &mut s.host_out, values, true)?;
        let longs = self.chunk_longs.min(starts.len()).max(1);
        if s.device.as_ref().is_none_or(|d| d.longs < longs) {
            s.device = None;
            s.device = Some(Buffers::new(&s.stream, plan, longs, self.path == FftPath::CuFft)?);
        }
        let (Some(host_in), Some(host_starts), Some(host_out), Some(dev)) =
            (&mut s.host_in, &mut s.host_starts, &mut s.host_out, &mut s.device)
        else {
            return Err(DeviceError { reason: "slot buffers missing".into(), oom: false });
        };
        let host_in = host_in.as_mut_slice()?;
        host_in[..batch.samples().len()].copy_from_slice(batch.samples());
        let host_starts = host_starts.as_mut_slice()?;
        let host_out = host_out.as_mut_slice()?;
        let stream = s.stream.clone();
        let tables = Tables {
            frame_index: &self.frame_index,
            window: &self.window,
            twiddles: &self.twiddles,
            mel_spans: &self.mel_spans,
            mel_weights: &self.mel_weights,
        };
        for first in (0..starts.len()).step_by(longs) {
            let end = (first + longs).min(starts.len());
            let base = starts[first];
            let stop = starts[end - 1] + plan.long_len;
            for (i, &start) in starts[first..end].iter().enumerate() {
                host_starts[first + i] = (start - base) as u32;
            }
            copy_up(&stream, &host_in[base..stop], &mut dev.signal)?;
            copy_up(&stream, &host_starts[first..end], &mut dev.starts)?;
            let frames = (end - first) * plan.n_short * plan.n_frames;
            match self.path {
                FftPath::Fused => launch_fused(&self.fused, &stream, &tables, dev, plan, frames)?,
                FftPath::CuFft => {
                    let fft_plan = plan_for::<R>(&mut s.plans, &stream, plan.n_fft, frames)?;
                    let kernels = (&self.framing, &self.mel);
                    launch_cufft(kernels, fft_plan, &stream, &tables, dev, plan, frames)?;
                }
            }
            copy_down(&stream, &dev.out, &mut host_out[first * per_long..end * per_long])?;
        }
        s.in_flight = Some(values);
        Ok(())
    }

    /// Waits for the batch in flight on `slot` and copies its output into `out`.
    pub fn wait(
        &mut self,
        slot: usize,
        out: &mut [f32],
        times: &mut Times,
    ) -> Result<(), DeviceError> {
        let s = &mut self.slots[slot];
        let Some(values) = s.in_flight.take() else { return Ok(()) };
        let started = Instant::now();
        s.stream.synchronize()?;
        times.kernel += started.elapsed();
        let started = Instant::now();
        if let Some(host_out) = &mut s.host_out {
            out[..values].copy_from_slice(&host_out.as_mut_slice()?[..values]);
        }
        times.download += started.elapsed();
        Ok(())
    }
}

/// The constant tables on the device, as the kernels take them.
struct Tables<'a, R: Real> {
    frame_index: &'a CudaSlice<i32>,
    window: &'a CudaSlice<R>,
    twiddles: &'a CudaSlice<R>,
    mel_spans: &'a CudaSlice<u32>,
    mel_weights: &'a CudaSlice<R>,
}

impl<R: Real> Slot<R> {
    fn new(ctx: &Arc<CudaContext>) -> Result<Self, DriverError> {
        Ok(Slot {
            stream: ctx.new_stream()?,
            host_in: None,
            host_starts: None,
            host_out: None,
            device: None,
            plans: Vec::new(),
            in_flight: None,
        })
    }
}

impl<R: Real> Buffers<R> {
    fn new(
        stream: &Arc<CudaStream>,
        plan: &SegmentPlan,
        longs: usize,
        cufft: bool,
    ) -> Result<Self, DriverError> {
        let frames = longs * plan.n_short * plan.n_frames;
        let samples = (longs - 1) * plan.long_hop + plan.long_len;
        // SAFETY: every buffer is written (by a copy or a kernel) before it is read.
        #[allow(unsafe_code)]
        unsafe {
            Ok(Buffers {
                longs,
                signal: stream.alloc(samples)?,
                starts: stream.alloc(longs)?,
                out: stream.alloc(longs * plan.long_output_len())?,
                frames: if cufft {
                    Some((
                        stream.alloc(frames * plan.n_fft)?,
                        stream.alloc(frames * (plan.n_fft / 2 + 1))?,
                    ))
                } else {
                    None
                },
            })
        }
    }
}

/// Copies `host` (pinned memory) into the start of `device`, asynchronously in `stream`.
fn copy_up<T: DeviceRepr>(
    stream: &CudaStream,
    host: &[T],
    device: &mut CudaSlice<T>,
) -> Result<(), DriverError> {
    let (ptr, _record) = device.device_ptr_mut(stream);
    // SAFETY: `host` is page-locked memory of the slot, which is neither written nor freed
    // before the slot's stream is synchronised; the device buffer holds a chunk's values.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::driver::result::memcpy_htod_async(ptr, host, stream.cu_stream())
    }
}

/// Copies the start of `device` into `host` (pinned memory), asynchronously in `stream`.
fn copy_down<T: DeviceRepr>(
    stream: &CudaStream,
    device: &CudaSlice<T>,
    host: &mut [T],
) -> Result<(), DriverError> {
    let (ptr, _record) = cudarc::driver::DevicePtr::device_ptr(device, stream);
    // SAFETY: as for `copy_up`; the host memory is read only after the stream is synchronised.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::driver::result::memcpy_dtoh_async(host, ptr, stream.cu_stream())
    }
}

/// The cuFFT plan for `frames` transforms of `n` points (a few kept, the last chunk of a batch
/// being shorter).
fn plan_for<'p, R: Real>(
    plans: &'p mut Vec<(usize, CudaFft)>,
    stream: &Arc<CudaStream>,
    n: usize,
    frames: usize,
) -> Result<&'p CudaFft, DeviceError> {
    if let Some(i) = plans.iter().position(|(f, _)| *f == frames) {
        return Ok(&plans[i].1);
    }
    if plans.len() >= 4 {
        plans.remove(0);
    }
    let bins = (n / 2 + 1) as i32;
    let n = n as i32;
    let plan = CudaFft::plan_many(
        &[n],
        None,
        1,
        n,
        None,
        1,
        bins,
        R::TRANSFORM,
        frames as i32,
        stream.clone(),
    )?;
    plans.push((frames, plan));
    Ok(&plans[plans.len() - 1].1)
}

fn blocks(threads: usize, per_block: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((threads as u64).div_ceil(u64::from(per_block)) as u32, 1, 1),
        block_dim: (per_block, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn launch_fused<R: Real>(
    fused: &CudaFunction,
    stream: &CudaStream,
    t: &Tables<'_, R>,
    dev: &mut Buffers<R>,
    plan: &SegmentPlan,
    frames: usize,
) -> Result<(), DriverError> {
    let config = LaunchConfig {
        grid_dim: (frames.div_ceil(2) as u32, 1, 1),
        block_dim: (kernels::fused_threads(plan.n_fft), 1, 1),
        shared_mem_bytes: kernels::fused_shared_bytes(plan.n_fft, std::mem::size_of::<R>()) as u32,
    };
    let frames = frames as u32;
    let mut launch = stream.launch_builder(fused);
    launch
        .arg(&dev.signal)
        .arg(&dev.starts)
        .arg(t.frame_index)
        .arg(t.window)
        .arg(t.twiddles)
        .arg(t.mel_spans)
        .arg(t.mel_weights)
        .arg(&mut dev.out)
        .arg(&frames);
    // SAFETY: the arguments match the kernel's signature in fused.cu, and every buffer holds
    // what the launch reads or writes for `frames` frames.
    #[allow(unsafe_code)]
    unsafe { launch.launch(config) }.map(|_| ())
}

#[allow(clippy::too_many_arguments)]
fn launch_cufft<R: Real>(
    (framing, mel): (&CudaFunction, &CudaFunction),
    fft_plan: &CudaFft,
    stream: &CudaStream,
    t: &Tables<'_, R>,
    dev: &mut Buffers<R>,
    plan: &SegmentPlan,
    frames: usize,
) -> Result<(), DeviceError> {
    let Some((framed, spectrum)) = &mut dev.frames else {
        return Err(DeviceError { reason: "no cuFFT buffers".into(), oom: false });
    };
    let total = frames as u32;
    let mut launch = stream.launch_builder(framing);
    launch
        .arg(&dev.signal)
        .arg(&dev.starts)
        .arg(t.frame_index)
        .arg(t.window)
        .arg(&mut *framed)
        .arg(&total);
    // SAFETY: the arguments match `frame_window` in framing.cu; `framed` holds frames × N.
    #[allow(unsafe_code)]
    unsafe { launch.launch(blocks(frames * plan.n_fft, 256)) }?;
    R::execute(fft_plan, framed, spectrum)?;
    let mut launch = stream.launch_builder(mel);
    launch.arg(&*spectrum).arg(t.mel_spans).arg(t.mel_weights).arg(&mut dev.out).arg(&total);
    // SAFETY: the arguments match `power_mel` in mel.cu; `spectrum` holds frames × BINS.
    #[allow(unsafe_code)]
    unsafe { launch.launch(blocks(frames * plan.n_mels, 256)) }?;
    Ok(())
}
