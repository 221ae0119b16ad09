//! melkit-backend-wgpu: the portable GPU backend. One fused WGSL kernel per configuration
//! (framing + window → FFT in workgroup memory → power → sparse mel → scaling, one workgroup
//! per frame; a direct DFT when `n_fft` is not a power of two), run through wgpu on Vulkan,
//! Metal or DX12, and on a CPU through Mesa's lavapipe. The signal is uploaded once per batch
//! and framed on the device; the tables and pipeline are built once; a batch larger than the
//! adapter's buffer limits is split into chunks computed two at a time, and batches submitted
//! as a stream are kept in flight, so the readback of one chunk or batch overlaps the compute
//! of the next.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod gpu;
mod stream;
pub mod tables;

use std::ops::Range;

use melkit_core::backend::{Backend, Done, Job, SignalBatch, StepTimings, check_output};
use melkit_core::config::Config;
use melkit_core::device::chunks::{self, Chunk};
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;

pub use gpu::{AdapterSummary, adapters};
use gpu::{Gpu, Refusal, Times};
use stream::Stream;
use tables::Tables;

/// Device memory for one chunk's signal and output at most (each buffer), whatever the
/// adapter allows, so two chunks in flight stay modest.
const CHUNK_BYTES: u64 = 64 << 20;

/// The wgpu backend (see the crate documentation).
pub struct WgpuBackend {
    plan: SegmentPlan,
    tables: Tables,
    gpu: Gpu,
    /// Long segments per chunk at most.
    chunk_longs: usize,
    /// The jobs submitted and not yet given back.
    stream: Stream,
    /// A chunk's samples gathered from several parts of its batch, kept for the next chunk.
    gathered: Vec<f32>,
}

fn unavailable(reason: impl ToString) -> BackendError {
    BackendError::Unavailable { backend: "wgpu", reason: reason.to_string() }
}

fn failed(reason: impl ToString) -> BackendError {
    BackendError::Failed { backend: "wgpu", reason: reason.to_string() }
}

impl WgpuBackend {
    /// The backend on the best adapter of this machine (a CPU adapter only when there is no
    /// other).
    ///
    /// # Errors
    /// An invalid configuration, no adapter ("no GPU adapter"), or an adapter too small for
    /// it ([`BackendError::Unsupported`]).
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        Self::with_chunk_bytes(config, CHUNK_BYTES)
    }

    /// As [`new`](Self::new), with chunks of at most `chunk_bytes` of signal or output (a batch
    /// is split into as many chunks as it needs; the adapter's limits still apply).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_chunk_bytes(config: &Config, chunk_bytes: u64) -> Result<Self, BackendError> {
        Self::build(config, chunk_bytes, true)?.ok_or_else(|| unavailable("no GPU adapter"))
    }

    /// The backend on the best GPU of this machine, or `Ok(None)` when wgpu sees none but CPU
    /// adapters (where the CPU backend is faster): what `--backend auto` asks for, with one
    /// look at the adapters.
    ///
    /// # Errors
    /// An invalid configuration, or a GPU that cannot be used.
    pub fn on_gpu(config: &Config) -> Result<Option<Self>, BackendError> {
        Self::build(config, CHUNK_BYTES, false)
    }

    fn build(
        config: &Config,
        chunk_bytes: u64,
        allow_cpu: bool,
    ) -> Result<Option<Self>, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let tables = Tables::new(config, &plan);
        let gpu = match Gpu::new(&tables, plan.n_fft, allow_cpu) {
            Ok(Some(gpu)) => gpu,
            Ok(None) => return Ok(None),
            Err(Refusal::TooLarge(reason)) => {
                return Err(BackendError::Unsupported { backend: "wgpu", reason });
            }
            Err(Refusal::Failed(reason)) => return Err(unavailable(reason)),
        };
        let limit = gpu.max_binding().min(chunk_bytes);
        let chunk_longs = chunks::longs_within(limit, chunks::bytes_per_long(&plan));
        Ok(Some(WgpuBackend {
            plan,
            tables,
            gpu,
            chunk_longs,
            stream: Stream::default(),
            gathered: Vec::new(),
        }))
    }

    /// The adapter this backend computes on.
    pub fn adapter(&self) -> &AdapterSummary {
        self.gpu.summary()
    }

    /// The shader's `Params` for a chunk of `longs` long segments.
    fn params(&self, total_frames: u32, groups_x: u32) -> Vec<u8> {
        let t = &self.tables;
        let p = &self.plan;
        let words: [u32; 8] = [
            total_frames,
            p.n_short as u32,
            p.n_frames as u32,
            p.n_mels as u32,
            p.short_hop as u32,
            groups_x,
            t.power_mode,
            u32::from(t.db),
        ];
        let floats: [f32; 8] =
            [t.power, t.db_params.0, t.db_params.1, t.db_params.2, 1.0, 0.0, 0.0, 0.0];
        let mut bytes = bytemuck::cast_slice(&words).to_vec();
        bytes.extend_from_slice(bytemuck::cast_slice(&floats));
        bytes
    }
}

impl Backend for WgpuBackend {
    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    fn on_device(&self) -> bool {
        true
    }

    fn device_memory(&self) -> Option<u64> {
        Some(self.gpu.memory())
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        check_output(&self.plan, batch, out)?;
        if !self.stream.is_idle() {
            return Err(failed("compute() called with submitted batches in flight"));
        }
        let mut times = Times::default();
        let mut in_flight: [Option<Range<usize>>; 2] = [None, None];
        let all: Vec<Chunk> = chunks::chunks(batch, &self.plan, self.chunk_longs).collect();
        for (i, chunk) in all.iter().enumerate() {
            let slot = i % 2;
            if let Some(done) = in_flight[slot].take() {
                self.gpu.finish(slot, &mut out[done], &mut times).map_err(failed)?;
            }
            self.submit_chunk(slot, batch, chunk, &mut times)?;
            in_flight[slot] = Some(chunk.outputs(&self.plan));
        }
        // The last chunks, oldest first.
        let mut left: Vec<(usize, Range<usize>)> =
            in_flight.iter_mut().enumerate().filter_map(|(s, r)| Some((s, r.take()?))).collect();
        left.sort_by_key(|(_, r)| r.start);
        for (slot, done) in left {
            self.gpu.finish(slot, &mut out[done], &mut times).map_err(failed)?;
        }
        Ok(times.steps())
    }

    fn submit(&mut self, job: Job) -> Option<Done> {
        let mut job = job;
        job.out.resize(job.batch.output_len(&self.plan), 0.0);
        let all: Vec<Chunk> = chunks::chunks(&job.batch, &self.plan, self.chunk_longs).collect();
        let seq = self.stream.push(job);
        for chunk in all {
            let slot = self.stream.take_slot();
            self.finish_slot(slot);
            let Some(flight) = self.stream.flight(seq) else { break };
            let (batch, mut times) = (std::mem::take(&mut flight.job.batch), flight.times);
            let submitted = self.submit_chunk(slot, &batch, &chunk, &mut times);
            let Some(flight) = self.stream.flight(seq) else { break };
            (flight.job.batch, flight.times) = (batch, times);
            match submitted {
                Ok(()) => self.stream.occupy(slot, seq, chunk.outputs(&self.plan)),
                Err(e) => {
                    self.stream.fail(seq, e);
                    break;
                }
            }
        }
        // Read the previous job back while this one computes.
        if self.stream.len() > 1 { self.flush() } else { None }
    }

    fn flush(&mut self) -> Option<Done> {
        for slot in self.stream.slots_of_oldest() {
            self.finish_slot(slot);
        }
        self.stream.pop()
    }
}

impl WgpuBackend {
    /// Uploads and dispatches `chunk` of `batch` in `slot` (whose previous chunk must be
    /// finished).
    fn submit_chunk(
        &mut self,
        slot: usize,
        batch: &SignalBatch,
        chunk: &Chunk,
        times: &mut Times,
    ) -> Result<(), BackendError> {
        let rel: Vec<u32> = chunk.starts(batch).collect();
        let frames = chunk.frames(&self.plan) as u32;
        let groups_x = frames.min(self.gpu.max_groups_x());
        let groups_y = frames.div_ceil(groups_x);
        let params = self.params(frames, groups_x);
        // Borrowed where one part of the batch holds the chunk's samples, else gathered into
        // the buffer kept for that.
        let mut gathered = std::mem::take(&mut self.gathered);
        let signal = match batch.within_part(chunk.samples.clone()) {
            Some(samples) => samples,
            None => {
                batch.gather(chunk.samples.clone(), &mut gathered);
                &gathered
            }
        };
        let values = chunk.outputs(&self.plan).len();
        let upload = (signal, rel.as_slice(), params.as_slice());
        let submitted = self.gpu.submit(slot, upload, (groups_x, groups_y), values, times);
        self.gathered = gathered;
        submitted.map_err(failed)
    }

    /// Waits for the streamed chunk in `slot`, if any, and copies it into its job's output (or
    /// records the job's error).
    fn finish_slot(&mut self, slot: usize) {
        let Some((seq, range)) = self.stream.vacate(slot) else { return };
        let Some(flight) = self.stream.flight(seq) else { return };
        let out = &mut flight.job.out[range];
        if let Err(e) = self.gpu.finish(slot, out, &mut flight.times) {
            flight.error.get_or_insert(failed(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The double-float FFT against an exact formula: two impulses of 0.5 give the power
    /// 0.5 · (1 + cos 2πk·d/N) in bin k, which falls to 1e-4 of the peak and below, where an
    /// f32 FFT is off by more than 1e-6 (relative) and a compiler that cancels the error terms
    /// of the double-float arithmetic shows at once.
    #[test]
    fn the_double_float_fft_is_exact_where_f32_is_not() {
        melkit_core::testing::quiet_lavapipe();
        let mut config = Config::default();
        config.set("scale", "db").unwrap();
        config.set("window", "boxcar").unwrap();
        config.validate().unwrap();
        let plan = SegmentPlan::new(&config).unwrap();
        let tables = Tables::new(&config, &plan);
        // The kernel with its mel projection replaced by the power spectrum itself.
        let source = tables::shader_source(plan.n_fft, true).replace(
            "    write_mels(f, lid);",
            "    _ = mel_weights[0];\n    for (var k = lid; k < BINS; k += WG) { out[out_index(f, k)] = power_at(k); }",
        );
        let mut gpu = match Gpu::with_source(&tables, plan.n_fft, true, source) {
            Ok(Some(gpu)) => gpu,
            other => {
                let reason = match other {
                    Err(Refusal::TooLarge(r) | Refusal::Failed(r)) => r,
                    _ => "no GPU adapter".into(),
                };
                let required = melkit_core::testing::gpu_required("wgpu");
                assert!(!required, "wgpu is required but unavailable: {reason}");
                eprintln!("skipping: wgpu is unavailable: {reason}");
                return;
            }
        };
        let (t, i0, i1) = (6usize, 37usize, 166usize);
        let mut signal = vec![0.0f32; plan.long_len];
        signal[t * plan.hop_length - plan.n_fft / 2 + i0] = 0.5;
        signal[t * plan.hop_length - plan.n_fft / 2 + i1] = 0.5;
        let frames = (plan.n_short * plan.n_frames) as u32;
        let bins = plan.n_fft / 2 + 1;
        let words = [frames, plan.n_short as u32, plan.n_frames as u32, bins as u32];
        let words = [words, [plan.short_hop as u32, frames, 0, 1]].concat();
        let floats: [f32; 8] = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let mut params = bytemuck::cast_slice(&words).to_vec();
        params.extend_from_slice(bytemuck::cast_slice(&floats));
        let values = plan.n_short * bins * plan.n_frames;
        let mut out = vec![0.0f32; values];
        let mut times = Times::default();
        gpu.submit(0, (&signal, &[0u32], &params), (frames, 1), values, &mut times).unwrap();
        gpu.finish(0, &mut out, &mut times).unwrap();
        for k in 0..bins {
            let d = (i1 - i0) as f64;
            let want = 0.5 * (1.0 + (2.0 * std::f64::consts::PI * k as f64 * d / 256.0).cos());
            let got = f64::from(out[k * plan.n_frames + t]);
            assert!(
                (got - want).abs() <= 1e-6 * want + 1e-30,
                "bin {k}: {got:e}, exactly {want:e}"
            );
        }
    }
}
