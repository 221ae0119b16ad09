//! The lane-batched real FFT: a vector of frames at once, one per SIMD lane, each carried
//! through the same radix-4 (and a last radix-2) decimation-in-frequency transform. The data
//! are in structure-of-arrays form, `[bin][re|im][lane]`, so every butterfly is a handful of
//! whole-vector operations on `L` frames with no shuffle; the code is written once over
//! [`Vector`] (eight lanes for AVX2 or the baseline, sixteen for AVX-512).
//!
//! A real frame of `n` samples is packed as `n / 2` complex values (even samples real, odd ones
//! imaginary), transformed, and split into the `n / 2 + 1` bins of the real transform while its
//! power is taken; the transform's digit-reversed output order is undone by a table there.

use rustfft::num_traits::{Float, Zero};

use crate::vector::Vector;

/// One complex value per lane.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Cv<V> {
    /// Real parts.
    pub re: V,
    /// Imaginary parts.
    pub im: V,
}

impl<V: Vector> Cv<V> {
    /// Zero in every lane.
    pub fn zero() -> Self {
        Cv { re: V::splat(V::T::zero()), im: V::splat(V::T::zero()) }
    }
}

/// One radix-4 pass: blocks of `4 * span`, with the twiddles `w^j, w^2j, w^3j` for each `j`.
struct Radix4<T> {
    span: usize,
    twiddles: Vec<[(T, T); 3]>,
}

/// Where bin `k`'s `Z_k` and `Z_{m-k}` are, and `e^{-2πik/n}`.
type Split<T> = (usize, usize, (T, T));

/// The transform of `n` real samples (a power of two, at least 8), prepared once.
pub struct LaneFft<V: Vector> {
    /// Complex points, `n / 2`.
    m: usize,
    passes: Vec<Radix4<V::T>>,
    /// A last radix-2 pass (when `log2 m` is odd).
    radix2: bool,
    /// For the bins `0..=m`: where `Z_k` and `Z_{m-k}` are, and `e^{-2πik/n}`.
    split: Vec<Split<V::T>>,
}

/// `e^{-2πi k / n}` in `T`, computed in f64.
fn root<T: Float>(k: usize, n: usize) -> (T, T) {
    let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
    let cast = |x: f64| T::from(x).unwrap_or_else(T::zero);
    (cast(angle.cos()), cast(angle.sin()))
}

impl<V: Vector> LaneFft<V> {
    /// Whether the lane transform covers `n` samples.
    pub fn supports(n: usize) -> bool {
        n.is_power_of_two() && (8..=1 << 16).contains(&n)
    }

    /// The plan for `n` samples ([`LaneFft::supports`] must hold).
    pub fn new(n: usize) -> Self {
        debug_assert!(Self::supports(n));
        let m = n / 2;
        let mut passes = Vec::new();
        let mut radices = Vec::new();
        let mut block = m;
        while block >= 4 {
            let span = block / 4;
            let twiddles = (0..span)
                .map(|j| [root(j, block), root(2 * j, block), root(3 * j, block)])
                .collect();
            passes.push(Radix4 { span, twiddles });
            radices.push(4);
            block = span;
        }
        let radix2 = block == 2;
        if radix2 {
            radices.push(2);
        }
        let mut position = vec![0; m];
        for p in 0..m {
            position[frequency(p, m, &radices)] = p;
        }
        let split =
            (0..=m).map(|k| (position[k % m], position[(m - k % m) % m], root(k, n))).collect();
        LaneFft { m, passes, radix2, split }
    }

    /// Complex points the transform works on (`n / 2`).
    pub fn points(&self) -> usize {
        self.m
    }

    /// The packed transform of the `n / 2` values into `data`, output digit-reversed: the
    /// first pass ([`first_pass`](Self::first_pass)) from `inputs` by `load`, then the others.
    #[cfg(test)]
    pub fn transform<I, const FMA: bool>(
        &self,
        data: &mut [Cv<V>],
        inputs: &[I],
        load: impl Fn(&I) -> [Cv<V>; 4],
    ) {
        self.first_pass::<I, FMA>(data, inputs, load);
        self.other_passes::<FMA>(data);
    }

    /// The first radix-4 pass into `data`, its inputs read as they come (so framing and
    /// windowing cost no pass of their own): `load(&inputs[j])` gives the values
    /// `j + q · n / 8` (`q < 4`) of butterfly `j`. A slice and an inlined closure, not an
    /// iterator: a zip calls a `Map`'s closure through a function LLVM leaves out of line,
    /// compiled without the CPU's vector instructions (measured 5x slower). `FMA`: twiddles
    /// with fused multiply-adds (where the CPU has them).
    #[inline(always)]
    pub fn first_pass<I, const FMA: bool>(
        &self,
        data: &mut [Cv<V>],
        inputs: &[I],
        load: impl Fn(&I) -> [Cv<V>; 4],
    ) {
        // n >= 8 makes at least one radix-4 pass.
        let Some(first) = self.passes.first() else { return };
        let s = first.span;
        let (a, more) = data.split_at_mut(s);
        let (b, more) = more.split_at_mut(s);
        let (c, d) = more.split_at_mut(s);
        let mut rows = a.iter_mut().zip(b).zip(c).zip(d).zip(inputs);
        if V::REGISTERS {
            // Row 0, whose twiddles are 1, on its own: no branch in the loop.
            if let Some(((((a, b), c), d), input)) = rows.next() {
                let [x0, x1, x2, x3] = load(input);
                [*a, *b, *c, *d] = butterfly4::<V, FMA>(&x0, &x1, &x2, &x3, None);
            }
            for (((((a, b), c), d), input), w) in rows.zip(&first.twiddles[1..]) {
                let [x0, x1, x2, x3] = load(input);
                [*a, *b, *c, *d] = butterfly4::<V, FMA>(&x0, &x1, &x2, &x3, Some(w));
            }
        } else {
            for (j, (((((a, b), c), d), input), w)) in rows.zip(&first.twiddles).enumerate() {
                // Row 0's twiddles are 1.
                let w = (j > 0).then_some(w);
                let [x0, x1, x2, x3] = load(input);
                [*a, *b, *c, *d] = butterfly4::<V, FMA>(&x0, &x1, &x2, &x3, w);
            }
        }
    }

    /// The passes after the first, in place.
    #[inline(always)]
    pub fn other_passes<const FMA: bool>(&self, data: &mut [Cv<V>]) {
        let Some((_, rest)) = self.passes.split_first() else { return };
        // The last radix-4 pass (span 2) and the radix-2 pass fused, a block of eight values
        // held at once, where that measured faster (see `Vector::FUSED_LAST`).
        let fuse = V::FUSED_LAST && self.radix2 && !rest.is_empty();
        let (middle, last) = rest.split_at(rest.len() - usize::from(fuse));
        for pass in middle {
            let s = pass.span;
            for block in data.chunks_exact_mut(4 * s) {
                let (a, more) = block.split_at_mut(s);
                let (b, more) = more.split_at_mut(s);
                let (c, d) = more.split_at_mut(s);
                let mut rows = a.iter_mut().zip(b).zip(c).zip(d);
                if V::REGISTERS {
                    // Row 0 apart, as in the first pass.
                    if let Some((((a, b), c), d)) = rows.next() {
                        [*a, *b, *c, *d] = butterfly4::<V, FMA>(a, b, c, d, None);
                    }
                    for ((((a, b), c), d), w) in rows.zip(&pass.twiddles[1..]) {
                        [*a, *b, *c, *d] = butterfly4::<V, FMA>(a, b, c, d, Some(w));
                    }
                } else {
                    for (j, ((((a, b), c), d), w)) in rows.zip(&pass.twiddles).enumerate() {
                        let w = (j > 0).then_some(w);
                        [*a, *b, *c, *d] = butterfly4::<V, FMA>(a, b, c, d, w);
                    }
                }
            }
        }
        if let [pass] = last {
            let w = Some(&pass.twiddles[1]);
            for x in data.chunks_exact_mut(8) {
                let [a0, b0, c0, d0] = butterfly4::<V, FMA>(&x[0], &x[2], &x[4], &x[6], None);
                let [a1, b1, c1, d1] = butterfly4::<V, FMA>(&x[1], &x[3], &x[5], &x[7], w);
                [x[0], x[1], x[2], x[3]] =
                    [add(&a0, &a1), sub(&a0, &a1), add(&b0, &b1), sub(&b0, &b1)];
                [x[4], x[5], x[6], x[7]] =
                    [add(&c0, &c1), sub(&c0, &c1), add(&d0, &d1), sub(&d0, &d1)];
            }
        } else if self.radix2 {
            for pair in data.chunks_exact_mut(2) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = add(&a, &b);
                pair[1] = sub(&a, &b);
            }
        }
    }

    /// `4 |X_k|²` of bin `k` (`0..=n/2`) of each lane's real frame, from the transformed `data`
    /// (the factor 4 is left to the mel weights, saving a multiplication a bin).
    #[inline(always)]
    pub fn power<const FMA: bool>(&self, data: &[Cv<V>], k: usize) -> V {
        let [er, ei, a, b] = self.split_terms::<FMA>(data, k);
        let (xr, xi) = (er.add(a), ei.add(b));
        xr.mul_add::<FMA>(xr, xi.mul(xi))
    }

    /// `f(4 |X_k|²)` into `low[k - 1]` and `f(4 |X_{m-k}|²)` into `high[m / 2 - 1 - k]` for
    /// every `0 < k < m / 2`, each pair from the same two transformed values (`W^{m-k}` being
    /// `-conj W^k`: half the loads and a third fewer operations than a bin at a time), through
    /// zipped slices: no bounds check in the loop. `low` and `high` hold `m / 2 - 1` values.
    #[inline(always)]
    pub fn power_pairs<P, const FMA: bool>(
        &self,
        data: &[Cv<V>],
        low: &mut [P],
        high: &mut [P],
        f: impl Fn(V) -> P,
    ) {
        let pairs = &self.split[1..self.m / 2];
        assert!(low.len() == pairs.len() && high.len() == pairs.len() && data.len() >= self.m);
        for ((split, lo), hi) in pairs.iter().zip(low).zip(high.iter_mut().rev()) {
            // SAFETY: `split` is one of `self.split`; `data` holds `m` values (asserted above).
            #[allow(unsafe_code)]
            let [er, ei, a, b] = unsafe { self.terms::<FMA>(data, split) };
            // X_k = (er + a, ei + b) and X_{m-k} = (er - a, b - ei).
            let (xr, xi, yr, yi) = (er.add(a), ei.add(b), er.sub(a), b.sub(ei));
            *lo = f(xr.mul_add::<FMA>(xr, xi.mul(xi)));
            *hi = f(yr.mul_add::<FMA>(yr, yi.mul(yi)));
        }
    }

    /// `[er, ei, a, b]` of bin `k`, with `X_k = (er + a, ei + b)`: `E = (er, ei)` and
    /// `W^k O = (a, b)`, from `2E = Z_k + conj Z_{m-k}` and `2O = (Z_k - conj Z_{m-k}) / i`.
    #[inline(always)]
    fn split_terms<const FMA: bool>(&self, data: &[Cv<V>], k: usize) -> [V; 4] {
        assert!(data.len() >= self.m);
        // SAFETY: the split is one of `self.split`, and `data` holds `m` values (asserted).
        #[allow(unsafe_code)]
        unsafe {
            self.terms::<FMA>(data, &self.split[k])
        }
    }

    /// [`split_terms`](Self::split_terms) of the bin whose positions and twiddle are `split`,
    /// the data's length checked by the caller (once a group, not once a bin).
    ///
    /// # Safety
    /// `split` is one of `self.split` and `data` holds at least `m` values.
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn terms<const FMA: bool>(&self, data: &[Cv<V>], split: &Split<V::T>) -> [V; 4] {
        let &(pk, pn, (c, s)) = split;
        debug_assert!(pk < self.m && pn < self.m && data.len() >= self.m);
        // SAFETY: `pk` and `pn` are positions of `0..m` (`new` makes every split so), within
        // `data` (the caller's promise).
        let (zk, zn) = unsafe { (data.get_unchecked(pk), data.get_unchecked(pn)) };
        let (c, s) = (V::splat(c), V::splat(s));
        let (or, oi) = (zk.im.add(zn.im), zn.re.sub(zk.re));
        [
            zk.re.add(zn.re),
            zk.im.sub(zn.im),
            c.mul_sub::<FMA>(or, s.mul(oi)),
            c.mul_add::<FMA>(oi, s.mul(or)),
        ]
    }
}

/// `a · b + c`, fused when `FMA`.
#[inline(always)]
pub fn multiply_add<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// The frequency a pass sequence of `radices` leaves at position `p` of `len` points.
fn frequency(p: usize, len: usize, radices: &[usize]) -> usize {
    match radices.split_first() {
        None => 0,
        Some((&r, rest)) => {
            let span = len / r;
            r * frequency(p % span, span, rest) + p / span
        }
    }
}

/// `a + b` in every lane.
#[inline(always)]
fn add<V: Vector>(a: &Cv<V>, b: &Cv<V>) -> Cv<V> {
    Cv { re: a.re.add(b.re), im: a.im.add(b.im) }
}

/// `a - b` in every lane.
#[inline(always)]
fn sub<V: Vector>(a: &Cv<V>, b: &Cv<V>) -> Cv<V> {
    Cv { re: a.re.sub(b.re), im: a.im.sub(b.im) }
}

/// `a - i b` (`sign` false) or `a + i b` (`sign` true) in every lane.
#[inline(always)]
fn add_i<V: Vector>(a: &Cv<V>, b: &Cv<V>, sign: bool) -> Cv<V> {
    if sign {
        Cv { re: a.re.sub(b.im), im: a.im.add(b.re) }
    } else {
        Cv { re: a.re.add(b.im), im: a.im.sub(b.re) }
    }
}

/// `x · (wr + i wi)` in every lane.
#[inline(always)]
fn twiddle<V: Vector, const FMA: bool>(x: &Cv<V>, (wr, wi): (V::T, V::T)) -> Cv<V> {
    let (wr, wi) = (V::splat(wr), V::splat(wi));
    Cv { re: x.re.mul_sub::<FMA>(wr, x.im.mul(wi)), im: x.re.mul_add::<FMA>(wi, x.im.mul(wr)) }
}

/// The radix-4 decimation-in-frequency butterfly, then the twiddles of outputs 1, 2 and 3.
#[inline(always)]
fn butterfly4<V: Vector, const FMA: bool>(
    a: &Cv<V>,
    b: &Cv<V>,
    c: &Cv<V>,
    d: &Cv<V>,
    w: Option<&[(V::T, V::T); 3]>,
) -> [Cv<V>; 4] {
    let (t0, t1) = (add(a, c), sub(a, c));
    let (t2, t3) = (add(b, d), sub(b, d));
    let y0 = add(&t0, &t2);
    let y1 = add_i(&t1, &t3, false);
    let y2 = sub(&t0, &t2);
    let y3 = add_i(&t1, &t3, true);
    match w {
        Some([w1, w2, w3]) => [
            y0,
            twiddle::<V, FMA>(&y1, *w1),
            twiddle::<V, FMA>(&y2, *w2),
            twiddle::<V, FMA>(&y3, *w3),
        ],
        None => [y0, y1, y2, y3],
    }
}

#[cfg(test)]
mod tests;
