//! The taps the lane transform's first pass reads its inputs by: for each packed value, where
//! its samples' lane 0 lies in a segment's table (or in the copied-out last frames) and its
//! window weights, and the evenly spaced form that loads a butterfly's four inputs from two
//! offsets.

use crate::lanes::Cv;
use crate::vector::Vector;

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
