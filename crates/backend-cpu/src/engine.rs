//! The fused per-short-segment computation, generic over the FFT's float type.

use std::sync::Arc;

use melkit_core::backend::SignalBatch;
use melkit_core::config::Config;
use melkit_core::error::BackendError;
use melkit_core::mel::MelFilterbank;
use melkit_core::plan::SegmentPlan;
use melkit_core::scale::ElementScale;
use melkit_core::window::window;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{FftNum, RealFftPlanner, RealToComplex};

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
    Other(f64),
}

/// Everything prepared once for a configuration, with the FFT in `T`.
pub struct Engine<T: FftNum> {
    fft: Arc<dyn RealToComplex<T>>,
    window: Vec<T>,
    gathers: Vec<Gather>,
    mel: SparseMel,
    power: Power,
    scale: ElementScale,
}

/// Per-thread buffers, reused across the long segments a thread computes.
struct Scratch<T> {
    frame: Vec<T>,
    spectrum: Vec<Complex<T>>,
    fft: Vec<Complex<T>>,
    power: Vec<f32>,
}

impl<T: FftNum + From<f32> + Into<f64>> Engine<T> {
    /// Prepares plans, window, frame gathers and the sparse filterbank.
    pub fn new(config: &Config, plan: &SegmentPlan) -> Self {
        let fft = RealFftPlanner::<T>::new().plan_fft_forward(plan.n_fft);
        let gathers = (0..plan.n_frames)
            .map(|t| match plan.interior_frame_start(t) {
                Some(start) => Gather::Interior(start),
                None => Gather::Indexed((0..plan.n_fft).map(|i| plan.frame_source(t, i)).collect()),
            })
            .collect();
        let power = match config.power {
            2.0 => Power::Square,
            1.0 => Power::Magnitude,
            p => Power::Other(p / 2.0),
        };
        Engine {
            window: window(config.window, config.window_length(), plan.n_fft)
                .into_iter()
                .map(|w| T::from_f64(w).unwrap_or_else(T::zero))
                .collect(),
            mel: SparseMel::new(&MelFilterbank::from_config(config)),
            gathers,
            power,
            scale: ElementScale::from_config(config),
            fft,
        }
    }

    fn scratch(&self, plan: &SegmentPlan) -> Scratch<T> {
        Scratch {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            fft: self.fft.make_scratch_vec(),
            power: vec![0.0; plan.n_frames * plan.n_bins],
        }
    }

    /// Every long segment of `batch` into `out` (already checked to fit), in parallel.
    pub fn compute(
        &self,
        plan: &SegmentPlan,
        batch: &SignalBatch,
        out: &mut [f32],
    ) -> Result<(), BackendError> {
        let samples = batch.samples();
        out.par_chunks_mut(plan.long_output_len())
            .zip(batch.long_starts().par_iter())
            .try_for_each_init(
                || self.scratch(plan),
                |scratch, (dest, &start)| {
                    for (s, short_out) in dest.chunks_exact_mut(plan.short_output_len()).enumerate()
                    {
                        let first = start + s * plan.short_hop;
                        self.short_segment(
                            plan,
                            &samples[first..first + plan.short_len],
                            short_out,
                            scratch,
                        )?;
                    }
                    Ok(())
                },
            )
    }

    /// One short segment: `[mel, frame]` into `out`.
    fn short_segment(
        &self,
        plan: &SegmentPlan,
        short: &[f32],
        out: &mut [f32],
        s: &mut Scratch<T>,
    ) -> Result<(), BackendError> {
        let n_bins = plan.n_bins;
        for (t, gather) in self.gathers.iter().enumerate() {
            match gather {
                Gather::Interior(start) => {
                    let src = &short[*start..*start + plan.n_fft];
                    for ((f, &x), &w) in s.frame.iter_mut().zip(src).zip(&self.window) {
                        *f = T::from(x) * w;
                    }
                }
                Gather::Indexed(sources) => {
                    for ((f, src), &w) in s.frame.iter_mut().zip(sources).zip(&self.window) {
                        *f = src.map_or(T::zero(), |j| T::from(short[j]) * w);
                    }
                }
            }
            self.fft
                .process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft)
                .map_err(|e| BackendError::Failed { backend: "cpu", reason: e.to_string() })?;
            let row = &mut s.power[t * n_bins..(t + 1) * n_bins];
            for (p, c) in row.iter_mut().zip(&s.spectrum) {
                let sq: f64 = (c.re * c.re + c.im * c.im).into();
                *p = match self.power {
                    Power::Square => sq,
                    Power::Magnitude => sq.sqrt(),
                    Power::Other(half) => sq.powf(half),
                } as f32;
            }
        }
        self.mel.project(&s.power, n_bins, plan.n_frames, out);
        self.scale.apply_f32(out);
        Ok(())
    }
}
