//! melkit-backend-cpu: the CPU backend. realfft plans prepared once, frames taken straight from
//! the prepared signal, window → FFT → power → sparse mel → scale fused per short segment so a
//! spectrum never leaves the cache, and rayon across every long segment of the batch.
//!
//! The FFT runs in f32, or in f64 when the output is in dB: there values far below a frame's
//! peak matter, and f32 rounding of the transform (about 1e-7 of the peak magnitude) would
//! otherwise decide the bins near the `amin` floor.
//!
//! Two FFT paths: the lane engine (eight frames per transform, one per SIMD lane, or sixteen in
//! f32 with AVX-512, for every power-of-two `n_fft`) and the pair engine (realfft-style: two
//! frames per complex rustfft transform, for any `n_fft`). [`CpuBackend::new`] picks the lane
//! engine where it applies, and the widest instructions the CPU has ([`Simd`]).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod engine;
mod lane_engine;
mod lanes;
mod mel;
mod simd;
mod table;
mod taps;
mod vector;

use melkit_core::backend::{Backend, SignalBatch, StepTimings, check_output};
use melkit_core::config::{Config, Scale};
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;
use std::ops::Range;

use crate::engine::Engine;
use crate::lane_engine::LaneEngine;
pub use crate::simd::Simd;

/// The transform in the precision the configuration needs, on one of the two paths.
enum Precision {
    Single(Engine<f32>),
    Double(Engine<f64>),
    LanesSingle(LaneEngine<[f32; 8]>),
    /// Eight f32 lanes in AVX2 registers.
    #[cfg(target_arch = "x86_64")]
    LanesAvx2(LaneEngine<vector::F32x8>),
    /// Sixteen f32 lanes in AVX-512 registers.
    #[cfg(target_arch = "x86_64")]
    LanesWide(LaneEngine<vector::F32x16>),
    LanesDouble(LaneEngine<[f64; 8]>),
    /// Eight f64 lanes in AVX-512 registers.
    #[cfg(target_arch = "x86_64")]
    LanesDoubleWide(LaneEngine<vector::F64x8>),
}

/// Which FFT path the CPU backend takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuFft {
    /// Eight or sixteen frames per transform, one per SIMD lane (power-of-two `n_fft` only;
    /// otherwise the pair path).
    Lanes,
    /// Two frames per complex rustfft transform (any `n_fft`).
    Pairs,
}

/// The CPU backend (see the crate documentation).
pub struct CpuBackend {
    plan: SegmentPlan,
    engine: Precision,
}

impl CpuBackend {
    /// The CPU backend for a configuration (validated here).
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        Self::with_fft(config, CpuFft::Lanes)
    }

    /// The CPU backend on a chosen FFT path (for comparisons; [`CpuBackend::new`] picks the
    /// faster).
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn with_fft(config: &Config, fft: CpuFft) -> Result<Self, BackendError> {
        Self::with_simd(config, fft, Simd::detect())
    }

    /// The CPU backend on a chosen FFT path, its lane path limited to the instruction set
    /// `simd` (or what the CPU has, where that is less): for tests and comparisons.
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn with_simd(config: &Config, fft: CpuFft, simd: Simd) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let double = config.scale == Scale::Db;
        let simd = simd.min(Simd::detect());
        // Eight-lane arrays are vectorised by LLVM for AVX2 at most (under AVX-512 it merged
        // their halves into shuffles and gathers); registers are intrinsics: AVX-512's, and
        // AVX2's for f32 (about 20 % faster than the arrays there).
        let narrow = simd.min(Simd::Avx2Fma);
        let engine = match (fft, double, simd) {
            (CpuFft::Pairs, ..) => None,
            #[cfg(target_arch = "x86_64")]
            (CpuFft::Lanes, true, Simd::Avx512) => {
                LaneEngine::new(config, &plan, simd).map(Precision::LanesDoubleWide)
            }
            (CpuFft::Lanes, true, _) => {
                LaneEngine::new(config, &plan, narrow).map(Precision::LanesDouble)
            }
            #[cfg(target_arch = "x86_64")]
            (CpuFft::Lanes, false, Simd::Avx512) => {
                LaneEngine::new(config, &plan, simd).map(Precision::LanesWide)
            }
            #[cfg(target_arch = "x86_64")]
            (CpuFft::Lanes, false, Simd::Avx2Fma) => {
                LaneEngine::new(config, &plan, simd).map(Precision::LanesAvx2)
            }
            (CpuFft::Lanes, false, _) => {
                LaneEngine::new(config, &plan, narrow).map(Precision::LanesSingle)
            }
        };
        let engine = engine.unwrap_or_else(|| match double {
            true => Precision::Double(Engine::new(config, &plan)),
            false => Precision::Single(Engine::new(config, &plan)),
        });
        Ok(CpuBackend { plan, engine })
    }

    /// Whether the FFT runs in f64 (for dB output).
    pub fn double_precision(&self) -> bool {
        match self.engine {
            Precision::Double(_) | Precision::LanesDouble(_) => true,
            #[cfg(target_arch = "x86_64")]
            Precision::LanesDoubleWide(_) => true,
            _ => false,
        }
    }

    /// The FFT path this backend takes.
    pub fn fft(&self) -> CpuFft {
        match self.engine {
            Precision::Single(_) | Precision::Double(_) => CpuFft::Pairs,
            _ => CpuFft::Lanes,
        }
    }

    /// Frames per transform on the lane path (8, or 16 with AVX-512 in f32); 2 on the pair path.
    pub fn lanes(&self) -> usize {
        match self.engine {
            Precision::Single(_) | Precision::Double(_) => 2,
            #[cfg(target_arch = "x86_64")]
            Precision::LanesWide(_) => 16,
            _ => 8,
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    fn compute(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        self.run(batch, out, true)
    }

    fn compute_here(
        &mut self,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<StepTimings, BackendError> {
        self.run(batch, out, false)
    }
}

impl CpuBackend {
    /// Computes `batch` into `out`, over rayon's threads where `parallel`, else on this one.
    fn run(
        &self,
        batch: &SignalBatch,
        out: &mut [f32],
        parallel: bool,
    ) -> Result<StepTimings, BackendError> {
        check_output(&self.plan, batch, out)?;
        let (plan, p) = (&self.plan, parallel);
        // The steps' thread-time, summed over the workers (their sum is the CPU time spent).
        match &self.engine {
            Precision::Single(e) => e.compute(plan, batch, out, p),
            Precision::Double(e) => e.compute(plan, batch, out, p),
            Precision::LanesSingle(e) => e.compute(plan, batch, out, p),
            #[cfg(target_arch = "x86_64")]
            Precision::LanesAvx2(e) => e.compute(plan, batch, out, p),
            #[cfg(target_arch = "x86_64")]
            Precision::LanesWide(e) => e.compute(plan, batch, out, p),
            Precision::LanesDouble(e) => e.compute(plan, batch, out, p),
            #[cfg(target_arch = "x86_64")]
            Precision::LanesDoubleWide(e) => e.compute(plan, batch, out, p),
        }
    }
}

/// Runs `work` on each task: `out` in chunks of `out_chunk` values, each beside the range of
/// the `n_long` long segments it holds (`long_chunk` a chunk), each worker with its own state
/// from `init`; over rayon's threads where `parallel`, else in order on this thread with one
/// state. A task reads its long segments from the batch by index, so a call collects no list of
/// them.
pub(crate) fn for_each_task<S>(
    (out, out_chunk): (&mut [f32], usize),
    (n_long, long_chunk): (usize, usize),
    parallel: bool,
    init: impl Fn() -> S + Send + Sync,
    work: impl Fn(&mut S, (&mut [f32], Range<usize>)) + Send + Sync,
) {
    use rayon::prelude::*;
    let longs = |i: usize| i * long_chunk..n_long.min((i + 1) * long_chunk);
    if parallel {
        let tasks = out.par_chunks_mut(out_chunk).enumerate();
        tasks.map(|(i, dest)| (dest, longs(i))).for_each_init(init, work);
    } else {
        let mut state = init();
        let tasks = out.chunks_mut(out_chunk).enumerate();
        tasks.for_each(|(i, dest)| work(&mut state, (dest, longs(i))));
    }
}

/// The CPU backend's steps one at a time, on one long segment, for benchmarks: the fused
/// kernel splits into window + FFT + power, the mel projection and the scaling.
pub struct Steps {
    plan: SegmentPlan,
    engine: Engine<f32>,
    scratch: engine::Scratch<f32>,
}

impl Steps {
    /// The steps for a configuration (its FFT in f32, whatever the scale).
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let engine = Engine::new(config, &plan);
        let scratch = engine.scratch(&plan);
        Ok(Steps { plan, engine, scratch })
    }

    /// Window, FFT and power of the first tile of short segments of `long` (one long segment).
    pub fn spectra(&mut self, long: &[f32]) {
        let Steps { plan, engine, scratch } = self;
        let frames = engine.tile_frames(plan);
        engine.simd().run(
            #[inline(always)]
            || engine.spectra(plan, long, 0, frames, scratch),
        );
    }

    /// The mel projection of the last spectra into `out` (one tile's output).
    pub fn mel(&mut self, out: &mut [f32]) {
        let frames = self.engine.tile_frames(&self.plan);
        self.engine.simd().run(
            #[inline(always)]
            || self.engine.project(&self.plan, frames, &self.scratch, out),
        );
    }

    /// The element-wise scaling of `values`.
    pub fn scale(&self, values: &mut [f32]) {
        self.engine.simd().run(
            #[inline(always)]
            || self.engine.scale(values),
        );
    }

    /// Values in one tile's output.
    pub fn tile_output_len(&self) -> usize {
        self.engine.tile_frames(&self.plan) / self.plan.n_frames * self.plan.short_output_len()
    }
}
