//! The sparse mel projection: each filter stored as its non-zero span only.

use melkit_core::mel::MelFilterbank;

/// A mel filterbank in f32, each filter kept as its first bin and its non-zero weights.
#[derive(Clone, Debug)]
pub struct SparseMel {
    first_bin: Vec<usize>,
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl SparseMel {
    /// The sparse form of a filterbank.
    pub fn new(fb: &MelFilterbank) -> Self {
        let mut first_bin = Vec::with_capacity(fb.n_mels());
        let mut offsets = vec![0];
        let mut weights = Vec::new();
        for m in 0..fb.n_mels() {
            let (a, b) = fb.span(m);
            first_bin.push(a);
            weights.extend(fb.row(m)[a..b].iter().map(|&w| w as f32));
            offsets.push(weights.len());
        }
        SparseMel { first_bin, offsets, weights }
    }

    /// `out[m, t] = Σ_k w[m, k] · power[t, k]` for a `[n_frames, n_bins]` power spectrogram.
    pub fn project(&self, power: &[f32], n_bins: usize, n_frames: usize, out: &mut [f32]) {
        for (m, row) in out.chunks_exact_mut(n_frames).enumerate() {
            let w = &self.weights[self.offsets[m]..self.offsets[m + 1]];
            let first = self.first_bin[m];
            for (t, o) in row.iter_mut().enumerate() {
                let spectrum = &power[t * n_bins + first..t * n_bins + first + w.len()];
                *o = w.iter().zip(spectrum).map(|(a, b)| a * b).sum();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use melkit_core::config::{MelNorm, MelScale};

    use super::*;

    #[test]
    fn sparse_projection_equals_the_dense_product() {
        let fb = MelFilterbank::new(8000.0, 512, 40, 50.0, 3800.0, MelScale::Htk, MelNorm::None);
        let sparse = SparseMel::new(&fb);
        let (n_bins, n_frames) = (257, 3);
        let power: Vec<f32> = (0..n_bins * n_frames).map(|i| ((i * 7919) % 101) as f32).collect();
        let mut out = vec![0.0; 40 * n_frames];
        sparse.project(&power, n_bins, n_frames, &mut out);
        for m in 0..40 {
            for t in 0..n_frames {
                let dense: f64 =
                    (0..n_bins).map(|k| fb.row(m)[k] * f64::from(power[t * n_bins + k])).sum();
                assert!((f64::from(out[m * n_frames + t]) - dense).abs() <= 1e-5 * dense.max(1.0));
            }
        }
        // Only the non-zero spans are stored.
        assert!(sparse.weights.len() < 40 * n_bins / 4);
    }
}
