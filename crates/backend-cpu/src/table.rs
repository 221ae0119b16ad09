//! The per-segment frame tables of the lane path: what each cell holds, and how a table is laid
//! out fast (rows of samples `hop` apart between zeros; by 8x8 AVX2 transposes where every row is
//! such a run, one sample on from the last, in f32; an index gather otherwise), and the taps the
//! transform's first pass reads a table (or the copied-out last frames) by.

use rustfft::num_traits::Float;

use crate::lanes::Cv;
use crate::simd::Simd;
use crate::vector::Vector;

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
    /// The values loaded at each offset (`L`): a vector of more would pass `reach`.
    lanes: usize,
    /// The first pass's butterfly `j` reads the values `j + q · s` (`s` = `n / 8`, `q < 4`).
    quarter: usize,
    /// Where every value `j + q · s` sits `q · step` on from value `j` (a table whose `hop`
    /// divides `n / 4`, or the copied-out frames): `step`, and for each butterfly its first
    /// value's two offsets and its four values' window weights, so that a butterfly loads two
    /// offsets instead of eight.
    strided: Option<(usize, Vec<Quad<T>>)>,
}

/// The first pass's butterfly `j` where its inputs are strided (see [`Taps`]).
#[derive(Clone, Copy)]
struct Quad<T> {
    /// Value `j`'s real and imaginary offsets.
    at: [usize; 2],
    /// Each value's real and imaginary window weights.
    w: [[T; 2]; 4],
}

impl<T: Copy> Taps<T> {
    /// The taps of sample offsets `at` (one per sample, an even count) and `window`, `lanes`
    /// values loaded at each.
    pub fn new(at: &[usize], window: &[T], lanes: usize) -> Self {
        let taps: Vec<[(usize, T); 2]> = at
            .chunks_exact(2)
            .zip(window.chunks_exact(2))
            .map(|(o, w)| [(o[0], w[0]), (o[1], w[1])])
            .collect();
        let quarter = taps.len() / 4;
        let step = taps.get(quarter).and_then(|t| t[0].0.checked_sub(taps[0][0].0));
        let step = step.filter(|_| quarter > 0);
        let strided = step.filter(|&step| {
            (0..quarter).all(|j| {
                (0..4usize).all(|q| {
                    (0..2).all(|i| {
                        let moved = q.checked_mul(step).and_then(|d| taps[j][i].0.checked_add(d));
                        moved == Some(taps[j + q * quarter][i].0)
                    })
                })
            })
        });
        let strided = strided.map(|step| {
            let quad = |j: usize| Quad {
                at: [taps[j][0].0, taps[j][1].0],
                w: std::array::from_fn(|q| {
                    [taps[j + q * quarter][0].1, taps[j + q * quarter][1].1]
                }),
            };
            (step, (0..quarter).map(quad).collect())
        });
        // Saturating: an offset near the end of the address space makes every load fail its check.
        let reach = at.iter().max().map_or(0, |&o| o.saturating_add(lanes));
        Taps { reach, lanes, taps, quarter, strided }
    }

    /// The inputs of the first pass's butterfly `j`, windowed: the packed values `j + q · n / 8`
    /// of `L` frames from `src`, sample `i` of every lane at `src[at_i..]`.
    #[inline(always)]
    pub fn load4<V: Vector<T = T>>(&self, src: &[T], j: usize) -> [Cv<V>; 4] {
        let Some((step, quads)) = &self.strided else {
            // A loop, not `std::array::from_fn`: LLVM left that closure out of line, a call
            // (and its register spills) a value, which made the lane path 4x slower.
            let mut values = [Cv::zero(); 4];
            for (q, value) in values.iter_mut().enumerate() {
                *value = self.load(src, j + q * self.quarter);
            }
            return values;
        };
        // Loop-invariant, so one check a group instead of eight a butterfly.
        assert!(src.len() >= self.reach && V::L <= self.lanes);
        let Quad { at: [o0, o1], w } = quads[j];
        let mut values = [Cv::zero(); 4];
        for (q, (value, [w0, w1])) in values.iter_mut().zip(w).enumerate() {
            let (re, im) = (o0 + q * step, o1 + q * step);
            // SAFETY: these are the offsets of value `j + q · n / 8` (`Taps::new` keeps the
            // strided form only where they are), so at most `reach - lanes`, and `V::L` values
            // on lie within `src` (asserted above).
            #[allow(unsafe_code)]
            let (re, im) = unsafe { (V::load_at(src, re), V::load_at(src, im)) };
            *value = Cv { re: re.mul(V::splat(w0)), im: im.mul(V::splat(w1)) };
        }
        values
    }

    /// Packed value `j` of `L` frames from `src`, windowed.
    #[inline(always)]
    fn load<V: Vector<T = T>>(&self, src: &[T], j: usize) -> Cv<V> {
        // Loop-invariant, so one check a group instead of four a load.
        assert!(src.len() >= self.reach && V::L <= self.lanes);
        let [(o0, w0), (o1, w1)] = self.taps[j];
        // SAFETY: every offset of the taps is at most `reach - lanes`, and `V::L` values on lie
        // within `src` (asserted above).
        #[allow(unsafe_code)]
        let (re, im) = unsafe { (V::load_at(src, o0), V::load_at(src, o1)) };
        Cv { re: re.mul(V::splat(w0)), im: im.mul(V::splat(w1)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The taps of a table of `hop` (sample `i` at cell `(i % hop) · rows + i / hop`) or of the
    /// copied-out frames (sample `i` at `i · 8`), `n` samples, a window of `i`.
    fn taps(n: usize, hop: Option<usize>) -> Taps<f32> {
        let rows = 17 + (n - 1) / hop.unwrap_or(1);
        let at: Vec<usize> = match hop {
            Some(hop) => (0..n).map(|i| (i % hop) * rows + i / hop).collect(),
            None => (0..n).map(|i| i * 8).collect(),
        };
        let window: Vec<f32> = (0..n).map(|i| i as f32).collect();
        Taps::new(&at, &window, 8)
    }

    /// A butterfly's inputs are strided where the hop divides `n / 4` (the defaults: 256 and
    /// 32) and for the copied-out frames, and read one by one otherwise (256 and 24).
    #[test]
    fn inputs_are_strided_where_the_hop_divides_a_quarter_of_the_samples() {
        let step = |t: &Taps<f32>| t.strided.as_ref().map(|&(step, _)| step);
        assert_eq!(step(&taps(256, Some(32))), Some(2));
        assert_eq!(step(&taps(16, Some(4))), Some(1));
        assert_eq!(step(&taps(256, None)), Some(64 * 8));
        assert_eq!(step(&taps(256, Some(24))), None);
        assert_eq!(step(&taps(256, Some(48))), None);
    }

    /// Both forms load the same windowed values: each butterfly's four inputs are the packed
    /// values `j + q · n / 8`, sample `2 v` real and `2 v + 1` imaginary, times its weight.
    #[test]
    fn both_forms_load_each_value_at_its_offset_times_its_weight() {
        for (n, hop) in [(256, Some(32)), (256, Some(24)), (64, None)] {
            let taps = taps(n, hop);
            let src: Vec<f32> = (0..taps.reach).map(|x| (x % 1009) as f32).collect();
            let rows = 17 + (n - 1) / hop.unwrap_or(1);
            let at = |i: usize| hop.map_or(i * 8, |hop| (i % hop) * rows + i / hop);
            for j in 0..n / 8 {
                let got = taps.load4::<[f32; 8]>(&src, j);
                for (q, value) in got.iter().enumerate() {
                    let v = j + q * n / 8;
                    for l in 0..8 {
                        let want = |i: usize| src[at(i) + l] * i as f32;
                        let (re, im) = (value.re[l], value.im[l]);
                        assert_eq!((re, im), (want(2 * v), want(2 * v + 1)), "{n} {hop:?} {j} {q}");
                    }
                }
            }
        }
    }
}
