//! The lane transform's tests: every lane of every vector type against a direct DFT.

use super::*;
use crate::simd::Simd;
use crate::vector::MAX_LANES;

/// The power spectrum of each lane of `V` against a direct DFT in f64, within
/// `tolerance · (power + n)`, for every supported size up to 4096, on seeded frames.
fn every_lane_equals_the_direct_transform<V: Vector>(tolerance: f64) {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let cast = |x: f64| <V::T as rustfft::num_traits::NumCast>::from(x).unwrap();
    for log in 3..=12 {
        let n = 1 << log;
        let fft = LaneFft::<V>::new(n);
        let frames: Vec<Vec<f64>> = (0..V::L).map(|_| (0..n).map(|_| random()).collect()).collect();
        let value = |j: usize| Cv {
            re: V::from_fn(|l| cast(frames[l][2 * j])),
            im: V::from_fn(|l| cast(frames[l][2 * j + 1])),
        };
        let load = |j: usize| std::array::from_fn(|q| value(j + q * n / 8));
        let (mut plain, mut fused) = (vec![Cv::zero(); n / 2], vec![Cv::zero(); n / 2]);
        let rows: Vec<usize> = (0..n / 8).collect();
        fft.transform::<_, false>(&mut plain, &rows, |&j| load(j));
        fft.transform::<_, true>(&mut fused, &rows, |&j| load(j));
        // The paired form, into both halves at once.
        let m = n / 2;
        let (mut low, mut high) =
            (vec![V::splat(V::T::zero()); m / 2 - 1], vec![V::splat(V::T::zero()); m / 2 - 1]);
        fft.power_pairs::<_, true>(&fused, &mut low, &mut high, |p| p);
        for k in 0..=n / 2 {
            let (mut got, mut also) = ([V::T::zero(); MAX_LANES], [V::T::zero(); MAX_LANES]);
            fft.power::<false>(&plain, k).store(&mut got);
            fft.power::<true>(&fused, k).store(&mut also);
            // The paired form gives the same bins (within rounding).
            if 0 < k && k < m / 2 {
                let (mut lo, mut hi) = ([V::T::zero(); MAX_LANES], [V::T::zero(); MAX_LANES]);
                low[k - 1].store(&mut lo);
                high[m / 2 - 1 - k].store(&mut hi);
                let mut single = [V::T::zero(); MAX_LANES];
                fft.power::<true>(&fused, m - k).store(&mut single);
                for l in 0..V::L {
                    let bound = tolerance * (also[l].into() + single[l].into() + n as f64);
                    assert!((lo[l].into() - also[l].into()).abs() <= bound, "n {n} pair {k}");
                    let (hi, single) = (hi[l].into(), single[l].into());
                    assert!((hi - single).abs() <= bound, "n {n} pair {k}: {hi} {single}");
                }
            }
            for (l, frame) in frames.iter().enumerate() {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &x) in frame.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * ((i * k) % n) as f64 / n as f64;
                    re += x * a.cos();
                    im += x * a.sin();
                }
                let want = 4.0 * (re * re + im * im);
                let bound = tolerance * (want + n as f64);
                let (got, also) = (got[l].into(), also[l].into());
                assert!((also - want).abs() <= bound, "n {n} bin {k} lane {l} fused");
                assert!(
                    (got - want).abs() <= bound,
                    "n {n} bin {k} lane {l}: {got} against {want}"
                );
            }
        }
    }
}

#[test]
fn every_lane_of_eight_equals_the_direct_transform() {
    every_lane_equals_the_direct_transform::<[f64; 8]>(1e-9);
    every_lane_equals_the_direct_transform::<[f32; 8]>(1e-4);
}

/// The AVX2 register of eight f32 lanes, where this CPU has AVX2 and FMA (the test says so
/// when it has not).
#[test]
#[cfg(target_arch = "x86_64")]
fn every_avx2_register_lane_equals_the_direct_transform() {
    if Simd::detect() < Simd::Avx2Fma {
        eprintln!("no AVX2 and FMA here (or MELKIT_SIMD caps them): AVX2 registers not tested");
        return;
    }
    Simd::Avx2Fma.run(
        #[inline(always)]
        || every_lane_equals_the_direct_transform::<crate::vector::F32x8>(1e-4),
    );
}

/// The AVX-512 registers (sixteen f32 lanes, eight f64), where this CPU has them (the test
/// says so when it has not).
#[test]
#[cfg(target_arch = "x86_64")]
fn every_avx512_lane_equals_the_direct_transform() {
    if Simd::detect() != Simd::Avx512 {
        eprintln!("no AVX-512 on this CPU: the AVX-512 transforms are not tested here");
        return;
    }
    Simd::Avx512.run(
        #[inline(always)]
        || every_lane_equals_the_direct_transform::<crate::vector::F32x16>(1e-4),
    );
    Simd::Avx512.run(
        #[inline(always)]
        || every_lane_equals_the_direct_transform::<crate::vector::F64x8>(1e-9),
    );
}
