//! The per-segment frame tables of the lane path: what each cell holds, and how a table is laid
//! out fast (rows of samples `hop` apart between zeros; by 8x8 AVX2 transposes in f32 where every
//! row is such a run, one sample on from the last, or where the table is the constant-padded
//! segment transposed; an index gather otherwise). The taps the transform's first pass reads a
//! table by are in `taps`.

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
    /// cell through `padded` (`short` and a zero). `padded` holds at least `short`'s length and
    /// one value.
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
            let (len, chunk) = (short.len(), 8 * hop);
            for r0 in (0..rows).step_by(8) {
                let eight = r0 + 8 <= rows;
                // Eight rows whose samples all lie in the segment: one row of 8x8 transposes.
                let start = (r0 * hop).checked_sub(shift).filter(|s| eight && s + chunk <= len);
                if let Some(start) = start
                    && T::transpose(simd, cells, (start, hop), table, (r0, rows), 8, hop)
                {
                    continue;
                }
                // Eight rows that reach into the padding: padded in `padded` first, where that
                // holds them, then transposed.
                if eight && padded.len() >= chunk {
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
        padded[short.len()] = T::zero();
        for (cell, &src) in table.iter_mut().zip(&self.sources) {
            *cell = padded[src as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of constant padding `shift` (the padded segment transposed) holds each cell's
    /// sample, or zero, whichever path lays it out: 8x8 transposes, and edge rows padded first or
    /// one by one (the last rows short of eight, or a segment shorter than eight hops), where the
    /// hop is a multiple of 8 under AVX2; rows or cells otherwise. Paddings that are and are not
    /// multiples of the hop, row counts that are and are not multiples of 8.
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
}
