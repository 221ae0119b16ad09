//! The per-segment frame tables of the lane path: what each cell holds, and how a table is laid
//! out fast (rows of samples `hop` apart between zeros; by 8x8 AVX2 transposes where every row is
//! such a run, one sample on from the last, in f32; an index gather otherwise), and the taps the
//! transform's first pass reads a table (or the copied-out last frames) by.

use rustfft::num_traits::Float;

use crate::simd::Simd;

/// A table cell's float type: f32 lays out constant-padded tables by 8x8 AVX2 transposes.
pub trait Cell: Float + From<f32> + Into<f64> + Send + Sync {
    /// `dst[to + j · dst_stride + i] = src[at + i · stride + j]` for `i < rows`, `j < cols`
    /// (both multiples of 8), in 8x8 blocks; `false`, with nothing written, where that is not
    /// available.
    fn transpose(
        simd: Simd,
        src: &[Self],
        at_stride: (usize, usize),
        dst: &mut [Self],
        to_stride: (usize, usize),
        rows: usize,
        cols: usize,
    ) -> bool {
        let _ = (simd, src, at_stride, dst, to_stride, rows, cols);
        false
    }

    /// An f32 slice as cells (`None` where cells are not f32).
    fn cast(values: &[f32]) -> Option<&[Self]> {
        let _ = values;
        None
    }
}

impl Cell for f32 {
    #[inline(always)]
    fn transpose(
        simd: Simd,
        src: &[f32],
        at_stride: (usize, usize),
        dst: &mut [f32],
        to_stride: (usize, usize),
        rows: usize,
        cols: usize,
    ) -> bool {
        crate::simd::transpose_blocks(simd, src, at_stride, dst, to_stride, rows, cols)
    }

    #[inline(always)]
    fn cast(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }
}

impl Cell for f64 {}

/// How a segment's table is laid out, decided once from what each cell holds: `hop` rows of
/// `rows` cells, cell `c · rows + r` holding the short segment's sample `sources[..]`, or a zero
/// where that is `blank` (the segment's length).
pub struct Layout {
    sources: Vec<u32>,
    rows: usize,
    hop: usize,
    /// Every row as zeros, a run of samples `hop` apart, zeros: its first cell with a sample,
    /// its end, and that first sample (`None` where a row is not of that form).
    runs: Option<Vec<(usize, usize, usize)>>,
    /// The run every row shares, one sample on from the row before: the table is then a
    /// transpose of the segment.
    block: Option<(usize, usize, usize)>,
}

impl Layout {
    /// The layout of a table whose cells hold `sources`.
    pub fn new(sources: Vec<u32>, rows: usize, hop: usize, blank: usize) -> Self {
        let runs: Option<Vec<_>> = sources
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
            .collect();
        let block = runs.as_ref().and_then(|runs| {
            let (lo, hi, first) = *runs.first()?;
            let shared = runs.iter().enumerate().all(|(c, &run)| run == (lo, hi, first + c));
            shared.then_some((lo, hi, first))
        });
        Layout { sources, rows, hop, runs, block }
    }

    /// Cells in a table.
    pub fn cells(&self) -> usize {
        self.sources.len()
    }

    /// Lays out the short segment `short` as `table`, by 8x8 transposes where the layout and
    /// the CPU allow, else row by row, else cell by cell through `padded` (`short` and a zero,
    /// its last value never written).
    ///
    /// `table` must hold zeros in every cell with no sample (the padding), as a table made of
    /// zeros and only ever laid out by this layout does: the transposes write the samples only.
    /// (Zeroing the whole table first cost about 4 % of the lane path on a Zen 3; two short
    /// fills a row, before that, about 11 % with AVX-512.)
    #[inline(always)]
    pub fn lay_out<T: Cell>(&self, simd: Simd, short: &[f32], padded: &mut [T], table: &mut [T]) {
        let (hop, rows) = (self.hop, self.rows);
        let blank = short.len();
        debug_assert!(
            self.sources.iter().zip(&*table).all(|(&j, &x)| j as usize != blank || x == T::zero()),
            "a table's padding holds zeros"
        );
        if let Some((lo, hi, first)) = self.block
            && let Some(cells) = T::cast(short)
            && crate::simd::blocks_fit(simd, hi - lo, hop)
            && T::transpose(simd, cells, (first, hop), table, (lo, rows), hi - lo, hop)
        {
            return;
        }
        if let Some(runs) = &self.runs {
            for (row, &(lo, hi, first)) in table.chunks_exact_mut(rows).zip(runs) {
                row[..lo].fill(T::zero());
                let samples = short[first..].iter().step_by(hop);
                for (cell, &x) in row[lo..hi].iter_mut().zip(samples) {
                    *cell = <T as From<f32>>::from(x);
                }
                row[hi..].fill(T::zero());
            }
            return;
        }
        for (x, &v) in padded.iter_mut().zip(short) {
            *x = <T as From<f32>>::from(v);
        }
        for (cell, &src) in table.iter_mut().zip(&self.sources) {
            *cell = padded[src as usize];
        }
    }
}

/// The first pass's inputs: for packed value `j`, where its real and imaginary samples' lane 0
/// is in the source and their window weights, and how far into the source the loads reach.
pub struct Taps<T> {
    taps: Vec<[(usize, T); 2]>,
    /// The largest offset plus `L`: the length a source must have.
    reach: usize,
}

impl<T: Copy> Taps<T> {
    /// The taps of sample offsets `at` (one per sample, an even count) and `window`, `lanes`
    /// values loaded at each.
    pub fn new(at: &[usize], window: &[T], lanes: usize) -> Self {
        let taps = at
            .chunks_exact(2)
            .zip(window.chunks_exact(2))
            .map(|(o, w)| [(o[0], w[0]), (o[1], w[1])])
            .collect();
        Taps { taps, reach: at.iter().max().map_or(0, |&o| o + lanes) }
    }

    /// Packed value `j`'s real and imaginary taps: (offset, window weight) each.
    #[inline(always)]
    pub fn tap(&self, j: usize) -> [(usize, T); 2] {
        self.taps[j]
    }

    /// The length a source must have for every tap's load.
    #[inline(always)]
    pub fn reach(&self) -> usize {
        self.reach
    }
}
