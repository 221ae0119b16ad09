//! The per-segment frame tables of the lane path: what each cell holds, and how a table is laid
//! out fast (rows of samples `hop` apart between zeros; by 8x8 AVX2 transposes in f32 where every
//! row is such a run, one sample on from the last, or where the table is the constant-padded
//! segment transposed; an index gather otherwise), and the taps the transform's first pass reads
//! a table (or the copied-out last frames) by.

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
    /// `shift` where every cell `(c, r)` holds sample `r · hop + c - shift` where that lies in
    /// the segment, and zero elsewhere (constant padding whose length is not a multiple of the
    /// hop, so the rows' runs start at different cells): the table is then a transpose of the
    /// padded segment, taken by 8x8 blocks of 8 rows where those lie within the segment.
    shifted: Option<usize>,
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
        let shifted = Self::shift(&sources, rows, hop, blank);
        Layout { sources, rows, hop, runs, block, shifted }
    }

    /// The shift of [`Layout::shifted`], where every cell's source is of that form.
    fn shift(sources: &[u32], rows: usize, hop: usize, blank: usize) -> Option<usize> {
        let at = sources.iter().position(|&j| j as usize != blank)?;
        let shift = ((at % rows) * hop + at / rows).checked_sub(sources[at] as usize)?;
        let fits = sources.iter().enumerate().all(|(at, &j)| {
            let p = (at % rows) * hop + at / rows;
            j as usize == p.checked_sub(shift).filter(|&i| i < blank).unwrap_or(blank)
        });
        fits.then_some(shift)
    }

    /// Cells in a table.
    pub fn cells(&self) -> usize {
        self.sources.len()
    }

    /// Lays out the short segment `short` as `table`, by 8x8 transposes where the layout and
    /// the CPU allow (of the segment itself, or eight rows at a time of the padded segment, the
    /// rows reaching into the padding padded in `padded` first), else row by row, else cell by
    /// cell through `padded` (`short` and a zero, its last value never written).
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
        if let Some(shift) = self.shifted
            && let Some(cells) = T::cast(short)
            && crate::simd::blocks_fit(simd, 8, hop)
        {
            let len = short.len();
            for r0 in (0..rows).step_by(8) {
                // Eight rows whose samples all lie in the segment: one row of 8x8 transposes.
                let start = (r0 * hop).checked_sub(shift).filter(|s| s + 8 * hop <= len);
                if let Some(start) = start.filter(|_| r0 + 8 <= rows)
                    && T::transpose(simd, cells, (start, hop), table, (r0, rows), 8, hop)
                {
                    continue;
                }
                // Eight rows that reach into the padding: padded in `padded` first, where that
                // holds them, then transposed.
                let chunk = 8 * hop;
                if r0 + 8 <= rows && padded.len() >= chunk {
                    // Values `lo..hi` of the chunk are samples, from `r0 · hop + lo - shift` on.
                    let lo = shift.saturating_sub(r0 * hop).min(chunk);
                    let hi = (shift + len).saturating_sub(r0 * hop).clamp(lo, chunk);
                    padded[..lo].fill(T::zero());
                    let samples = short.get((r0 * hop + lo).saturating_sub(shift)..);
                    let samples = samples.unwrap_or_default();
                    for (x, &v) in padded[lo..hi].iter_mut().zip(samples) {
                        *x = <T as From<f32>>::from(v);
                    }
                    padded[hi..chunk].fill(T::zero());
                    if T::transpose(simd, padded, (0, hop), table, (r0, rows), 8, hop) {
                        continue;
                    }
                }
                // Else (the last rows, fewer than eight) their samples one by one (the padding
                // cells keep their zeros).
                for r in r0..(r0 + 8).min(rows) {
                    for c in 0..hop {
                        if let Some(k) = (r * hop + c).checked_sub(shift).filter(|&k| k < len) {
                            table[c * rows + r] = <T as From<f32>>::from(short[k]);
                        }
                    }
                }
            }
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

    /// A table of constant padding `shift` (the padded segment transposed) holds each cell's
    /// sample, or zero, whichever path lays it out: 8x8 transposes, and edge rows padded first or
    /// one by one (the last rows short of eight, or a segment shorter than eight hops), where the
    /// hop is a multiple of 8 under AVX2; rows or cells otherwise. Paddings that are and are not multiples of the hop, row
    /// counts that are and are not multiples of 8.
    #[test]
    fn a_shifted_table_holds_each_cells_sample_on_every_path() {
        let cases: [(usize, usize, usize); 6] = [
            (160, 256, 16_000),
            (160, 256, 15_840),
            (160, 256, 1000),
            (24, 128, 512),
            (32, 128, 512),
            (20, 128, 512),
        ];
        // Rows as the frames need them, and rounded up past a multiple of 8 (as the lane
        // engine lays its tables out), so that eight rows lie wholly past the segment's end.
        let both = cases.into_iter().flat_map(|(hop, shift, len)| {
            let rows = (len + 2 * shift) / hop + 1;
            [(hop, shift, len, rows), (hop, shift, len, rows.next_multiple_of(8) + 8)]
        });
        for (hop, shift, len, rows) in both {
            let source = |c: usize, r: usize| {
                (r * hop + c).checked_sub(shift).filter(|&k| k < len).unwrap_or(len)
            };
            let sources: Vec<u32> =
                (0..hop * rows).map(|at| source(at / rows, at % rows) as u32).collect();
            let layout = Layout::new(sources, rows, hop, len);
            assert_eq!(layout.shifted, Some(shift), "hop {hop}");
            let short: Vec<f32> = (0..len).map(|k| (k % 997) as f32 + 1.0).collect();
            for simd in [Simd::detect(), Simd::Baseline] {
                let (mut padded, mut table) = (vec![0.0; len + 1], vec![0.0f32; hop * rows]);
                // Twice, as a reused table is: the padding keeps its zeros.
                for _ in 0..2 {
                    layout.lay_out(simd, &short, &mut padded, &mut table);
                }
                for (at, &x) in table.iter().enumerate() {
                    let k = source(at / rows, at % rows);
                    let want = short.get(k).copied().unwrap_or(0.0);
                    assert_eq!(x, want, "hop {hop}, {simd:?}, cell {at}");
                }
            }
        }
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
