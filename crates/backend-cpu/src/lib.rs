//! melkit-backend-cpu: the CPU backend. realfft plans prepared once, frames taken straight from
//! the prepared signal, window → FFT → power → sparse mel → scale fused per short segment so a
//! spectrum never leaves the cache, and rayon across every long segment of the batch.
//!
//! The FFT runs in f32, or in f64 when the output is in dB: there values far below a frame's
//! peak matter, and f32 rounding of the transform (about 1e-7 of the peak magnitude) would
//! otherwise decide the bins near the `amin` floor.

mod engine;
mod mel;
mod simd;

use melkit_core::backend::{Backend, SignalBatch, StepTimings, check_output};
use melkit_core::config::{Config, Scale};
use melkit_core::error::BackendError;
use melkit_core::plan::SegmentPlan;

use crate::engine::Engine;

/// The transform in the precision the configuration needs.
enum Precision {
    Single(Engine<f32>),
    Double(Engine<f64>),
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
        let plan = SegmentPlan::new(config)?;
        let engine = match config.scale {
            Scale::Db => Precision::Double(Engine::new(config, &plan)),
            Scale::Power => Precision::Single(Engine::new(config, &plan)),
        };
        Ok(CpuBackend { plan, engine })
    }

    /// Whether the FFT runs in f64 (for dB output).
    pub fn double_precision(&self) -> bool {
        matches!(self.engine, Precision::Double(_))
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
        check_output(&self.plan, batch, out)?;
        // The steps' thread-time, summed over the workers (their sum is the CPU time spent).
        match &self.engine {
            Precision::Single(e) => e.compute(&self.plan, batch, out),
            Precision::Double(e) => e.compute(&self.plan, batch, out),
        }
    }
}
