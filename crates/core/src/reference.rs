//! The reference backend: plain f64 loops and a naive DFT, obviously correct, kept to check
//! every fast backend against (as RustFFT keeps its naive DFT).

use std::f64::consts::PI;
use std::time::Instant;

use crate::backend::{Backend, SignalBatch, StepTimings, check_output};
use crate::config::Config;
use crate::error::BackendError;
use crate::mel::MelFilterbank;
use crate::plan::SegmentPlan;
use crate::scale::ElementScale;
use crate::window::window;

/// Scalar f64 computation of SPEC §1 steps 7–10, one frame at a time.
#[derive(Clone, Debug)]
pub struct ReferenceBackend {
    plan: SegmentPlan,
    window: Vec<f64>,
    cos: Vec<f64>,
    sin: Vec<f64>,
    mel: MelFilterbank,
    power: f64,
    scale: ElementScale,
}

impl ReferenceBackend {
    /// The reference backend for a configuration (validated here).
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let plan = SegmentPlan::new(config)?;
        let n = plan.n_fft;
        Ok(ReferenceBackend {
            window: window(config.window, config.window_length(), n),
            cos: (0..n).map(|j| (2.0 * PI * j as f64 / n as f64).cos()).collect(),
            sin: (0..n).map(|j| (2.0 * PI * j as f64 / n as f64).sin()).collect(),
            mel: MelFilterbank::from_config(config),
            power: config.power,
            scale: ElementScale::from_config(config),
            plan,
        })
    }

    /// `|X|^power` of frame `t` of one short segment: `n_fft / 2 + 1` bins by a naive DFT.
    pub fn frame_spectrum(&self, short: &[f64], t: usize) -> Vec<f64> {
        let n = self.plan.n_fft;
        let frame: Vec<f64> = (0..n)
            .map(|i| self.plan.frame_source(t, i).map_or(0.0, |j| short[j]) * self.window[i])
            .collect();
        (0..self.plan.n_bins)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &x) in frame.iter().enumerate() {
                    re += x * self.cos[(k * i) % n];
                    im -= x * self.sin[(k * i) % n];
                }
                let magnitude_squared = re * re + im * im;
                if self.power == 2.0 {
                    magnitude_squared
                } else {
                    magnitude_squared.sqrt().powf(self.power)
                }
            })
            .collect()
    }

    /// The scaled mel spectrogram `[mel, frame]` of one short segment, in f64.
    pub fn short_segment(&self, short: &[f64]) -> Vec<f64> {
        let p = &self.plan;
        let mut out = vec![0.0; p.n_mels * p.n_frames];
        for t in 0..p.n_frames {
            let spectrum = self.frame_spectrum(short, t);
            for m in 0..p.n_mels {
                let value: f64 = self.mel.row(m).iter().zip(&spectrum).map(|(w, s)| w * s).sum();
                out[m * p.n_frames + t] = self.scale.apply(value);
            }
        }
        out
    }

    /// The filterbank this backend applies.
    pub fn filterbank(&self) -> &MelFilterbank {
        &self.mel
    }
}

impl Backend for ReferenceBackend {
    fn name(&self) -> &'static str {
        "reference"
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
        let (short_len, short_hop, n_short) = (p.short_len, p.short_hop, p.n_short);
        let shorts = batch.longs(p).flat_map(|long| {
            (0..n_short).map(move |s| &long[s * short_hop..s * short_hop + short_len])
        });
        for (short, dest) in shorts.zip(out.chunks_exact_mut(p.short_output_len())) {
            let short: Vec<f64> = short.iter().map(|&x| f64::from(x)).collect();
            for (d, v) in dest.iter_mut().zip(self.short_segment(&short)) {
                *d = v as f32;
            }
        }
        let mut timings = StepTimings::default();
        timings.add("compute", started.elapsed());
        Ok(timings)
    }
}

#[cfg(test)]
mod tests;
