//! melkit-backend-cpu: the CPU backend. realfft plans prepared once, frames taken straight from
//! the prepared signal, window → FFT → power → sparse mel → scale fused per short segment so a
//! spectrum never leaves the cache, and rayon across every long segment of the batch.

mod mel;

use std::sync::Arc;
use std::time::Instant;

use melkit_core::backend::{Backend, SignalBatch, StepTimings, check_output};
use melkit_core::config::Config;
use melkit_core::error::BackendError;
use melkit_core::mel::MelFilterbank;
use melkit_core::plan::SegmentPlan;
use melkit_core::scale::ElementScale;
use melkit_core::window::window;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::mel::SparseMel;

/// How one frame is gathered from its short segment.
#[derive(Clone, Debug)]
enum Gather {
    /// Wholly inside the segment, starting at this sample.
    Interior(usize),
    /// Reaching into padding: the source of each sample (`None` for a zero).
    Indexed(Vec<Option<usize>>),
}

/// The exponent applied to the magnitude.
#[derive(Clone, Copy, Debug)]
enum Power {
    Square,
    Magnitude,
    Other(f32),
}

/// The CPU backend (see the crate documentation).
pub struct CpuBackend {
    plan: SegmentPlan,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    gathers: Vec<Gather>,
    mel: SparseMel,
    power: Power,
    scale: ElementScale,
}

/// Per-thread buffers, reused across the long segments a thread computes.
struct Scratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl CpuBackend {
    /// The CPU backend for a configuration (validated here).
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(plan.n_fft);
        let gathers = (0..plan.n_frames)
            .map(|t| match plan.interior_frame_start(t) {
                Some(start) => Gather::Interior(start),
                None => Gather::Indexed((0..plan.n_fft).map(|i| plan.frame_source(t, i)).collect()),
            })
            .collect();
        let power = match config.power {
            2.0 => Power::Square,
            1.0 => Power::Magnitude,
            p => Power::Other(p as f32 / 2.0),
        };
        Ok(CpuBackend {
            window: window(config.window, config.window_length(), plan.n_fft)
                .into_iter()
                .map(|w| w as f32)
                .collect(),
            mel: SparseMel::new(&MelFilterbank::from_config(config)),
            gathers,
            power,
            scale: ElementScale::from_config(config),
            fft,
            plan,
        })
    }

    fn scratch(&self) -> Scratch {
        let p = &self.plan;
        Scratch {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            fft: self.fft.make_scratch_vec(),
            power: vec![0.0; p.n_frames * p.n_bins],
        }
    }

    /// One short segment: `[mel, frame]` into `out`.
    fn short_segment(&self, short: &[f32], out: &mut [f32], s: &mut Scratch) {
        let n_bins = self.plan.n_bins;
        for (t, gather) in self.gathers.iter().enumerate() {
            match gather {
                Gather::Interior(start) => {
                    let src = &short[*start..*start + self.plan.n_fft];
                    for ((f, &x), &w) in s.frame.iter_mut().zip(src).zip(&self.window) {
                        *f = x * w;
                    }
                }
                Gather::Indexed(sources) => {
                    for ((f, src), &w) in s.frame.iter_mut().zip(sources).zip(&self.window) {
                        *f = src.map_or(0.0, |j| short[j]) * w;
                    }
                }
            }
            // The buffers are sized by the plan, so the FFT cannot fail on their lengths.
            let _ = self.fft.process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft);
            let row = &mut s.power[t * n_bins..(t + 1) * n_bins];
            for (p, c) in row.iter_mut().zip(&s.spectrum) {
                let sq = c.re * c.re + c.im * c.im;
                *p = match self.power {
                    Power::Square => sq,
                    Power::Magnitude => sq.sqrt(),
                    Power::Other(half) => sq.powf(half),
                };
            }
        }
        self.mel.project(&s.power, n_bins, self.plan.n_frames, out);
        self.scale.apply_f32(out);
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
        let started = Instant::now();
        let p = &self.plan;
        let samples = batch.samples();
        out.par_chunks_mut(p.long_output_len()).zip(batch.long_starts().par_iter()).for_each_init(
            || self.scratch(),
            |scratch, (dest, &start)| {
                for (s, short_out) in dest.chunks_exact_mut(p.short_output_len()).enumerate() {
                    let first = start + s * p.short_hop;
                    self.short_segment(&samples[first..first + p.short_len], short_out, scratch);
                }
            },
        );
        let mut timings = StepTimings::default();
        timings.add("compute", started.elapsed());
        Ok(timings)
    }
}
