//! The constant tables a device backend (wgpu, CUDA) uploads once per configuration: the
//! framing table (librosa's centring and reflect padding, from the plan), the window, the
//! sparse mel filterbank and the element-wise scaling, in f64 for each backend to round as its
//! arithmetic needs; and what both GPU backends share about moving batches through a device:
//! chunks ([`chunks`]) and the jobs in flight ([`flights`]).

pub mod chunks;
pub mod flights;

use crate::config::Config;
use crate::mel::MelFilterbank;
use crate::plan::SegmentPlan;
use crate::scale::ElementScale;
use crate::window::window;

/// How a kernel turns a complex bin into power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerMode {
    /// |X|² (`power` 2).
    Squared = 0,
    /// |X| (`power` 1).
    Magnitude = 1,
    /// |X|^power.
    Other = 2,
}

/// The tables of one configuration.
#[derive(Clone, Debug)]
pub struct DeviceTables {
    /// `[n_frames × n_fft]`: the index in the short segment of sample `i` of frame `t`, or -1
    /// for zero padding.
    pub frame_index: Vec<i32>,
    /// The window, zero-padded to `n_fft`.
    pub window: Vec<f64>,
    /// Per mel bin: (first FFT bin, number of bins, offset into `mel_weights`).
    pub mel_spans: Vec<[u32; 3]>,
    /// The non-zero filter weights, filter after filter.
    pub mel_weights: Vec<f64>,
    /// How power is taken.
    pub power_mode: PowerMode,
    /// The exponent of the magnitude.
    pub power: f64,
    /// dB output: `factor · log10(max(x, floor)) − offset`.
    pub db: Option<(f64, f64, f64)>,
}

impl DeviceTables {
    /// The tables for a validated configuration and its plan.
    pub fn new(config: &Config, plan: &SegmentPlan) -> Self {
        let n = plan.n_fft;
        let mut frame_index = Vec::with_capacity(plan.n_frames * n);
        for t in 0..plan.n_frames {
            for i in 0..n {
                frame_index.push(plan.frame_source(t, i).map_or(-1, |j| j as i32));
            }
        }
        let bank = MelFilterbank::from_config(config);
        let (mut mel_spans, mut mel_weights) = (Vec::new(), Vec::new());
        for m in 0..bank.n_mels() {
            let (lo, hi) = bank.span(m);
            mel_spans.push([lo as u32, (hi - lo) as u32, mel_weights.len() as u32]);
            mel_weights.extend_from_slice(&bank.row(m)[lo..hi]);
        }
        let power_mode = if config.power == 2.0 {
            PowerMode::Squared
        } else if config.power == 1.0 {
            PowerMode::Magnitude
        } else {
            PowerMode::Other
        };
        DeviceTables {
            frame_index,
            window: window(config.window, config.win_length.unwrap_or(n), n),
            mel_spans,
            mel_weights,
            power_mode,
            power: config.power,
            db: ElementScale::from_config(config).db_params(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_framing_table_centres_frames_in_zeros() {
        let config = Config::default();
        let plan = SegmentPlan::new(&config).unwrap();
        let tables = DeviceTables::new(&config, &plan);
        assert_eq!(tables.frame_index.len(), 17 * 256);
        assert_eq!(tables.frame_index[0], -1); // frame 0 starts 128 samples before the segment
        assert_eq!(tables.frame_index[128], 0);
        assert_eq!(tables.frame_index[256 + 96], 0); // frame 1 starts at -96
        assert_eq!(tables.mel_spans.len(), 64);
        assert_eq!(tables.power_mode, PowerMode::Squared);
        assert_eq!(tables.db, None);
    }
}
