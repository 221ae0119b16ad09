//! What the vector units allow for the default configuration's compute, against the lane path
//! in the same run: the machine's peak of independent AVX2 additions and fused multiply-adds,
//! and the bare transform (three radix-4 sweeps and a radix-2 sweep over 128 complex points a
//! lane, eight lanes, in L1, with bare intrinsics: no window, no power, no mel, no layout), the
//! least any lane-batched `n_fft` 256 kernel on this CPU must spend. Best of alternated rounds,
//! one thread, per 10 s file (170 groups of eight frames); x86-64 with AVX2 and FMA only.
//!
//! ```text
//! cargo run --release -p melkit-benches --bin kernel_limit [--json]
//! ```

use melkit_backend_cpu::{CpuBackend, CpuFft};
use melkit_core::{Backend, Config};

/// Groups of eight frames in one default 10 s file (1,360 frames).
const GROUPS_A_FILE: f64 = 1360.0 / 8.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args().any(|a| a == "--json");
    let Some(limits) = bare::Limits::new() else {
        return Err("kernel_limit needs an x86-64 CPU with AVX2 and FMA".into());
    };
    let config = Config::default();
    let (plan, batch) = melkit_benches::batch(&config, 32);
    let mut out = vec![0.0; batch.output_len(&plan)];
    let mut backend = CpuBackend::with_fft(&config, CpuFft::Lanes)?;
    let (mut peak, mut transform, mut lanes) = (0.0_f64, f64::INFINITY, f64::INFINITY);
    for _ in 0..6 {
        peak = peak.max(limits.peak_ops_per_ns());
        transform = transform.min(limits.transform_ns_per_group());
        for _ in 0..10 {
            let started = std::time::Instant::now();
            backend.compute_here(&batch, &mut out)?;
            lanes = lanes.min(started.elapsed().as_secs_f64() * 1e3 / 32.0);
        }
    }
    let transform_ms = transform * GROUPS_A_FILE * 1e-6;
    if json {
        let doc = serde_json::json!({
            "peak_vector_ops_per_ns": peak,
            "bare_transform_ms_per_file": transform_ms,
            "lane_path_ms_per_file": lanes,
        });
        println!("{doc}");
    } else {
        println!("vector units' peak (independent adds and FMAs): {peak:.2} operations a ns");
        println!(
            "bare transform: {transform:.0} ns a group of eight frames, {transform_ms:.3} ms a \
             10 s file; lane path: {lanes:.3} ms a file ({:.0} % of it the bare transform)",
            100.0 * transform_ms / lanes
        );
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod bare {
    //! The probes, compiled for AVX2 and FMA.
    #![allow(unsafe_code)]

    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_fmsub_ps,
        _mm256_mul_ps, _mm256_set1_ps, _mm256_storeu_ps, _mm256_sub_ps,
    };
    use std::hint::black_box;
    use std::time::Instant;

    /// One complex value in each of eight lanes.
    #[derive(Clone, Copy)]
    struct Cv {
        re: __m256,
        im: __m256,
    }

    /// A group's 128 values, each eight real then eight imaginary parts, on a cache line.
    #[repr(align(64))]
    pub(crate) struct Group(pub(crate) [f32; 128 * 16]);

    /// The probes, built only where the CPU has AVX2 and FMA.
    pub struct Limits {
        /// Each radix-4 sweep's twiddles, `[sweep][row][output 1..3]` as (cos, sin).
        twiddles: Vec<[[f32; 2]; 3]>,
    }

    impl Limits {
        /// The probes, or `None` without AVX2 and FMA.
        pub fn new() -> Option<Self> {
            if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
                return None;
            }
            let twiddles = [32, 8, 2]
                .iter()
                .flat_map(|&span| {
                    (0..span).map(move |j| {
                        std::array::from_fn(|q| {
                            let angle = -2.0 * std::f32::consts::PI * ((q + 1) * j) as f32
                                / (4 * span) as f32;
                            [angle.cos(), angle.sin()]
                        })
                    })
                })
                .collect();
            Some(Self { twiddles })
        }

        /// Each radix-4 sweep's twiddles, one sweep after the other.
        #[cfg(test)]
        pub(crate) fn twiddles(&self) -> &[[[f32; 2]; 3]] {
            &self.twiddles
        }

        /// Vector operations a nanosecond: eight independent chains of additions beside eight
        /// of fused multiply-adds (the mix the two add and two FMA pipes of a Zen 3 start).
        pub fn peak_ops_per_ns(&self) -> f64 {
            let rounds = 20_000_000;
            let started = Instant::now();
            // SAFETY: `new` checked that the CPU has AVX2 and FMA.
            let sum = unsafe { peak(rounds) };
            let elapsed = started.elapsed().as_secs_f64();
            black_box(sum);
            16.0 * rounds as f64 / elapsed / 1e9
        }

        /// Nanoseconds a group: the bare transform of one group, best of repeated groups.
        pub fn transform_ns_per_group(&self) -> f64 {
            let mut data = Group([0.0; 128 * 16]);
            for (i, x) in data.0.iter_mut().enumerate() {
                *x = (i % 97) as f32 * 0.01 - 0.5;
            }
            let groups = 20_000;
            let started = Instant::now();
            for _ in 0..groups {
                // SAFETY: `new` checked that the CPU has AVX2 and FMA.
                unsafe { transform(&mut black_box(&mut data).0, &self.twiddles) };
            }
            started.elapsed().as_secs_f64() * 1e9 / f64::from(groups)
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn peak(rounds: u64) -> f32 {
        let (x, y) = (_mm256_set1_ps(1e-9), _mm256_set1_ps(0.999_999));
        let one = _mm256_set1_ps(1.0);
        let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = [one; 8];
        let [mut m0, mut m1, mut m2, mut m3, mut m4, mut m5, mut m6, mut m7] = [one; 8];
        for _ in 0..rounds {
            (a0, a1, a2, a3) = (
                _mm256_add_ps(a0, x),
                _mm256_add_ps(a1, x),
                _mm256_add_ps(a2, x),
                _mm256_add_ps(a3, x),
            );
            (a4, a5, a6, a7) = (
                _mm256_add_ps(a4, x),
                _mm256_add_ps(a5, x),
                _mm256_add_ps(a6, x),
                _mm256_add_ps(a7, x),
            );
            (m0, m1, m2, m3) = (
                _mm256_fmadd_ps(m0, y, x),
                _mm256_fmadd_ps(m1, y, x),
                _mm256_fmadd_ps(m2, y, x),
                _mm256_fmadd_ps(m3, y, x),
            );
            (m4, m5, m6, m7) = (
                _mm256_fmadd_ps(m4, y, x),
                _mm256_fmadd_ps(m5, y, x),
                _mm256_fmadd_ps(m6, y, x),
                _mm256_fmadd_ps(m7, y, x),
            );
        }
        let adds = [a0, a1, a2, a3, a4, a5, a6, a7];
        let fmas = [m0, m1, m2, m3, m4, m5, m6, m7];
        let mut lanes = [0.0; 8];
        let total = adds.iter().chain(&fmas).fold(_mm256_set1_ps(0.0), |s, v| _mm256_add_ps(s, *v));
        // SAFETY: `lanes` holds eight f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        lanes.iter().sum()
    }

    /// Radix-4 sweeps of spans 32, 8 and 2, then the radix-2 sweep, over `data`: 128 values,
    /// each eight real then eight imaginary parts.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn transform(data: &mut [f32; 128 * 16], twiddles: &[[[f32; 2]; 3]]) {
        let mut sweep_twiddles = twiddles;
        for span in [32, 8, 2] {
            let (here, next) = sweep_twiddles.split_at(span);
            sweep_twiddles = next;
            for block in (0..128).step_by(4 * span) {
                for (j, w) in here.iter().enumerate() {
                    let i = block + j;
                    let (a, b) = (load(data, i), load(data, i + span));
                    let (c, d) = (load(data, i + 2 * span), load(data, i + 3 * span));
                    let (t0, t1) = (add(a, c), sub(a, c));
                    let (t2, t3) = (add(b, d), sub(b, d));
                    let y1 =
                        Cv { re: _mm256_add_ps(t1.re, t3.im), im: _mm256_sub_ps(t1.im, t3.re) };
                    let y3 =
                        Cv { re: _mm256_sub_ps(t1.re, t3.im), im: _mm256_add_ps(t1.im, t3.re) };
                    store(data, i, add(t0, t2));
                    store(data, i + span, twiddle(y1, &w[0]));
                    store(data, i + 2 * span, twiddle(sub(t0, t2), &w[1]));
                    store(data, i + 3 * span, twiddle(y3, &w[2]));
                }
            }
        }
        for i in (0..128).step_by(2) {
            let (a, b) = (load(data, i), load(data, i + 1));
            store(data, i, add(a, b));
            store(data, i + 1, sub(a, b));
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn load(data: &[f32; 128 * 16], i: usize) -> Cv {
        assert!(i < 128);
        // SAFETY: `i < 128`, so both halves lie in `data`.
        unsafe {
            Cv {
                re: std::ptr::read_unaligned(data.as_ptr().add(16 * i).cast()),
                im: std::ptr::read_unaligned(data.as_ptr().add(16 * i + 8).cast()),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn store(data: &mut [f32; 128 * 16], i: usize, v: Cv) {
        assert!(i < 128);
        // SAFETY: as for `load`.
        unsafe {
            std::ptr::write_unaligned(data.as_mut_ptr().add(16 * i).cast(), v.re);
            std::ptr::write_unaligned(data.as_mut_ptr().add(16 * i + 8).cast(), v.im);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn add(a: Cv, b: Cv) -> Cv {
        Cv { re: _mm256_add_ps(a.re, b.re), im: _mm256_add_ps(a.im, b.im) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn sub(a: Cv, b: Cv) -> Cv {
        Cv { re: _mm256_sub_ps(a.re, b.re), im: _mm256_sub_ps(a.im, b.im) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn twiddle(x: Cv, w: &[f32; 2]) -> Cv {
        let (wr, wi) = (_mm256_broadcast_ss(&w[0]), _mm256_broadcast_ss(&w[1]));
        Cv {
            re: _mm256_fmsub_ps(x.re, wr, _mm256_mul_ps(x.im, wi)),
            im: _mm256_fmadd_ps(x.re, wi, _mm256_mul_ps(x.im, wr)),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod bare {
    //! No probes off x86-64.

    /// Never built off x86-64.
    pub struct Limits;

    impl Limits {
        /// `None`: the probes are AVX2 code.
        pub fn new() -> Option<Self> {
            None
        }

        /// Unreachable: no `Limits` is built here.
        pub fn peak_ops_per_ns(&self) -> f64 {
            0.0
        }

        /// Unreachable: no `Limits` is built here.
        pub fn transform_ns_per_group(&self) -> f64 {
            0.0
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::bare::{Group, Limits, transform};

    /// The frequency a decimation-in-frequency sweep sequence of `radices` leaves at `p`.
    fn frequency(p: usize, len: usize, radices: &[usize]) -> usize {
        match radices.split_first() {
            None => 0,
            Some((&r, rest)) => r * frequency(p % (len / r), len / r, rest) + p / (len / r),
        }
    }

    #[test]
    fn the_bare_transform_is_each_lanes_dft() {
        let Some(limits) = Limits::new() else { return };
        let mut group = Group([0.0; 128 * 16]);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for x in &mut group.0 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *x = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        let input = group.0;
        // SAFETY: `Limits::new` returned a value, so the CPU has AVX2 and FMA.
        #[allow(unsafe_code)]
        unsafe {
            transform(&mut group.0, limits.twiddles())
        };
        for lane in 0..8 {
            for p in 0..128 {
                let k = frequency(p, 128, &[4, 4, 4, 2]);
                let (mut re, mut im) = (0.0_f64, 0.0_f64);
                for n in 0..128 {
                    let (xr, xi) =
                        (f64::from(input[16 * n + lane]), f64::from(input[16 * n + 8 + lane]));
                    let angle = -2.0 * std::f64::consts::PI * (k * n) as f64 / 128.0;
                    re += xr * angle.cos() - xi * angle.sin();
                    im += xr * angle.sin() + xi * angle.cos();
                }
                let (gr, gi) =
                    (f64::from(group.0[16 * p + lane]), f64::from(group.0[16 * p + 8 + lane]));
                let error = (gr - re).hypot(gi - im);
                assert!(error < 1e-4, "lane {lane}, bin {k}: {gr} {gi} against {re} {im}");
            }
        }
    }
}
