//! The sparse mel projection: each filter stored as its non-zero span only, applied to a
//! bin-major power table as one AXPY over frames per weight.

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

    /// The same filters with every weight times `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        let weights = self.weights.iter().map(|&w| (f64::from(w) * factor) as f32).collect();
        SparseMel { weights, ..self.clone() }
    }

    /// Filter `m`: its first bin and its non-zero weights.
    #[inline(always)]
    pub fn filter(&self, m: usize) -> (usize, &[f32]) {
        (self.first_bin[m], &self.weights[self.offsets[m]..self.offsets[m + 1]])
    }

    /// The number of filters.
    pub fn n_mels(&self) -> usize {
        self.first_bin.len()
    }

    /// `out[s, m, t] = Σ_k w[m, k] · power[k, s·per + t]` for a `[bin][frame]` power table of
    /// `frames` columns holding whole short segments of `per` frames each, into the output
    /// layout `[short][mel][frame]`.
    #[inline(always)]
    pub fn project(&self, power: &[f32], frames: usize, per: usize, out: &mut [f32]) {
        let n_mels = self.first_bin.len();
        for (s, short) in out.chunks_exact_mut(n_mels * per).enumerate() {
            for (m, row) in short.chunks_exact_mut(per).enumerate() {
                row.fill(0.0);
                let weights = &self.weights[self.offsets[m]..self.offsets[m + 1]];
                for (i, &w) in weights.iter().enumerate() {
                    let at = (self.first_bin[m] + i) * frames + s * per;
                    for (o, &p) in row.iter_mut().zip(&power[at..at + per]) {
                        *o += w * p;
                    }
                }
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
        let (n_bins, frames) = (257, 3);
        let power: Vec<f32> = (0..n_bins * frames).map(|i| ((i * 7919) % 101) as f32).collect();
        // Three frames as one short segment of three frames, then as three of one frame.
        for per in [3, 1] {
            let mut out = vec![f32::NAN; 40 * frames];
            sparse.project(&power, frames, per, &mut out);
            for m in 0..40 {
                for f in 0..frames {
                    let dense: f64 =
                        (0..n_bins).map(|k| fb.row(m)[k] * f64::from(power[k * frames + f])).sum();
                    let (s, t) = (f / per, f % per);
                    let got = out[s * 40 * per + m * per + t];
                    assert!((f64::from(got) - dense).abs() <= 1e-5 * dense.max(1.0));
                }
            }
        }
        // Only the non-zero spans are stored.
        assert!(sparse.weights.len() < 40 * n_bins / 4);
    }
}
