//! Run-time choice of the widest vector instructions the CPU offers: the hot loops are written
//! once, inlined into functions compiled for AVX-512, for AVX2 + FMA and for the baseline, and
//! the right one is picked when the backend is built (no `target-cpu=native` needed).

/// The instruction set the hot loops are compiled for, from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// AVX2 and FMA (x86-64).
    Avx2Fma,
    /// AVX-512 F and VL, with AVX2 and FMA (x86-64).
    Avx512,
}

impl Simd {
    /// The best this CPU supports, capped by `MELKIT_SIMD` (`baseline` or `avx2`) where set
    /// (for tests and comparisons).
    pub fn detect() -> Self {
        let cap = match std::env::var("MELKIT_SIMD") {
            Ok(v) if v.eq_ignore_ascii_case("baseline") => Simd::Baseline,
            Ok(v) if v.eq_ignore_ascii_case("avx2") => Simd::Avx2Fma,
            _ => Simd::Avx512,
        };
        Self::cpu().min(cap)
    }

    /// The best this CPU supports.
    fn cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                if has!("avx512f") && has!("avx512vl") {
                    return Simd::Avx512;
                }
                return Simd::Avx2Fma;
            }
        }
        Simd::Baseline
    }

    /// Runs `f`, compiled for this instruction set. `f` must be an `#[inline(always)]` closure
    /// whose hot loops inline too: a closure LLVM leaves out of line is compiled for the
    /// baseline alone (measured: the kernel ran as scalar SSE code until its closures were
    /// marked). Crate-private: only a level the CPU has may run (engines are built for
    /// `simd.min(Simd::detect())`; the tests check `detect` first), which a public function
    /// could not promise.
    #[inline(always)]
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2Fma => {
                // SAFETY: this crate runs `Avx2Fma` only where `detect` returned it or better,
                // which it does only when the CPU has AVX2 and FMA.
                #[allow(unsafe_code)]
                unsafe {
                    avx2_fma(f)
                }
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                // SAFETY: this crate runs `Avx512` only where `detect` returned it, which it does
                // only when the CPU has AVX-512 F and VL, AVX2 and FMA.
                #[allow(unsafe_code)]
                unsafe {
                    avx512(f)
                }
            }
            _ => f(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `[frame][bin]` to `[bin][frame]`: `by_bin[k * frames + f] = by_frame[f * n_bins + k]`.
#[inline(always)]
pub fn transpose(simd: Simd, by_frame: &[f32], by_bin: &mut [f32], n_bins: usize, frames: usize) {
    assert!(by_frame.len() >= n_bins * frames && by_bin.len() >= n_bins * frames);
    // The whole 8x8 blocks (frames are the source's rows, bins its columns), where AVX2 is.
    let (f8, k8) = (frames / 8 * 8, n_bins / 8 * 8);
    let blocks = transpose_blocks(simd, by_frame, (0, n_bins), by_bin, (0, frames), f8, k8);
    let (f0, k0) = if blocks { (f8, k8) } else { (0, 0) };
    // What the 8x8 blocks did not cover: the last columns of every row, the last rows.
    for f in 0..frames {
        let first_k = if f < f0 { k0 } else { 0 };
        for k in first_k..n_bins {
            by_bin[k * frames + f] = by_frame[f * n_bins + k];
        }
    }
}

/// Asks the CPU to bring `values` into its caches, a hint that changes no result (x86-64;
/// nothing elsewhere): into L1 where `near`, else into L2 only (a large segment fetched into
/// L1 would push out the tables and the transform's values: 7 % slower on 1 s segments).
#[inline(always)]
pub fn prefetch(values: &[f32], near: bool) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(16) {
        use std::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1, _mm_prefetch};
        // SAFETY: a prefetch reads nothing into the program and never faults; the address lies
        // within `values`.
        #[allow(unsafe_code)]
        unsafe {
            if near {
                _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
            } else {
                _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, near);
}

/// Whether [`transpose_blocks`] transposes a `rows × cols` matrix under `simd` (AVX2 on
/// x86-64, both sizes non-zero multiples of 8).
#[inline(always)]
pub fn blocks_fit(simd: Simd, rows: usize, cols: usize) -> bool {
    let sizes = rows.is_multiple_of(8) && cols.is_multiple_of(8) && rows > 0 && cols > 0;
    cfg!(target_arch = "x86_64") && simd >= Simd::Avx2Fma && sizes
}

/// Transposes the `rows × cols` matrix at `src[at + i * stride + j]` into
/// `dst[to + j * dst_stride + i]`, in 8x8 blocks; `false`, with nothing written, where
/// [`blocks_fit`] does not hold.
#[inline(always)]
pub fn transpose_blocks(
    simd: Simd,
    src: &[f32],
    (at, stride): (usize, usize),
    dst: &mut [f32],
    (to, dst_stride): (usize, usize),
    rows: usize,
    cols: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if blocks_fit(simd, rows, cols) {
        assert!(stride >= cols && dst_stride >= rows);
        assert!(at + (rows - 1) * stride + cols <= src.len());
        assert!(to + (cols - 1) * dst_stride + rows <= dst.len());
        for i in (0..rows).step_by(8) {
            for j in (0..cols).step_by(8) {
                // SAFETY: AVX2 is present (`simd` came from `detect`); the block's rows and
                // columns lie inside both slices (the asserts above bound the last block).
                #[allow(unsafe_code)]
                unsafe {
                    transpose8x8(
                        src,
                        at + i * stride + j,
                        stride,
                        dst,
                        to + j * dst_stride + i,
                        dst_stride,
                    )
                };
            }
        }
        return true;
    }
    let _ = (simd, src, at, stride, dst, to, dst_stride, rows, cols);
    false
}

/// Transposes the 8x8 block at `src[at + i * stride + j]` into `dst[to + j * dst_stride + i]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn transpose8x8(
    src: &[f32],
    at: usize,
    stride: usize,
    dst: &mut [f32],
    to: usize,
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees that rows at..at + 7 * stride + 8 of `src` and
    // to..to + 7 * dst_stride + 8 of `dst` are in bounds, and that AVX2 is present.
    unsafe {
        let s = src.as_ptr().add(at);
        let r = [
            _mm256_loadu_ps(s),
            _mm256_loadu_ps(s.add(stride)),
            _mm256_loadu_ps(s.add(2 * stride)),
            _mm256_loadu_ps(s.add(3 * stride)),
            _mm256_loadu_ps(s.add(4 * stride)),
            _mm256_loadu_ps(s.add(5 * stride)),
            _mm256_loadu_ps(s.add(6 * stride)),
            _mm256_loadu_ps(s.add(7 * stride)),
        ];
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let d = dst.as_mut_ptr().add(to);
        _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, u4));
        _mm256_storeu_ps(d.add(dst_stride), _mm256_permute2f128_ps::<0x20>(u1, u5));
        _mm256_storeu_ps(d.add(2 * dst_stride), _mm256_permute2f128_ps::<0x20>(u2, u6));
        _mm256_storeu_ps(d.add(3 * dst_stride), _mm256_permute2f128_ps::<0x20>(u3, u7));
        _mm256_storeu_ps(d.add(4 * dst_stride), _mm256_permute2f128_ps::<0x31>(u0, u4));
        _mm256_storeu_ps(d.add(5 * dst_stride), _mm256_permute2f128_ps::<0x31>(u1, u5));
        _mm256_storeu_ps(d.add(6 * dst_stride), _mm256_permute2f128_ps::<0x31>(u2, u6));
        _mm256_storeu_ps(d.add(7 * dst_stride), _mm256_permute2f128_ps::<0x31>(u3, u7));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_transpose_matches_the_definition_or_declines() {
        let (rows, cols, stride, dst_stride) = (16, 32, 40, 24);
        let src: Vec<f32> = (0..3 + rows * stride).map(|i| i as f32).collect();
        let mut dst = vec![f32::NAN; 5 + cols * dst_stride];
        let done = transpose_blocks(
            Simd::detect(),
            &src,
            (3, stride),
            &mut dst,
            (5, dst_stride),
            rows,
            cols,
        );
        assert_eq!(done, Simd::detect() >= Simd::Avx2Fma);
        if done {
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(dst[5 + j * dst_stride + i], src[3 + i * stride + j], "{i} {j}");
                }
            }
        }
        // Not a multiple of 8, or no AVX2: nothing is written.
        let mut untouched = vec![f32::NAN; 5 + cols * dst_stride];
        assert!(!transpose_blocks(
            Simd::detect(),
            &src,
            (3, stride),
            &mut untouched,
            (5, dst_stride),
            12,
            cols
        ));
        assert!(!transpose_blocks(
            Simd::Baseline,
            &src,
            (3, stride),
            &mut untouched,
            (5, dst_stride),
            rows,
            cols
        ));
        assert!(untouched.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn transpose_matches_the_definition_on_both_paths() {
        for (n_bins, frames) in [(129, 34), (8, 8), (5, 3), (257, 54), (16, 17)] {
            let by_frame: Vec<f32> = (0..n_bins * frames).map(|i| i as f32).collect();
            for simd in [Simd::Baseline, Simd::detect()] {
                let mut by_bin = vec![f32::NAN; n_bins * frames];
                transpose(simd, &by_frame, &mut by_bin, n_bins, frames);
                for f in 0..frames {
                    for k in 0..n_bins {
                        assert_eq!(
                            by_bin[k * frames + f],
                            by_frame[f * n_bins + k],
                            "{simd:?} {n_bins}x{frames}"
                        );
                    }
                }
            }
        }
    }
}
