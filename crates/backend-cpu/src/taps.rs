//! The taps the lane transform's first pass reads its inputs by: for each packed value, where
//! its samples' lane 0 lies in a segment's table (or in the copied-out last frames) and its
//! window weights, and the evenly spaced form that loads a butterfly's four inputs from two
//! offsets.

use crate::lanes::{Cv, LaneFft};
use crate::vector::Vector;

/// The first pass's inputs: for packed value `j`, where its real and imaginary samples' lane 0
/// is in the source and their window weights, and how far into the source the loads reach.
pub struct Taps<T> {
    /// For each butterfly `j`, its four values' (`j + q · n / 8`, `q < 4`) real and imaginary
    /// taps.
    each: Vec<[[(usize, T); 2]; 4]>,
    /// The largest offset plus `L`: the length a source must have.
    reach: usize,
    /// The values loaded at each offset (`L`): a vector of more would pass `reach`.
    lanes: usize,
    /// Where every value `j + q · n / 8` sits `q · step` on from value `j` (a table whose `hop`
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
        let each = (0..quarter).map(|j| std::array::from_fn(|q| taps[j + q * quarter])).collect();
        Taps { reach, lanes, each, strided }
    }

    /// `fft`'s first pass into `data`, its inputs windowed from `src`: by two offsets a
    /// butterfly where they are strided, else by eight. The form is chosen and the source's
    /// length checked once a group; only the first pass is compiled for each form.
    #[inline(always)]
    pub fn first_pass<V: Vector<T = T>, const FMA: bool>(
        &self,
        fft: &LaneFft<V>,
        data: &mut [Cv<V>],
        src: &[T],
    ) {
        assert!(src.len() >= self.reach && V::L <= self.lanes);
        match &self.strided {
            Some((step, quads)) => fft.first_pass::<_, FMA>(
                data,
                quads,
                #[inline(always)]
                // SAFETY: `quad` is one of the strided form's (`Taps::new` keeps that form only
                // where every value's offsets are its first value's plus `q · step`), so within
                // `reach - lanes`, and `src` holds `reach` values (asserted above).
                #[allow(unsafe_code)]
                |quad| unsafe { strided(src, *step, quad) },
            ),
            None => fft.first_pass::<_, FMA>(
                data,
                &self.each,
                #[inline(always)]
                // SAFETY: every offset of the taps is at most `reach - lanes`, and `src` holds
                // `reach` values (asserted above).
                #[allow(unsafe_code)]
                |taps| unsafe { each(src, taps) },
            ),
        }
    }
}

/// A strided butterfly's four values from `src`, windowed.
///
/// # Safety
/// Every offset `quad.at[i] + q · step` (`q < 4`) is at most `src.len() - V::L`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn strided<V: Vector>(src: &[V::T], step: usize, quad: &Quad<V::T>) -> [Cv<V>; 4] {
    let Quad { at: [o0, o1], w } = *quad;
    let mut values = [Cv::zero(); 4];
    for (q, (value, [w0, w1])) in values.iter_mut().zip(w).enumerate() {
        // SAFETY: the caller's promise.
        let (re, im) = unsafe { (V::load_at(src, o0 + q * step), V::load_at(src, o1 + q * step)) };
        *value = Cv { re: re.mul(V::splat(w0)), im: im.mul(V::splat(w1)) };
    }
    values
}

/// A butterfly's four values from `src` at their own taps, windowed. A loop, not
/// `std::array::from_fn`: LLVM left that closure out of line, a call (and its register spills)
/// a value, which made the lane path 4x slower.
///
/// # Safety
/// Every offset of `taps` is at most `src.len() - V::L`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn each<V: Vector>(src: &[V::T], taps: &[[(usize, V::T); 2]; 4]) -> [Cv<V>; 4] {
    let mut values = [Cv::zero(); 4];
    for (value, &[(o0, w0), (o1, w1)]) in values.iter_mut().zip(taps) {
        // SAFETY: the caller's promise.
        let (re, im) = unsafe { (V::load_at(src, o0), V::load_at(src, o1)) };
        *value = Cv { re: re.mul(V::splat(w0)), im: im.mul(V::splat(w1)) };
    }
    values
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
            // SAFETY (both loads): `src` holds `reach` values, past every offset plus 8.
            #[allow(unsafe_code)]
            let strided: Option<Vec<[Cv<[f32; 8]>; 4]>> =
                taps.strided.as_ref().map(|(step, quads)| {
                    quads.iter().map(|quad| unsafe { strided(&src, *step, quad) }).collect()
                });
            assert_eq!(strided.is_some(), hop.is_none_or(|hop| (n / 4).is_multiple_of(hop)));
            #[allow(unsafe_code)]
            let each: Vec<[Cv<[f32; 8]>; 4]> =
                taps.each.iter().map(|t| unsafe { each(&src, t) }).collect();
            assert_eq!(each.len(), n / 8);
            for (j, got) in strided.iter().flatten().chain(&each).enumerate() {
                let j = j % (n / 8);
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
