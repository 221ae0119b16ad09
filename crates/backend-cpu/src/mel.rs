//! The sparse mel projection: each filter stored as its non-zero span only, applied to a
//! bin-major power table as one AXPY over frames per weight, or in blocks of neighbouring
//! filters whose sums run side by side (the lane path).

use melkit_core::mel::MelFilterbank;

use crate::vector::Vector;

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

    /// The blocked form of these filters over `n_bins` bins (see [`MelBlocks`]).
    pub fn blocks(&self, n_bins: usize) -> MelBlocks {
        MelBlocks::new(self, n_bins)
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

/// Filters a block of [`MelBlocks`] holds.
pub const MEL_BLOCK: usize = 8;

/// The filters in blocks of [`MEL_BLOCK`] neighbours, each block's filters padded with zero
/// weights to one width, so that a block's sums are independent chains of fused multiply-adds
/// run side by side with one loop and no branch on a filter's own width (one filter's sum at a
/// time is a chain of dependent additions, and a loop a filter mispredicts its exit). A last
/// block short of filters is filled with filters of zero weights, which nothing reads.
#[derive(Clone, Debug)]
pub struct MelBlocks {
    /// Each block's first bin per filter, width, and where its weights start.
    blocks: Vec<([usize; MEL_BLOCK], usize, usize)>,
    /// `[block][i][filter]`: weight `i` of each filter of the block.
    weights: Vec<f32>,
    /// The filters, the padding of a last block not counted.
    n_mels: usize,
    /// The bins every block's padded spans lie within: the largest, over the blocks, of a
    /// block's largest first bin plus its width.
    reach: usize,
}

impl MelBlocks {
    /// The blocks of `mel`'s filters, over `n_bins` bins (at least every filter's span).
    fn new(mel: &SparseMel, n_bins: usize) -> Self {
        let (mut blocks, mut weights) = (Vec::new(), Vec::new());
        for start in (0..mel.n_mels()).step_by(MEL_BLOCK) {
            let filters: Vec<(usize, &[f32])> =
                (start..mel.n_mels().min(start + MEL_BLOCK)).map(|m| mel.filter(m)).collect();
            let width = filters.iter().map(|(_, w)| w.len()).max().unwrap_or(0).max(1);
            let width = width.min(n_bins);
            // A filter whose padded span would pass the last bin starts earlier instead.
            let firsts: Vec<usize> = filters.iter().map(|&(a, _)| a.min(n_bins - width)).collect();
            let mut first = [0; MEL_BLOCK];
            first[..firsts.len()].copy_from_slice(&firsts);
            let offset = weights.len();
            weights.resize(offset + width * MEL_BLOCK, 0.0);
            for (j, (&(a, w), &f)) in filters.iter().zip(&firsts).enumerate() {
                for (i, &x) in w.iter().enumerate() {
                    weights[offset + (a - f + i) * MEL_BLOCK + j] = x;
                }
            }
            blocks.push((first, width, offset));
        }
        let reach = blocks.iter().map(|(first, width, _)| first.iter().max().unwrap_or(&0) + width);
        MelBlocks { reach: reach.max().unwrap_or(0), blocks, weights, n_mels: mel.n_mels() }
    }

    /// The number of blocks.
    pub fn count(&self) -> usize {
        self.blocks.len()
    }

    /// The number of filters (the padding of a last block not counted).
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Block `b`: each filter's first bin, the width, and the weights `[i][filter]`.
    #[inline(always)]
    pub fn block(&self, b: usize) -> (&[usize; MEL_BLOCK], usize, &[f32]) {
        let (first, width, offset) = &self.blocks[b];
        (first, *width, &self.weights[*offset..offset + width * MEL_BLOCK])
    }

    /// The sums of block `b`'s filters over `power` (`[bin]`, a vector of frames a bin), one
    /// vector of frames a filter. `FMA`: fused multiply-adds (only where the CPU has them).
    #[inline(always)]
    pub fn sums<P: Vector<T = f32>, const FMA: bool>(
        &self,
        power: &[P],
        b: usize,
    ) -> [P; MEL_BLOCK] {
        let (first, width, weights) = self.block(b);
        // Every filter's padded span lies within `reach` bins (`MelBlocks::new`): one check a
        // call instead of one a filter (or a branch per weight and filter in the loop).
        assert!(weights.len() == width * MEL_BLOCK && self.reach <= power.len());
        debug_assert!(first.iter().all(|&f| f + width <= self.reach));
        let mut acc = [P::splat(0.0); MEL_BLOCK];
        for i in 0..width {
            for j in 0..MEL_BLOCK {
                // SAFETY: `i < width`, `first[j] + width <= reach <= power.len()` and
                // `weights.len() == width * MEL_BLOCK`, asserted above.
                #[allow(unsafe_code)]
                let (w, p) = unsafe {
                    (*weights.get_unchecked(i * MEL_BLOCK + j), *power.get_unchecked(first[j] + i))
                };
                acc[j] = P::splat(w).mul_add::<FMA>(p, acc[j]);
            }
        }
        acc
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

    /// Every block's sums equal the dense product, for whole blocks and a last block short of
    /// filters (40 = 5 · 8, 37 leaves 5, 3).
    #[test]
    fn blocked_sums_equal_the_dense_product() {
        for (n_mels, fmax) in [(40, 4000.0), (37, 3800.0), (3, 4000.0)] {
            let fb = MelFilterbank::new(
                8000.0,
                512,
                n_mels,
                0.0,
                fmax,
                MelScale::Slaney,
                MelNorm::Slaney,
            );
            let n_bins = 257;
            let blocks = SparseMel::new(&fb).blocks(n_bins);
            assert_eq!(blocks.count(), n_mels.div_ceil(MEL_BLOCK));
            assert_eq!(blocks.n_mels(), n_mels);
            let power: Vec<f32> = (0..n_bins).map(|i| ((i * 7919) % 101) as f32 + 0.5).collect();
            for b in 0..blocks.count() {
                let (first, width, weights) = blocks.block(b);
                for j in 0..MEL_BLOCK {
                    let got: f64 = (0..width)
                        .map(|i| f64::from(weights[i * MEL_BLOCK + j] * power[first[j] + i]))
                        .sum();
                    let m = b * MEL_BLOCK + j;
                    let dense: f64 = if m < n_mels {
                        (0..n_bins).map(|k| fb.row(m)[k] * f64::from(power[k])).sum()
                    } else {
                        0.0
                    };
                    assert!((got - dense).abs() <= 1e-5 * dense.max(1.0), "mel {m}: {got} {dense}");
                }
            }
        }
    }

    /// A narrow filter that ends at the last bin, in a block made wider by another, starts
    /// earlier with its weights moved along; its sums and an empty filter's stay exact.
    #[test]
    fn a_padded_filter_past_the_last_bin_starts_earlier() {
        let mel = SparseMel {
            first_bin: vec![0, 8, 3],
            offsets: vec![0, 6, 8, 8],
            weights: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        };
        let n_bins = 10;
        let blocks = mel.blocks(n_bins);
        let (first, width, _) = blocks.block(0);
        assert_eq!((width, first[0], first[1], first[2]), (6, 0, 4, 3));
        let power: Vec<[f32; 8]> =
            (0..n_bins).map(|k| std::array::from_fn(|l| (k * k + l) as f32)).collect();
        let sums = blocks.sums::<[f32; 8], false>(&power, 0);
        for (m, sum) in sums.iter().enumerate() {
            for l in 0..8 {
                let want: f32 = match m {
                    0..3 => {
                        let (a, w) = mel.filter(m);
                        w.iter().enumerate().map(|(i, &x)| x * power[a + i][l]).sum()
                    }
                    _ => 0.0,
                };
                assert_eq!(sum[l], want, "filter {m} lane {l}");
            }
        }
    }
}
