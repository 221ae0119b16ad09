//! The CUDA kernels' sources (`kernels/*.cu`), completed with one configuration's constants, and
//! their compilation by NVRTC at run time, cached per source and device architecture.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};
use melkit_core::device::DeviceTables;
use melkit_core::plan::SegmentPlan;

/// Shared device functions: framing, power, scaling, output layout, sparse mel.
pub const COMMON: &str = include_str!("kernels/common.cu");
/// The cuFFT path's framing + window kernel.
pub const FRAMING: &str = include_str!("kernels/framing.cu");
/// The cuFFT path's power + mel + scaling kernel.
pub const MEL: &str = include_str!("kernels/mel.cu");
/// The fused kernel (two frames per block, FFT in shared memory).
pub const FUSED: &str = include_str!("kernels/fused.cu");

/// Every kernel file, by name (for tests and tools).
pub const FILES: [(&str, &str); 3] =
    [("framing.cu", FRAMING), ("mel.cu", MEL), ("fused.cu", FUSED)];

/// Threads per block of the fused kernel for `n_fft`: one per butterfly, 32 to 256.
pub fn fused_threads(n_fft: usize) -> u32 {
    (n_fft / 2).clamp(32, 256) as u32
}

/// Shared memory of the fused kernel, in bytes, with `real_bytes` per real value.
pub fn fused_shared_bytes(n_fft: usize, real_bytes: usize) -> usize {
    let complex = if n_fft.is_power_of_two() { n_fft } else { 2 * n_fft };
    complex * 2 * real_bytes + 2 * (n_fft / 2 + 1) * real_bytes
}

/// The `#define`s of one configuration (`double`: the kernels compute in f64, as for dB).
pub fn defines(plan: &SegmentPlan, tables: &DeviceTables, double: bool) -> String {
    let n = plan.n_fft;
    let log2n = if n.is_power_of_two() { n.trailing_zeros() } else { 0 };
    let (factor, floor, offset) = tables.db.unwrap_or((0.0, 0.0, 0.0));
    let values: [(&str, String); 15] = [
        ("REAL", if double { "double" } else { "float" }.into()),
        ("N", format!("{n}u")),
        ("LOG2N", log2n.to_string()),
        ("BINS", format!("{}u", n / 2 + 1)),
        ("N_SHORT", format!("{}u", plan.n_short)),
        ("N_FRAMES", format!("{}u", plan.n_frames)),
        ("N_MELS", format!("{}u", plan.n_mels)),
        ("SHORT_HOP", format!("{}u", plan.short_hop)),
        ("POWER_MODE", (tables.power_mode as u32).to_string()),
        ("POWER", literal(tables.power)),
        ("DB", u32::from(tables.db.is_some()).to_string()),
        ("DB_FACTOR", literal(factor)),
        ("DB_FLOOR", literal(floor)),
        ("DB_OFFSET", literal(offset)),
        ("MELKIT_KERNELS", "1".into()),
    ];
    values.iter().map(|(name, value)| format!("#define {name} {value}\n")).collect()
}

/// An f64 as a C literal that reads back exactly.
fn literal(x: f64) -> String {
    format!("{x:e}")
}

/// The whole source of one kernel file for a configuration.
pub fn source(defines: &str, kernel: &str) -> String {
    format!("{defines}{COMMON}{kernel}")
}

/// Compiled kernels by source and compute capability.
type PtxCache = HashMap<(String, (i32, i32)), Ptx>;

/// Whether the NVRTC library can be loaded on this machine.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names; calls nothing in it.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::nvrtc::sys::is_culib_present()
    }
}

/// Compiles `source` to PTX for compute capability `arch` (e.g. (9, 0)), once per process.
///
/// # Errors
/// NVRTC missing, or the compiler's log.
pub fn compile(source: &str, arch: (i32, i32)) -> Result<Ptx, String> {
    static CACHE: OnceLock<Mutex<PtxCache>> = OnceLock::new();
    if !nvrtc_present() {
        return Err("the NVRTC library (libnvrtc) was not found".into());
    }
    let cache = CACHE.get_or_init(Mutex::default);
    let key = (source.to_string(), arch);
    if let Some(ptx) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(ptx);
    }
    let options = CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{}{}", arch.0, arch.1)],
        ..CompileOptions::default()
    };
    let ptx = compile_ptx_with_opts(source, options).map_err(|e| e.to_string())?;
    if let Ok(mut cache) = cache.lock() {
        cache.insert(key, ptx.clone());
    }
    Ok(ptx)
}
