//! The lane vectors the lane path computes on: one value per frame, a whole vector per
//! operation. Arrays of eight (`[f32; 8]`, `[f64; 8]`) are plain Rust that LLVM vectorises (the
//! baseline, and f64 with AVX2); [`F32x8`] (AVX2 + FMA) and, with AVX-512, [`F32x16`] and
//! [`F64x8`] hold their lanes in one register, written with intrinsics: LLVM's own vectorising
//! of lane arrays under AVX-512 merged real and imaginary parts into shuffles, gathers and
//! spills (measured 5x slower), and under AVX2 the f32 arrays measured about 20 % slower than
//! the same code on `__m256`.

use crate::lanes::multiply_add;
use crate::table::Cell;

/// The most lanes any vector has.
pub const MAX_LANES: usize = 16;

/// `L` lanes of `T`, with the operations the transform, the power and the mel projection need.
pub trait Vector: Copy + Send + Sync + 'static {
    /// The element type.
    type T: Cell;
    /// The f32 vector of as many lanes (power and mel values).
    type P: Vector<T = f32>;
    /// Lanes.
    const L: usize;
    /// Whether the transform's last radix-4 pass and its radix-2 pass run fused, eight values
    /// held at once: with AVX-512's 32 registers (6 % faster), and on AVX2's 16 with `__m256`
    /// registers (3 % faster on a Zen 3, no faster on an Intel AVX2 run); not on arrays, where
    /// it measured slower.
    const FUSED_LAST: bool;
    /// Whether the lanes are registers written with intrinsics (not an array LLVM vectorises):
    /// their radix-4 passes do row 0 apart, so the loop has no branch (2-3 % faster on AVX2);
    /// over `[f64; 8]` the same loops ran on 128-bit halves with spills (dB 12-25 % slower).
    const REGISTERS: bool;
    /// `x` in every lane.
    fn splat(x: Self::T) -> Self;
    /// The first `L` values of `src`.
    fn load(src: &[Self::T]) -> Self;
    /// The `L` values at `src[at..]`, with no bounds check (the transform's first pass, where
    /// one check a group stands for its `n` loads, two a packed value).
    ///
    /// # Safety
    /// `at + L <= src.len()`.
    #[allow(unsafe_code)]
    unsafe fn load_at(src: &[Self::T], at: usize) -> Self;
    /// `f(l)` in lane `l`.
    fn from_fn(f: impl Fn(usize) -> Self::T) -> Self;
    /// The lanes into the first `L` values of `dst`.
    fn store(self, dst: &mut [Self::T]);
    /// The lanes into `dst[at..at + L]`, with no bounds check (the mel rows, where one check a
    /// group stands for its `n_mels` stores).
    ///
    /// # Safety
    /// `at + L <= dst.len()`.
    #[allow(unsafe_code)]
    unsafe fn store_at(self, dst: &mut [Self::T], at: usize);
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self - b`.
    fn sub(self, b: Self) -> Self;
    /// `self · b`.
    fn mul(self, b: Self) -> Self;
    /// `self · b + c`, fused when `FMA`.
    fn mul_add<const FMA: bool>(self, b: Self, c: Self) -> Self;
    /// `self · b - c`, fused when `FMA`.
    fn mul_sub<const FMA: bool>(self, b: Self, c: Self) -> Self;
    /// The lanes rounded to f32.
    fn to_p(self) -> Self::P;
}

/// Eight lanes as an array: LLVM vectorises its loops for AVX2 (or the baseline).
macro_rules! array_vector {
    ($t:ty) => {
        impl Vector for [$t; 8] {
            type T = $t;
            type P = [f32; 8];
            const L: usize = 8;
            const FUSED_LAST: bool = false;
            const REGISTERS: bool = false;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                [x; 8]
            }
            #[inline(always)]
            fn load(src: &[$t]) -> Self {
                let mut out = [0.0; 8];
                out.copy_from_slice(&src[..8]);
                out
            }
            #[inline(always)]
            #[allow(unsafe_code)]
            unsafe fn load_at(src: &[$t], at: usize) -> Self {
                debug_assert!(at + 8 <= src.len());
                // SAFETY: the caller keeps `at + 8 <= src.len()`.
                unsafe { src.as_ptr().add(at).cast::<[$t; 8]>().read_unaligned() }
            }
            #[inline(always)]
            fn from_fn(f: impl Fn(usize) -> $t) -> Self {
                let mut out = [0.0; 8];
                for (l, o) in out.iter_mut().enumerate() {
                    *o = f(l);
                }
                out
            }
            #[inline(always)]
            fn store(self, dst: &mut [$t]) {
                dst[..8].copy_from_slice(&self);
            }
            #[allow(unsafe_code)]
            #[inline(always)]
            unsafe fn store_at(self, dst: &mut [$t], at: usize) {
                debug_assert!(at + 8 <= dst.len());
                // SAFETY: the caller keeps `at + 8 <= dst.len()`.
                unsafe { dst.as_mut_ptr().add(at).cast::<[$t; 8]>().write_unaligned(self) }
            }
            #[inline(always)]
            fn add(self, b: Self) -> Self {
                Self::from_fn(|l| self[l] + b[l])
            }
            #[inline(always)]
            fn sub(self, b: Self) -> Self {
                Self::from_fn(|l| self[l] - b[l])
            }
            #[inline(always)]
            fn mul(self, b: Self) -> Self {
                Self::from_fn(|l| self[l] * b[l])
            }
            #[inline(always)]
            fn mul_add<const FMA: bool>(self, b: Self, c: Self) -> Self {
                Self::from_fn(|l| multiply_add::<$t, FMA>(self[l], b[l], c[l]))
            }
            #[inline(always)]
            fn mul_sub<const FMA: bool>(self, b: Self, c: Self) -> Self {
                Self::from_fn(|l| multiply_add::<$t, FMA>(self[l], b[l], -c[l]))
            }
            #[inline(always)]
            fn to_p(self) -> [f32; 8] {
                <[f32; 8]>::from_fn(|l| self[l] as f32)
            }
        }
    };
}

array_vector!(f32);
array_vector!(f64);

#[cfg(target_arch = "x86_64")]
pub use registers::{F32x8, F32x16, F64x8};

#[cfg(target_arch = "x86_64")]
mod registers {
    #![allow(unsafe_code)]
    //! SIMD registers as lane vectors. Only a lane engine built for
    //! [`crate::simd::Simd::Avx512`] (the CPU has AVX-512 F and VL, AVX2 and FMA) makes an
    //! [`F32x16`] or an [`F64x8`] (whose power is an [`F32x8`]), and only one built for
    //! [`crate::simd::Simd::Avx2Fma`] or better makes an [`F32x8`] (it needs AVX and FMA); each
    //! runs its hot loops inside that dispatch, where the intrinsics inline to single
    //! instructions.

    use std::arch::x86_64::*;

    use super::Vector;

    /// A lane vector over one register, its operations one intrinsic each.
    macro_rules! register_vector {
        ($name:ident, $t:ty, $reg:ty, $l:literal, $fused:literal, $p:ty, $to_p:expr,
         [$set1:ident, $loadu:ident, $storeu:ident, $add:ident, $sub:ident, $mul:ident,
          $fmadd:ident, $fmsub:ident]) => {
            #[doc = concat!(stringify!($l), " ", stringify!($t), " lanes in one register.")]
            #[derive(Clone, Copy, Debug)]
            #[repr(transparent)]
            pub struct $name($reg);

            // SAFETY (every block below): the intrinsics need what the module's documentation
            // says of this type, which the CPU has wherever a value of it exists; the loads and
            // stores go through slices of at least `L` values, bounds-checked by the slicing,
            // except `load_at`'s, whose caller keeps `at + L <= src.len()`.
            impl Vector for $name {
                type T = $t;
                type P = $p;
                const L: usize = $l;
                const FUSED_LAST: bool = $fused;
                const REGISTERS: bool = true;
                #[inline(always)]
                fn splat(x: $t) -> Self {
                    $name(unsafe { $set1(x) })
                }
                #[inline(always)]
                fn load(src: &[$t]) -> Self {
                    let src = &src[..$l];
                    $name(unsafe { $loadu(src.as_ptr()) })
                }
                #[inline(always)]
                unsafe fn load_at(src: &[$t], at: usize) -> Self {
                    debug_assert!(at + $l <= src.len());
                    // SAFETY: the caller keeps `at + L <= src.len()`.
                    $name(unsafe { $loadu(src.as_ptr().add(at)) })
                }
                #[inline(always)]
                fn from_fn(f: impl Fn(usize) -> $t) -> Self {
                    let mut lanes = [0.0; $l];
                    for (l, o) in lanes.iter_mut().enumerate() {
                        *o = f(l);
                    }
                    Self::load(&lanes)
                }
                #[inline(always)]
                fn store(self, dst: &mut [$t]) {
                    let dst = &mut dst[..$l];
                    unsafe { $storeu(dst.as_mut_ptr(), self.0) }
                }
                #[inline(always)]
                unsafe fn store_at(self, dst: &mut [$t], at: usize) {
                    debug_assert!(at + $l <= dst.len());
                    // SAFETY: the caller keeps `at + L <= dst.len()`.
                    unsafe { $storeu(dst.as_mut_ptr().add(at), self.0) }
                }
                #[inline(always)]
                fn add(self, b: Self) -> Self {
                    $name(unsafe { $add(self.0, b.0) })
                }
                #[inline(always)]
                fn sub(self, b: Self) -> Self {
                    $name(unsafe { $sub(self.0, b.0) })
                }
                #[inline(always)]
                fn mul(self, b: Self) -> Self {
                    $name(unsafe { $mul(self.0, b.0) })
                }
                // The CPU has FMA wherever these exist, whatever `FMA` says.
                #[inline(always)]
                fn mul_add<const FMA: bool>(self, b: Self, c: Self) -> Self {
                    $name(unsafe { $fmadd(self.0, b.0, c.0) })
                }
                #[inline(always)]
                fn mul_sub<const FMA: bool>(self, b: Self, c: Self) -> Self {
                    $name(unsafe { $fmsub(self.0, b.0, c.0) })
                }
                #[inline(always)]
                fn to_p(self) -> $p {
                    #[allow(clippy::redundant_closure_call)]
                    ($to_p)(self)
                }
            }
        };
    }

    register_vector!(
        F32x16,
        f32,
        __m512,
        16,
        true,
        F32x16,
        |v| v,
        [
            _mm512_set1_ps,
            _mm512_loadu_ps,
            _mm512_storeu_ps,
            _mm512_add_ps,
            _mm512_sub_ps,
            _mm512_mul_ps,
            _mm512_fmadd_ps,
            _mm512_fmsub_ps
        ]
    );
    register_vector!(
        F64x8,
        f64,
        __m512d,
        8,
        true,
        F32x8,
        |v: F64x8| F32x8(unsafe { _mm512_cvtpd_ps(v.0) }),
        [
            _mm512_set1_pd,
            _mm512_loadu_pd,
            _mm512_storeu_pd,
            _mm512_add_pd,
            _mm512_sub_pd,
            _mm512_mul_pd,
            _mm512_fmadd_pd,
            _mm512_fmsub_pd
        ]
    );
    register_vector!(
        F32x8,
        f32,
        __m256,
        8,
        true,
        F32x8,
        |v| v,
        [
            _mm256_set1_ps,
            _mm256_loadu_ps,
            _mm256_storeu_ps,
            _mm256_add_ps,
            _mm256_sub_ps,
            _mm256_mul_ps,
            _mm256_fmadd_ps,
            _mm256_fmsub_ps
        ]
    );
}
