//! Run-time choice of the widest vector instructions the CPU offers: the hot loops are written
//! once, inlined into a function compiled for AVX2 + FMA and into a baseline one, and the
//! right one is picked when the backend is built (no `target-cpu=native` needed).

/// The instruction set the hot loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// AVX2 and FMA (x86-64).
    Avx2Fma,
}

impl Simd {
    /// The best this CPU supports; `MELKIT_SIMD=baseline` forces the baseline (for tests and
    /// comparisons).
    pub fn detect() -> Self {
        if std::env::var("MELKIT_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("baseline")) {
            return Simd::Baseline;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Simd::Avx2Fma;
        }
        Simd::Baseline
    }

    /// Runs `f`, compiled for this instruction set (`f` should inline its hot loops).
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2Fma => {
                // SAFETY: `Avx2Fma` is only chosen by `detect` when the CPU has AVX2 and FMA.
                #[allow(unsafe_code)]
                unsafe {
                    avx2_fma(f)
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
