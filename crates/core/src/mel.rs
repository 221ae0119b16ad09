//! The mel filterbank, computed exactly as `librosa.filters.mel` (float64).

use crate::config::{Config, MelNorm, MelScale};

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mels on `scale` (`librosa.hz_to_mel`).
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney if hz >= MIN_LOG_HZ => MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step(),
        MelScale::Slaney => hz / F_SP,
    }
}

/// Mels on `scale` to Hz (`librosa.mel_to_hz`).
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney if mel >= MIN_LOG_MEL => {
            MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
        }
        MelScale::Slaney => F_SP * mel,
    }
}

/// A mel filterbank `[n_mels, n_fft / 2 + 1]` with the non-zero span of each filter.
#[derive(Clone, Debug, PartialEq)]
pub struct MelFilterbank {
    n_mels: usize,
    n_bins: usize,
    weights: Vec<f64>,
    spans: Vec<(usize, usize)>,
}

impl MelFilterbank {
    /// The filterbank a (validated) configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            f64::from(config.sample_rate),
            config.n_fft,
            config.n_mels,
            config.fmin,
            config.fmax_hz(),
            config.mel_scale,
            config.mel_norm,
        )
    }

    /// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype=float64)`.
    pub fn new(
        sample_rate: f64,
        n_fft: usize,
        n_mels: usize,
        fmin: f64,
        fmax: f64,
        scale: MelScale,
        norm: MelNorm,
    ) -> Self {
        let n_bins = n_fft / 2 + 1;
        let bin_hz = 1.0 / (n_fft as f64 * (1.0 / sample_rate));
        let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * bin_hz).collect();
        // n_mels + 2 points evenly spaced in mels, as numpy.linspace computes them.
        let (lo, hi) = (hz_to_mel(fmin, scale), hz_to_mel(fmax, scale));
        let points = n_mels + 2;
        let step = (hi - lo) / (points - 1) as f64;
        let mel_f: Vec<f64> = (0..points)
            .map(|i| if i == points - 1 { hi } else { lo + i as f64 * step })
            .map(|m| mel_to_hz(m, scale))
            .collect();
        let mut weights = vec![0.0; n_mels * n_bins];
        for m in 0..n_mels {
            let (fdiff_lo, fdiff_hi) = (mel_f[m + 1] - mel_f[m], mel_f[m + 2] - mel_f[m + 1]);
            let enorm = match norm {
                MelNorm::Slaney => 2.0 / (mel_f[m + 2] - mel_f[m]),
                MelNorm::None => 1.0,
            };
            for (k, &f) in fft_freqs.iter().enumerate() {
                let lower = -(mel_f[m] - f) / fdiff_lo;
                let upper = (mel_f[m + 2] - f) / fdiff_hi;
                weights[m * n_bins + k] = 0f64.max(lower.min(upper)) * enorm;
            }
        }
        let spans = (0..n_mels)
            .map(|m| {
                let row = &weights[m * n_bins..(m + 1) * n_bins];
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let end = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, end)
            })
            .collect();
        MelFilterbank { n_mels, n_bins, weights, spans }
    }

    /// Mel bins (rows).
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// FFT bins (columns).
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// The dense weights, row `m` at `[m * n_bins .. (m + 1) * n_bins]`.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// One filter's weights over every FFT bin.
    pub fn row(&self, mel: usize) -> &[f64] {
        &self.weights[mel * self.n_bins..(mel + 1) * self.n_bins]
    }

    /// The half-open range of FFT bins where filter `mel` is non-zero (empty for a filter that
    /// falls between two bins).
    pub fn span(&self, mel: usize) -> (usize, usize) {
        self.spans[mel]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scales_round_trip() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 440.0, 999.0, 1000.0, 2048.0, 8000.0] {
                assert!((mel_to_hz(hz_to_mel(hz, scale), scale) - hz).abs() < 1e-9);
            }
        }
        // Values from librosa.hz_to_mel.
        assert!((hz_to_mel(440.0, MelScale::Slaney) - 6.6).abs() < 1e-12);
        assert!((hz_to_mel(2048.0, MelScale::Slaney) - 25.426_838_898_841_737).abs() < 1e-9);
        assert!((hz_to_mel(440.0, MelScale::Htk) - 549.638_675_381_149_9).abs() < 1e-9);
    }

    #[test]
    fn slaney_filters_have_unit_area_per_hz() {
        // With slaney norm each triangle integrates (in Hz) to 1: peak 2/width × width/2.
        let fb =
            MelFilterbank::new(16000.0, 2048, 40, 0.0, 8000.0, MelScale::Slaney, MelNorm::Slaney);
        let bin_hz = 16000.0 / 2048.0;
        for m in 2..40 {
            let area: f64 = fb.row(m).iter().sum::<f64>() * bin_hz;
            assert!((area - 1.0).abs() < 0.02, "filter {m}: area {area}");
        }
    }

    #[test]
    fn spans_cover_every_nonzero_weight() {
        let fb =
            MelFilterbank::new(4096.0, 256, 64, 0.0, 2048.0, MelScale::Slaney, MelNorm::Slaney);
        for m in 0..64 {
            let (a, b) = fb.span(m);
            for (k, &w) in fb.row(m).iter().enumerate() {
                assert_eq!(w != 0.0, (a..b).contains(&k), "mel {m} bin {k}");
            }
        }
        // Unnormalised filters peak at 1 or below.
        let fb = MelFilterbank::new(8000.0, 512, 40, 50.0, 3800.0, MelScale::Htk, MelNorm::None);
        assert!(fb.weights().iter().all(|&w| (0.0..=1.0).contains(&w)));
    }
}
