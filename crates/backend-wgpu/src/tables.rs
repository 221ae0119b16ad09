//! What the shaders read besides the signal, built once per configuration: core's device
//! tables (framing, window, sparse mel filterbank, scaling) rounded to f32 (hi/lo pairs where
//! the double-float kernels need them), the twiddle factors, and the shader source with its
//! sizes filled in.

use melkit_core::config::Config;
use melkit_core::device::DeviceTables;
use melkit_core::plan::SegmentPlan;

/// The shared part of every kernel: bindings, framing, power, mel, scale.
pub const COMMON: &str = include_str!("shaders/common.wgsl");
/// The fused kernel with a radix-2 FFT (N a power of two).
pub const FFT: &str = include_str!("shaders/fft.wgsl");
/// The fused kernel with a direct DFT (any N).
pub const DFT: &str = include_str!("shaders/dft.wgsl");
/// Double-float arithmetic for the dB kernels.
pub const DF64: &str = include_str!("shaders/df64.wgsl");
/// The FFT kernel in double-float arithmetic.
pub const FFT_DF64: &str = include_str!("shaders/fft_df64.wgsl");
/// The DFT kernel in double-float arithmetic.
pub const DFT_DF64: &str = include_str!("shaders/dft_df64.wgsl");

/// Threads per workgroup.
pub const WORKGROUP: u32 = 64;

/// Which transform a kernel does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Radix-2 FFT in workgroup memory.
    Fft,
    /// Direct DFT (N not a power of two).
    Dft,
}

impl Transform {
    /// The transform for `n_fft`.
    pub fn for_size(n_fft: usize) -> Self {
        if n_fft.is_power_of_two() { Transform::Fft } else { Transform::Dft }
    }

    /// Workgroup memory the kernel needs, in bytes (`double`: double-float arithmetic).
    pub fn workgroup_bytes(self, n_fft: usize, double: bool) -> usize {
        let scale = if double { 2 } else { 1 };
        match self {
            Transform::Fft => n_fft * 8 * scale,
            Transform::Dft => n_fft * 4 * scale + (n_fft / 2 + 1) * 4,
        }
    }
}

/// The complete WGSL source of the kernel for `n_fft`, in double-float arithmetic when
/// `double` (dB output).
pub fn shader_source(n_fft: usize, double: bool) -> String {
    let transform = Transform::for_size(n_fft);
    let header = format!(
        "const N: u32 = {n_fft}u;\nconst LOG2N: u32 = {}u;\nconst BINS: u32 = {}u;\nconst WG: u32 = {WORKGROUP}u;\n",
        n_fft.trailing_zeros(),
        n_fft / 2 + 1
    );
    let body = match (transform, double) {
        (Transform::Fft, false) => FFT.to_string(),
        (Transform::Dft, false) => DFT.to_string(),
        (Transform::Fft, true) => format!("{DF64}{FFT_DF64}"),
        (Transform::Dft, true) => format!("{DF64}{DFT_DF64}"),
    };
    format!("{header}{COMMON}{body}")
}

/// The constant tables of one configuration.
pub struct Tables {
    /// `[n_frames × n_fft]`: index in the short segment, or -1 for zero padding.
    pub frame_index: Vec<i32>,
    /// The window, `n_fft` (hi, lo) pairs whose sums are the f64 window.
    pub window: Vec<f32>,
    /// `exp(-2πik/N)` as (re hi, im hi, re lo, im lo), `n_fft` of them.
    pub twiddles: Vec<f32>,
    /// Per mel bin: first FFT bin, count, offset into `mel_weights`, 0.
    pub mel_spans: Vec<u32>,
    /// The non-zero filter weights, filter after filter.
    pub mel_weights: Vec<f32>,
    /// The shader's `power_mode`: 0 for |X|², 1 for |X|, 2 for |X|^power.
    pub power_mode: u32,
    /// Whether the output is in dB (the kernel then computes in double-float arithmetic).
    pub db: bool,
    /// The exponent of the magnitude.
    pub power: f32,
    /// dB: `factor · log10(max(x, floor)) − offset`.
    pub db_params: (f32, f32, f32),
}

impl Tables {
    /// The tables for a validated configuration and its plan.
    pub fn new(config: &Config, plan: &SegmentPlan) -> Self {
        let t = DeviceTables::new(config, plan);
        let n = plan.n_fft;
        let mut twiddles = Vec::with_capacity(4 * n);
        for k in 0..n {
            let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            let ((re, re_lo), (im, im_lo)) = (hi_lo(angle.cos()), hi_lo(angle.sin()));
            twiddles.extend_from_slice(&[re, im, re_lo, im_lo]);
        }
        let (db, db_params) = match t.db {
            Some((factor, floor, offset)) => (true, (factor as f32, floor as f32, offset as f32)),
            None => (false, (0.0, 0.0, 0.0)),
        };
        Tables {
            frame_index: t.frame_index,
            window: t.window.iter().flat_map(|&w| <[f32; 2]>::from(hi_lo(w))).collect(),
            twiddles,
            mel_spans: t.mel_spans.iter().flat_map(|&[lo, count, at]| [lo, count, at, 0]).collect(),
            mel_weights: t.mel_weights.iter().map(|&w| w as f32).collect(),
            power_mode: t.power_mode as u32,
            db,
            power: t.power as f32,
            db_params,
        }
    }
}

/// `x` as two f32 whose sum is `x` to about 48 bits.
fn hi_lo(x: f64) -> (f32, f32) {
    let hi = x as f32;
    (hi, (x - f64::from(hi)) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel the backend can build is valid WGSL, checked by naga without any adapter.
    #[test]
    fn every_shader_validates_with_naga() {
        for (n_fft, double) in [16, 64, 256, 400, 512, 1024, 2048, 100]
            .into_iter()
            .flat_map(|n| [(n, false), (n, true)])
        {
            let source = shader_source(n_fft, double);
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("n_fft {n_fft}: {}", e.emit_to_string(&source)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("n_fft {n_fft}: {}", e.emit_to_string(&source)));
        }
    }
}
