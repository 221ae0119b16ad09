//! The segmentation plan: long and short segments, padding and frame counts (SPEC §1 steps 4–7).

use crate::config::{Config, PadMode};
use crate::error::ConfigError;

/// Every size the segmentation and the STFT need, derived once from a validated [`Config`].
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentPlan {
    /// Sample rate of the prepared signal, in Hz.
    pub sample_rate: u32,
    /// Length every signal is cut or padded to (`None`: the whole file).
    pub fixed_len: Option<usize>,
    /// Samples in a long segment (`Ll`).
    pub long_len: usize,
    /// Samples between long segment starts (`Lh`).
    pub long_hop: usize,
    /// Samples in a short segment (`short_segment_points`).
    pub short_len: usize,
    /// Samples between short segment starts.
    pub short_hop: usize,
    /// Short segments per long segment.
    pub n_short: usize,
    /// FFT size.
    pub n_fft: usize,
    /// Samples between frame starts.
    pub hop_length: usize,
    /// Whether frames are centred (padded by `n_fft / 2` at both ends of a short segment).
    pub center: bool,
    /// How centred frames are padded.
    pub pad_mode: PadMode,
    /// Frames per short segment (`T`).
    pub n_frames: usize,
    /// Frequency bins of the one-sided spectrum (`n_fft / 2 + 1`).
    pub n_bins: usize,
    /// Mel bins.
    pub n_mels: usize,
    /// The keys that decide the numbers beyond the sizes above (window, power, mel scale and
    /// norm, fmin, fmax, scale, ref, amin, top_db, dtype), as `key=value` lines: two plans are
    /// equal only for configurations that give the same numbers.
    pub numbers: String,
}

/// Every key that changes the numbers (all but run control), as `key=value` lines.
fn numbers(config: &Config) -> String {
    let json = config.to_json();
    crate::config::KEYS
        .iter()
        .filter(|k| k.group != crate::config::KeyGroup::Run)
        .map(|k| {
            format!("{}={}\n", k.name, json.get(k.name).map(|v| v.to_string()).unwrap_or_default())
        })
        .collect()
}

impl SegmentPlan {
    /// The plan for a configuration, which is validated first.
    ///
    /// # Errors
    /// The configuration's first invalid key.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let short_len = config.short_segment_points;
        let long_len = config.seconds_to_samples(config.long_segment_scale);
        let short_hop = config.short_hop();
        let n_fft = config.n_fft;
        let hop = config.hop_length;
        let padded = if config.center { short_len + 2 * (n_fft / 2) } else { short_len };
        Ok(SegmentPlan {
            sample_rate: config.sample_rate,
            fixed_len: config.sample_length.map(|s| config.seconds_to_samples(s)),
            long_len,
            long_hop: config.seconds_to_samples(config.long_hop_seconds()),
            short_len,
            short_hop,
            n_short: (long_len - short_len) / short_hop + 1,
            n_fft,
            hop_length: hop,
            center: config.center,
            pad_mode: config.pad_mode,
            n_frames: 1 + (padded - n_fft) / hop,
            n_bins: n_fft / 2 + 1,
            n_mels: config.n_mels,
            numbers: numbers(config),
        })
    }

    /// The length a decoded signal of `len` samples has once its length is fixed.
    pub fn fixed_length(&self, len: usize) -> usize {
        self.fixed_len.unwrap_or(len)
    }

    /// Long segments for a signal of `len` samples (after the length is fixed):
    /// `ceil(max(0, len - Ll) / Lh) + 1`.
    pub fn n_long(&self, len: usize) -> usize {
        len.saturating_sub(self.long_len).div_ceil(self.long_hop) + 1
    }

    /// Samples a signal with `n_long` long segments occupies once padded: `(n_long - 1) Lh + Ll`.
    pub fn padded_len(&self, n_long: usize) -> usize {
        n_long.saturating_sub(1) * self.long_hop + self.long_len
    }

    /// Values in the output of one long segment: `n_short × n_mels × n_frames`.
    pub fn long_output_len(&self) -> usize {
        self.n_short * self.n_mels * self.n_frames
    }

    /// Values in the output of one short segment: `n_mels × n_frames`.
    pub fn short_output_len(&self) -> usize {
        self.n_mels * self.n_frames
    }

    /// The output shape `[long_segment, short_segment, mel_bin, time_frame]` for `n_long`.
    pub fn shape(&self, n_long: usize) -> [usize; 4] {
        [n_long, self.n_short, self.n_mels, self.n_frames]
    }

    /// Where sample `i` of frame `t` comes from in its short segment: `Some(index)`, or `None`
    /// where the frame reaches into zero padding.
    ///
    /// Reflect padding follows `librosa.stft` (0.11) exactly: it pads the head frames and the
    /// tail frames as two separate slices with `numpy.pad(mode="reflect")`, which reflects
    /// again and again when a slice is shorter than the padding (possible when `hop_length >=
    /// n_fft / 2`).
    pub fn frame_source(&self, t: usize, i: usize) -> Option<usize> {
        let n = self.short_len as isize;
        let pad = if self.center { (self.n_fft / 2) as isize } else { 0 };
        let j = (t * self.hop_length + i) as isize - pad;
        if (0..n).contains(&j) {
            return Some(j as usize);
        }
        if self.pad_mode == PadMode::Constant {
            return None;
        }
        let hop = self.hop_length as isize;
        // librosa: the first frame that needs no head padding, and the first that needs tail
        // padding; when they do not overlap, each end is padded from its own slice.
        let start_k = (pad + hop - 1) / hop;
        let tail_k = (n + pad - self.n_fft as isize).div_euclid(hop) + 1;
        let (lo, hi) = match t as isize {
            t if tail_k > start_k && t < start_k => {
                (0, n.min((start_k - 1) * hop - pad + self.n_fft as isize + 1))
            }
            t if tail_k > start_k && t >= tail_k => (tail_k * hop - pad, n),
            _ => (0, n),
        };
        Some(reflect(j, lo, hi) as usize)
    }

    /// Whether frame `t` lies wholly inside its short segment (no padding involved), and if so
    /// the index of its first sample.
    pub fn interior_frame_start(&self, t: usize) -> Option<usize> {
        let pad = if self.center { self.n_fft / 2 } else { 0 };
        let start = (t * self.hop_length).checked_sub(pad)?;
        (start + self.n_fft <= self.short_len).then_some(start)
    }
}

/// `numpy.pad(mode="reflect")` seen from one index: where position `j` of a slice
/// `[lo, hi)` padded on either side takes its value from (reflection without repeating the edge,
/// repeated as often as needed; a slice of one sample repeats it).
fn reflect(j: isize, lo: isize, hi: isize) -> isize {
    let len = hi - lo;
    if len <= 1 {
        return lo;
    }
    let period = 2 * (len - 1);
    let m = (j - lo).rem_euclid(period);
    lo + if m < len { m } else { period - m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_matches_spec() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        assert_eq!(plan.fixed_len, Some(40960));
        assert_eq!((plan.long_len, plan.long_hop), (1024, 1024));
        assert_eq!((plan.short_len, plan.short_hop, plan.n_short), (512, 512, 2));
        assert_eq!((plan.n_frames, plan.n_bins), (17, 129));
        assert_eq!(plan.n_long(40960), 40);
        assert_eq!(plan.shape(40), [40, 2, 64, 17]);
    }

    #[test]
    fn long_segments_cover_every_sample() {
        let plan = SegmentPlan::new(&Config::default()).unwrap();
        assert_eq!(plan.n_long(0), 1);
        assert_eq!(plan.n_long(1), 1);
        assert_eq!(plan.n_long(1024), 1);
        assert_eq!(plan.n_long(1025), 2);
        assert_eq!(plan.n_long(2048), 2);
        assert_eq!(plan.padded_len(2), 2048);
    }

    #[test]
    fn overlapping_segments_and_uncentred_frames() {
        let mut c = Config::default();
        for (k, v) in [
            ("sample_rate", "8000"),
            ("long_segment_scale", "0.5"),
            ("long_segment_hop", "0.25"),
            ("short_segment_points", "1024"),
            ("short_segment_hop", "512"),
            ("n_fft", "512"),
            ("hop_length", "128"),
        ] {
            c.set(k, v).unwrap();
        }
        let plan = SegmentPlan::new(&c).unwrap();
        assert_eq!((plan.long_len, plan.long_hop, plan.n_short, plan.n_frames), (4000, 2000, 6, 9));
        // 3 s at 8 kHz: ceil((24000 - 4000) / 2000) + 1 = 11, as the golden case says.
        assert_eq!(plan.n_long(24000), 11);
        c.set("center", "false").unwrap();
        let plan = SegmentPlan::new(&c).unwrap();
        assert_eq!(plan.n_frames, 1 + (1024 - 512) / 128);
        assert_eq!(plan.frame_source(0, 0), Some(0));
        assert_eq!(plan.interior_frame_start(4), Some(512));
    }

    #[test]
    fn padding_maps_like_numpy() {
        let mut c = Config::default();
        c.set("pad_mode", "reflect").unwrap();
        let plan = SegmentPlan::new(&c).unwrap();
        // Frame 0 starts 128 samples before the segment: x[-1] mirrors to x[1].
        assert_eq!(plan.frame_source(0, 127), Some(1));
        assert_eq!(plan.frame_source(0, 128), Some(0));
        // The last frame runs past the end: x[512] mirrors to x[510].
        assert_eq!(plan.frame_source(16, 128 + 511 - 512 + 1), Some(510));
        c.set("pad_mode", "constant").unwrap();
        let plan = SegmentPlan::new(&c).unwrap();
        assert_eq!(plan.frame_source(0, 127), None);
        assert_eq!(plan.interior_frame_start(0), None);
        assert_eq!(plan.interior_frame_start(4), Some(0));
        assert_eq!(plan.interior_frame_start(12), Some(256));
        assert_eq!(plan.interior_frame_start(13), None);
    }
}
