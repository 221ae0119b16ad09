//! The lane vectors the lane path computes on: one value per frame, a whole vector per
//! operation. Arrays of eight (`[f32; 8]`, `[f64; 8]`) are plain Rust that LLVM vectorises
//! (AVX2: one or two registers); [`F32x16`] holds sixteen f32 lanes in one AVX-512 register,
//! written with intrinsics because LLVM's own vectorising of 16-lane arrays under AVX-512
//! merged real and imaginary parts into shuffles, gathers and spills (measured 5x slower).

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
    /// `x` in every lane.
    fn splat(x: Self::T) -> Self;
    /// The first `L` values of `src`.
    fn load(src: &[Self::T]) -> Self;
    /// `f(l)` in lane `l`.
    fn from_fn(f: impl Fn(usize) -> Self::T) -> Self;
    /// The lanes into the first `L` values of `dst`.
    fn store(self, dst: &mut [Self::T]);
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
pub use avx512::F32x16;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #![allow(unsafe_code)]
    //! Sixteen f32 lanes in an AVX-512 register.

    use std::arch::x86_64::*;

    use super::Vector;

    /// Sixteen f32 lanes in one AVX-512 register. Only the lane engine built for
    /// [`crate::simd::Simd::Avx512`] (the CPU has AVX-512F) makes one, and it runs its hot loops
    /// inside that dispatch, where the intrinsics inline to single instructions.
    #[derive(Clone, Copy, Debug)]
    #[repr(transparent)]
    pub struct F32x16(__m512);

    // SAFETY (every block below): the intrinsics need AVX-512F, which the CPU has wherever an
    // `F32x16` exists (see the type's documentation); the loads and stores go through slices
    // of at least 16 values, bounds-checked by the slicing.
    impl Vector for F32x16 {
        type T = f32;
        type P = F32x16;
        const L: usize = 16;
        #[inline(always)]
        fn splat(x: f32) -> Self {
            F32x16(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        fn load(src: &[f32]) -> Self {
            let src = &src[..16];
            F32x16(unsafe { _mm512_loadu_ps(src.as_ptr()) })
        }
        #[inline(always)]
        fn from_fn(f: impl Fn(usize) -> f32) -> Self {
            let mut lanes = [0.0f32; 16];
            for (l, o) in lanes.iter_mut().enumerate() {
                *o = f(l);
            }
            Self::load(&lanes)
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32]) {
            let dst = &mut dst[..16];
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            F32x16(unsafe { _mm512_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            F32x16(unsafe { _mm512_sub_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn mul(self, b: Self) -> Self {
            F32x16(unsafe { _mm512_mul_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn mul_add<const FMA: bool>(self, b: Self, c: Self) -> Self {
            // AVX-512F includes the fused multiply-add, whatever `FMA` says.
            F32x16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn mul_sub<const FMA: bool>(self, b: Self, c: Self) -> Self {
            F32x16(unsafe { _mm512_fmsub_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn to_p(self) -> Self {
            self
        }
    }
}
