//! The per-segment frame tables of the lane path: what each cell holds, and how a table is laid
//! out fast (rows of samples `hop` apart between zeros; by 8x8 AVX2 transposes where every row is
//! such a run, one sample on from the last, in f32).

use rustfft::num_traits::Float;

use crate::simd::Simd;

/// A table cell's float type: f32 lays out constant-padded tables by 8x8 AVX2 transposes.
pub trait Cell: Float + From<f32> + Into<f64> + Send + Sync {
    /// `table[to + c · stride + r] = short[at + r · hop + c]` for `r < rows`, `c < hop`, in
    /// 8x8 blocks; `false`, with nothing written, where that is not available.
    fn transpose(
        simd: Simd,
        short: &[f32],
        at_hop: (usize, usize),
        table: &mut [Self],
        to_stride: (usize, usize),
        rows: usize,
    ) -> bool {
        let _ = (simd, short, at_hop, table, to_stride, rows);
        false
    }
}

impl Cell for f32 {
    #[inline(always)]
    fn transpose(
        simd: Simd,
        short: &[f32],
        at_hop: (usize, usize),
        table: &mut [f32],
        to_stride: (usize, usize),
        rows: usize,
    ) -> bool {
        crate::simd::transpose_blocks(simd, short, at_hop, table, to_stride, rows, at_hop.1)
    }
}

impl Cell for f64 {}

/// The rows of a table of `sources` (`hop` rows of `rows` cells, `blank` for a zero) as runs of
/// samples `hop` apart between zeros, or `None` when a row is not of that form.
pub fn runs(
    sources: &[u32],
    rows: usize,
    hop: usize,
    blank: usize,
) -> Option<Vec<(usize, usize, usize)>> {
    sources
        .chunks_exact(rows)
        .map(|row| {
            let lo = row.iter().position(|&j| j as usize != blank).unwrap_or(rows);
            let hi = lo + row[lo..].iter().take_while(|&&j| j as usize != blank).count();
            let first = row.get(lo).map_or(0, |&j| j as usize);
            let stepped =
                row[lo..hi].iter().enumerate().all(|(i, &j)| j as usize == first + i * hop);
            let zeros = row[hi..].iter().all(|&j| j as usize == blank);
            (stepped && zeros).then_some((lo, hi, first))
        })
        .collect()
}
