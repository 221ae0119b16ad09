//! One device's share of the CUDA backend, on any [`Device`]: its kernels, its constant tables,
//! and two slots, each a stream with host and device buffers reused from batch to batch, so
//! that one batch is uploaded and computed while the other is read back. A batch goes through
//! in chunks (core's chunk planner), its buffers sized from the largest chunk's real span; on
//! running out of device memory the chunks are halved and the batch started again.

use std::time::Instant;

use melkit_core::backend::SignalBatch;
use melkit_core::device::DeviceTables;
use melkit_core::device::chunks::{self, Chunk, ChunkSize};
use melkit_core::plan::SegmentPlan;

use crate::device::{ChunkArgs, Device, DeviceError, Elem, Launch, Real, Tables};
use crate::kernels;

/// The two FFT paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftPath {
    /// One launch per chunk: framing, FFT in shared memory, power, mel and scaling fused.
    Fused,
    /// Framing kernel → cuFFT batched R2C (D2Z for f64) → power + mel + scaling kernel.
    CuFft,
}

/// Host time spent on one batch, per step.
pub(crate) use melkit_core::backend::DeviceTimes as Times;

/// The cuFFT path's frames and their spectra, on the device.
type Spectra<D, R> = (<D as Device>::Buffer<R>, <D as Device>::Buffer<<R as Real>::Complex>);

/// Device memory of one slot, for chunks up to `size`.
struct Buffers<D: Device, R: Real> {
    size: ChunkSize,
    signal: D::Buffer<f32>,
    starts: D::Buffer<u32>,
    out: D::Buffer<f32>,
    /// The cuFFT path's frames and spectra.
    frames: Option<Spectra<D, R>>,
}

/// A stream and its buffers.
struct Slot<D: Device, R: Real> {
    stream: D::Stream,
    host_in: Option<D::Host<f32>>,
    host_starts: Option<D::Host<u32>>,
    host_out: Option<D::Host<f32>>,
    device: Option<Buffers<D, R>>,
    /// FFT plans by number of frames (the last chunk of a batch is shorter).
    plans: Vec<(usize, D::Fft)>,
    /// Output values of the batch in flight.
    in_flight: Option<usize>,
}

/// One device.
pub(crate) struct Engine<D: Device, R: Real> {
    device: D,
    plan: SegmentPlan,
    path: FftPath,
    kernels: D::Kernels,
    tables: Tables<D, R>,
    slots: [Slot<D, R>; 2],
    /// Long segments per chunk at most (halved on an out-of-memory error).
    pub chunk_longs: usize,
    /// Bytes of the tables on the device.
    table_bytes: u64,
    /// Device memory a slot's buffers may take.
    slot_bytes: u64,
    /// Long segments per chunk as asked for, whatever the memory.
    fixed_longs: Option<usize>,
}

/// Device memory a slot's buffers may take at most, whatever the device has free.
const SLOT_BYTES: usize = 512 << 20;

impl<D: Device, R: Real> Engine<D, R> {
    /// The engine on `device` for one configuration, its kernels compiled and its tables
    /// uploaded; chunks of `fixed_longs` long segments, or as many as an eighth of the free
    /// memory holds (two slots, and room to spare).
    pub fn new(
        device: D,
        plan: &SegmentPlan,
        tables: &DeviceTables,
        path: FftPath,
        fixed_longs: Option<usize>,
    ) -> Result<Self, DeviceError> {
        let kernels = device.compile(&kernels::defines(plan, tables, R::DOUBLE))?;
        let n = plan.n_fft;
        let twiddles: Vec<R> = (0..n)
            .flat_map(|k| {
                let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                [R::of(angle.cos()), R::of(angle.sin())]
            })
            .collect();
        let stream = device.new_stream()?;
        let reals = |v: &[f64]| v.iter().map(|&x| R::of(x)).collect::<Vec<R>>();
        let spans: Vec<u32> = tables.mel_spans.iter().flatten().copied().collect();
        let table_bytes = (tables.frame_index.len() + spans.len()) * 4
            + (tables.window.len() + twiddles.len() + tables.mel_weights.len()) * size_of::<R>();
        let tables = Tables {
            frame_index: device.upload_table(&stream, &tables.frame_index)?,
            window: device.upload_table(&stream, &reals(&tables.window))?,
            twiddles: device.upload_table(&stream, &twiddles)?,
            mel_spans: device.upload_table(&stream, &spans)?,
            mel_weights: device.upload_table(&stream, &reals(&tables.mel_weights))?,
        };
        let slots = [Slot::new(&device)?, Slot::new(&device)?];
        let slot_bytes = (device.free_memory()? / 8).min(SLOT_BYTES) as u64;
        let mut engine = Engine {
            device,
            plan: plan.clone(),
            path,
            kernels,
            tables,
            slots,
            chunk_longs: 1,
            table_bytes: table_bytes as u64,
            slot_bytes,
            fixed_longs,
        };
        engine.set_path(path);
        Ok(engine)
    }

    /// Computes on `path` from now on, its chunks sized for it.
    pub fn set_path(&mut self, path: FftPath) {
        self.path = path;
        for s in &mut self.slots {
            s.device = None;
            s.plans.clear();
        }
        let p = &self.plan;
        let real = size_of::<R>();
        let frames = (p.n_short * p.n_frames) as u64;
        let mut per_long = (p.long_len.max(p.long_hop) + 1 + p.long_output_len()) as u64 * 4;
        if path == FftPath::CuFft {
            per_long += frames * (p.n_fft + 2 * (p.n_fft / 2 + 1)) as u64 * real as u64;
        }
        self.chunk_longs = self
            .fixed_longs
            .unwrap_or_else(|| chunks::longs_within(self.slot_bytes, per_long))
            .max(1);
    }

    /// Bytes this engine allocated on its device: the tables and both slots' buffers.
    pub fn device_bytes(&self) -> u64 {
        let slots: usize = self
            .slots
            .iter()
            .filter_map(|s| s.device.as_ref())
            .map(|b| {
                let frames = b.frames.as_ref().map_or(0, |(f, s)| {
                    D::len(f) * size_of::<R>() + D::len(s) * size_of::<R::Complex>()
                });
                (D::len(&b.signal) + D::len(&b.starts) + D::len(&b.out)) * 4 + frames
            })
            .sum();
        self.table_bytes + slots as u64
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> usize {
        self.device.ordinal()
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
                    // Every queued operation finishes (or fails) before buffers and FFT plans
                    // go (a plan is destroyed at once, not in stream order).
                    for s in &self.slots {
                        let _ = self.device.synchronize(&s.stream);
                    }
                    self.chunk_longs /= 2;
                    for s in &mut self.slots {
                        s.device = None;
                        s.plans.clear();
                    }
                    tracing::warn!(
                        "{} device {} out of memory ({}): chunks halved to {} long segments",
                        D::NAME,
                        self.device.ordinal(),
                        e.reason,
                        self.chunk_longs
                    );
                }
                other => {
                    if other.is_err() {
                        // Copies of the failed batch may still be queued: let them finish
                        // before the slot's buffers are used again.
                        let _ = self.device.synchronize(&self.slots[slot].stream);
                    }
                    times.upload += started.elapsed();
                    return other;
                }
            }
        }
    }

    fn try_start(&mut self, slot: usize, batch: &SignalBatch) -> Result<(), DeviceError> {
        let plan = &self.plan;
        let d = &self.device;
        let values = batch.output_len(plan);
        let all: Vec<Chunk> = chunks::chunks(batch, plan, self.chunk_longs).collect();
        let need = chunks::largest(batch, plan, self.chunk_longs);
        let s = &mut self.slots[slot];
        host(d, &mut s.host_in, batch.samples_len(), false)?;
        host(d, &mut s.host_starts, batch.n_long(), false)?;
        host(d, &mut s.host_out, values, true)?;
        if !s.device.as_ref().is_some_and(|b| b.size.holds(need)) {
            let size = s.device.as_ref().map_or(need, |b| b.size.max(need));
            s.device = None;
            s.plans.clear();
            s.device = Some(Buffers::new(d, &s.stream, plan, size, self.path == FftPath::CuFft)?);
        }
        let (Some(host_in), Some(host_starts), Some(host_out), Some(dev)) =
            (&mut s.host_in, &mut s.host_starts, &mut s.host_out, &mut s.device)
        else {
            return Err(DeviceError::new("slot buffers missing"));
        };
        for (start, part) in batch.parts() {
            D::write_host(host_in, start, part)?;
        }
        for chunk in &all {
            let rebased: Vec<u32> = chunk.starts(batch).collect();
            D::write_host(host_starts, chunk.longs.start, &rebased)?;
            d.upload(&s.stream, host_in, chunk.samples.clone(), &mut dev.signal)?;
            d.upload(&s.stream, host_starts, chunk.longs.clone(), &mut dev.starts)?;
            let frames = chunk.frames(plan);
            let outputs = chunk.outputs(plan);
            fits("output", outputs.len(), D::len(&dev.out))?;
            let args =
                ChunkArgs { signal: &dev.signal, starts: &dev.starts, frames: frames as u32 };
            let t = &self.tables;
            match self.path {
                FftPath::Fused => {
                    let launch = Launch {
                        blocks: frames.div_ceil(2) as u32,
                        threads: kernels::fused_threads(plan.n_fft),
                        shared_bytes: kernels::fused_shared_bytes(plan.n_fft, size_of::<R>())
                            as u32,
                    };
                    d.fused(&s.stream, &self.kernels, launch, (t, args), &mut dev.out)?;
                }
                FftPath::CuFft => {
                    let Some((framed, spectra)) = &mut dev.frames else {
                        return Err(DeviceError::new("no cuFFT buffers"));
                    };
                    fits("frames", frames * plan.n_fft, D::len(framed))?;
                    fits("spectra", frames * (plan.n_fft / 2 + 1), D::len(spectra))?;
                    let launch = Launch::per_item(frames * plan.n_fft, 256);
                    d.framing(&s.stream, &self.kernels, launch, (t, args), framed)?;
                    let fft = plan_for::<D, R>(d, &mut s.plans, &s.stream, plan.n_fft, frames)?;
                    d.fft::<R>(&s.stream, fft, framed, spectra)?;
                    let launch = Launch::per_item(frames * plan.n_mels, 256);
                    let args = (t, &*spectra, frames as u32);
                    d.power_mel(&s.stream, &self.kernels, launch, args, &mut dev.out)?;
                }
            }
            d.download(&s.stream, &dev.out, host_out, outputs)?;
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
        self.device.synchronize(&s.stream)?;
        times.kernel += started.elapsed();
        let started = Instant::now();
        let Some(host_out) = &mut s.host_out else {
            return Err(DeviceError::new("slot buffers missing"));
        };
        D::read_host(host_out, 0, &mut out[..values])?;
        times.download += started.elapsed();
        Ok(())
    }
}

impl<D: Device, R: Real> Drop for Engine<D, R> {
    /// Waits for both slots' queued work before the host buffers and FFT plans it uses go.
    fn drop(&mut self) {
        for s in &self.slots {
            let _ = self.device.synchronize(&s.stream);
        }
    }
}

/// A kernel's `need` values of `what` against a buffer of `have`: an error, never an overrun.
fn fits(what: &str, need: usize, have: usize) -> Result<(), DeviceError> {
    if need > have {
        return Err(DeviceError::new(format!(
            "a chunk needs {need} values of {what} but the device buffer holds {have}"
        )));
    }
    Ok(())
}

/// Makes `buffer` hold at least `len` values (grown to a power of two, so that batches of
/// varying sizes settle on one buffer).
fn host<D: Device, T: Elem>(
    device: &D,
    buffer: &mut Option<D::Host<T>>,
    len: usize,
    read_back: bool,
) -> Result<(), DeviceError> {
    if buffer.as_ref().is_some_and(|b| D::host_len(b) >= len) {
        return Ok(());
    }
    *buffer = None;
    // Host buffers hold the whole batch: smaller chunks would not help, so running out of
    // page-locked memory is not an out-of-memory the engine halves its chunks for.
    let allocated = device.alloc_host(len.max(1).next_power_of_two(), read_back);
    *buffer = Some(allocated.map_err(|e| DeviceError::new(e.reason))?);
    Ok(())
}

impl<D: Device, R: Real> Slot<D, R> {
    fn new(device: &D) -> Result<Self, DeviceError> {
        Ok(Slot {
            stream: device.new_stream()?,
            host_in: None,
            host_starts: None,
            host_out: None,
            device: None,
            plans: Vec::new(),
            in_flight: None,
        })
    }
}

impl<D: Device, R: Real> Buffers<D, R> {
    /// Buffers for chunks up to `size`: its samples and long segments, their output, and on
    /// the cuFFT path their frames and spectra.
    fn new(
        device: &D,
        stream: &D::Stream,
        plan: &SegmentPlan,
        size: ChunkSize,
        cufft: bool,
    ) -> Result<Self, DeviceError> {
        let frames = size.longs * plan.n_short * plan.n_frames;
        Ok(Buffers {
            size,
            signal: device.alloc(stream, size.samples)?,
            starts: device.alloc(stream, size.longs)?,
            out: device.alloc(stream, size.longs * plan.long_output_len())?,
            frames: if cufft {
                Some((
                    device.alloc(stream, frames * plan.n_fft)?,
                    device.alloc(stream, frames * (plan.n_fft / 2 + 1))?,
                ))
            } else {
                None
            },
        })
    }
}

/// The FFT plan for `frames` transforms of `n` points (the four most recently used kept: the
/// last chunk of a batch is shorter).
fn plan_for<'p, D: Device, R: Real>(
    device: &D,
    plans: &'p mut Vec<(usize, D::Fft)>,
    stream: &D::Stream,
    n: usize,
    frames: usize,
) -> Result<&'p D::Fft, DeviceError> {
    if let Some(i) = plans.iter().position(|(f, _)| *f == frames) {
        // The most recently used last, so that eviction takes the least recently used.
        let hit = plans.remove(i);
        plans.push(hit);
        return Ok(&plans[plans.len() - 1].1);
    }
    if plans.len() >= 4 {
        // Work queued on the stream may still use the plan: it is destroyed at once.
        device.synchronize(stream)?;
        plans.remove(0);
    }
    plans.push((frames, device.fft_plan::<R>(stream, n, frames)?));
    Ok(&plans[plans.len() - 1].1)
}
